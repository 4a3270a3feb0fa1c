// Object storage for Tempo, Mimir and Loki: S3, GCS or Azure Blob by configuration, and for dev an
// in-cluster S3-compatible store (MinIO) so the stack runs without a cloud account.
local config = import 'config.libsonnet';
local k = import 'k.libsonnet';

function(cfg) {
  local s = cfg.storage,
  local ns = cfg.namespace,
  local provider = if std.member(['s3', 'gcs', 'azure'], s.provider) then s.provider
  else error 'storage.provider must be s3, gcs or azure, got %s' % s.provider,
  local endpoint = if s.inClusterS3 then k.address(ns, 'minio', 9000) else s.s3.endpoint,
  local insecure = if s.inClusterS3 then true else s.s3.insecure,

  provider:: provider,
  bucket(name):: '%s-%s' % [s.bucketPrefix, name],

  // Environment variables with the credentials, expanded by the backends (-config.expand-env=true).
  env:: if s.credentialsSecret == '' then [] else [
    { name: e[0], valueFrom: { secretKeyRef: { name: s.credentialsSecret, key: e[1] } } }
    for e in (
      if provider == 's3' then [['STORAGE_ACCESS_KEY_ID', 'access_key_id'], ['STORAGE_SECRET_ACCESS_KEY', 'secret_access_key']]
      else if provider == 'azure' then [['STORAGE_ACCOUNT_KEY', 'account_key']]
      else []
    )
  ],
  local hasKeys = s.credentialsSecret != '' && provider != 'gcs',

  tempo(bucket):: { backend: provider } + (
    if provider == 's3' then {
      s3: { bucket: bucket, endpoint: endpoint, region: s.s3.region, insecure: insecure, forcepathstyle: s.inClusterS3 }
          + (if hasKeys then { access_key: '${STORAGE_ACCESS_KEY_ID}', secret_key: '${STORAGE_SECRET_ACCESS_KEY}' } else {}),
    } else if provider == 'gcs' then {
      gcs: { bucket_name: bucket },
    } else {
      azure: { container_name: bucket, storage_account_name: s.azure.accountName }
             + (if hasKeys then { storage_account_key: '${STORAGE_ACCOUNT_KEY}' } else { use_federated_token: true }),
    }
  ),

  // Mimir: the shared client settings go in common.storage, each store names its bucket.
  mimirCommon:: { backend: provider } + (
    if provider == 's3' then {
      s3: { endpoint: endpoint, region: s.s3.region, insecure: insecure }
          + (if hasKeys then { access_key_id: '${STORAGE_ACCESS_KEY_ID}', secret_access_key: '${STORAGE_SECRET_ACCESS_KEY}' } else {}),
    } else if provider == 'gcs' then { gcs: {} }
    else {
      azure: { account_name: s.azure.accountName } + (if hasKeys then { account_key: '${STORAGE_ACCOUNT_KEY}' } else {}),
    }
  ),
  mimirBucket(bucket):: (
    if provider == 's3' then { s3: { bucket_name: bucket } }
    else if provider == 'gcs' then { gcs: { bucket_name: bucket } }
    else { azure: { container_name: bucket } }
  ),

  loki(bucket):: (
    if provider == 's3' then {
      s3: { endpoint: endpoint, bucketnames: bucket, region: s.s3.region, insecure: insecure, s3forcepathstyle: s.inClusterS3 }
          + (if hasKeys then { access_key_id: '${STORAGE_ACCESS_KEY_ID}', secret_access_key: '${STORAGE_SECRET_ACCESS_KEY}' } else {}),
    } else if provider == 'gcs' then { gcs: { bucket_name: bucket } }
    else {
      azure: { container_name: bucket, account_name: s.azure.accountName }
             + (if hasKeys then { account_key: '${STORAGE_ACCOUNT_KEY}' } else { use_federated_token: true }),
    }
  ),
  lokiObjectStore:: if provider == 'azure' then 'azure' else provider,

  buckets:: [self.bucket(b) for b in ['tempo', 'mimir-blocks', 'mimir-alertmanager', 'mimir-ruler', 'loki']],

  objects: if !s.inClusterS3 then {} else {
    local name = 'minio',
    local labels = k.labels(name, 'storage'),
    local selector = k.selector(name),
    local port = 9000,
    // Dev-only credentials for the in-cluster store; real environments bring their own Secret.
    secret: {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: s.credentialsSecret, namespace: ns, labels: labels },
      type: 'Opaque',
      stringData: { access_key_id: 'mop-dev', secret_access_key: 'mop-dev-secret-key' },
    },
    service: k.service(name, ns, labels, selector, [{ name: 'http', port: port }]),
    pdb: k.pdb(name, ns, labels, selector),
    statefulset: k.statefulSet(
      name, ns, labels, selector, config.replicas.minio, name,
      k.podTemplate(labels, k.scrapeAnnotations(port, '/minio/v2/metrics/cluster', scheme='http'), {
        securityContext: k.podSecurity(10001),
        automountServiceAccountToken: false,
        // The buckets are directories of the data volume: created before the server starts.
        initContainers: [{
          name: 'buckets',
          image: config.images.minio,
          command: ['mkdir', '-p'] + ['/data/' + b for b in $.buckets],
          resources: k.resources({ cpu: 50, memory: 64 }, 1),
          securityContext: k.containerSecurity,
          volumeMounts: [{ name: 'data', mountPath: '/data' }],
        }],
        containers: [{
          name: name,
          image: config.images.minio,
          args: ['server', '/data', '--address', ':%d' % port],
          env: [
            { name: 'MINIO_ROOT_USER', valueFrom: { secretKeyRef: { name: s.credentialsSecret, key: 'access_key_id' } } },
            { name: 'MINIO_ROOT_PASSWORD', valueFrom: { secretKeyRef: { name: s.credentialsSecret, key: 'secret_access_key' } } },
            { name: 'MINIO_PROMETHEUS_AUTH_TYPE', value: 'public' },
            { name: 'HOME', value: '/tmp' },
          ],
          ports: [{ name: 'http', containerPort: port }],
          readinessProbe: k.httpProbe('/minio/health/ready', 'http', 5),
          livenessProbe: k.httpProbe('/minio/health/live', 'http', 30),
          resources: k.resources(config.plan.minio, 1),
          securityContext: k.containerSecurity,
          volumeMounts: [{ name: 'data', mountPath: '/data' }, { name: 'tmp', mountPath: '/tmp' }],
        }],
        volumes: [{ name: 'tmp', emptyDir: {} }],
      }),
      [{ name: 'data', size: '%dGi' % config.volumeGi.minio }],
    ),
  },
}
