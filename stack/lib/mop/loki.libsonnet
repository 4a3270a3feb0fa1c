// Loki (monolithic, 3 replicas joined by memberlist, replication factor 3): label-based indexing (TSDB
// index of a few low-cardinality labels, everything else as structured metadata) on object storage.
local config = import 'config.libsonnet';
local k = import 'k.libsonnet';
function(cfg, storage) {
  local ns = cfg.namespace,
  local name = 'loki',
  local labels = k.labels(name, 'backend'),
  local selector = k.selector(name),
  local factor = config.profiles[cfg.profile],
  local ports = { http: 3100, grpc: 9095, gossip: 7946 },
  local store = storage.lokiObjectStore,
  local tls = (import 'tls.libsonnet')(cfg),
  local grpcClient = { grpc_client_config: tls.dskitClient('loki') },

  local lokiConfig = {
    auth_enabled: false,
    target: 'all',
    server: {
      http_listen_port: ports.http,
      grpc_listen_port: ports.grpc,
      log_format: 'json',
      http_tls_config: tls.dskitServer,
      grpc_tls_config: tls.dskitServer,
    },
    memberlist: {
      join_members: ['dns+' + k.address(ns, 'loki-gossip', ports.gossip)],
      bind_port: ports.gossip,
    } + tls.dskitClient('loki-gossip'),
    // Every internal gRPC hop presents the component's certificate and verifies the peer's.
    ingester_client: grpcClient,
    frontend_worker: grpcClient,
    query_scheduler: grpcClient,
    common: {
      path_prefix: '/var/loki',
      replication_factor: 3,
      ring: { kvstore: { store: 'memberlist' } },
      storage: storage.loki(storage.bucket('loki')),
    },
    schema_config: {
      configs: [{
        from: '2026-01-01',
        store: 'tsdb',
        object_store: store,
        schema: 'v13',
        index: { prefix: 'index_', period: '24h' },
      }],
    },
    storage_config: {
      tsdb_shipper: { active_index_directory: '/var/loki/tsdb-index', cache_location: '/var/loki/tsdb-cache' },
    },
    // Label-based indexing: only these resource attributes become index labels.
    limits_config: {
      allow_structured_metadata: true,
      volume_enabled: true,
      retention_period: '%dh' % cfg.retention.logsHours,
      ingestion_rate_mb: 8 * factor,
      ingestion_burst_size_mb: 16 * factor,
      otlp_config: {
        resource_attributes: {
          attributes_config: [{
            action: 'index_label',
            attributes: ['k8s.namespace.name', 'k8s.deployment.name', 'service.name', 'k8s.cluster.name'],
          }],
        },
      },
    },
    compactor: {
      working_directory: '/var/loki/compactor',
      retention_enabled: true,
      delete_request_store: store,
    },
    analytics: { reporting_enabled: false },
  },
  local configText = std.manifestYamlDoc(lokiConfig, quote_keys=false),

  serviceaccount: k.serviceAccount(name, ns, labels, cfg.storage.serviceAccountAnnotations),
  certificate: tls.certificate(name, [name, 'loki-gossip'], ['loki-gossip']),
  configmap: k.configMap(name, ns, labels, { 'loki.yaml': configText }),
  service: k.service(name, ns, labels, selector, [
    { name: 'http', port: ports.http },
    { name: 'grpc', port: ports.grpc },
  ]),
  gossip: k.service('loki-gossip', ns, labels, selector, [{ name: 'gossip', port: ports.gossip }], headless=true),
  pdb: k.pdb(name, ns, labels, selector),
  statefulset: k.statefulSet(
    name, ns, labels, selector, config.replicas.loki, 'loki-gossip',
    k.podTemplate(labels, k.scrapeAnnotations(ports.http) { 'checksum/config': std.md5(configText) }, {
      serviceAccountName: name,
      automountServiceAccountToken: false,
      securityContext: k.podSecurity(10001),
      terminationGracePeriodSeconds: 300,
      containers: [{
        name: name,
        image: config.images.loki,
        args: ['-config.file=/etc/loki/loki.yaml', '-config.expand-env=true'],
        env: storage.env,
        ports: [
          { name: 'http', containerPort: ports.http },
          { name: 'grpc', containerPort: ports.grpc },
          { name: 'gossip', containerPort: ports.gossip },
        ],
        // Every port requires a client certificate, which the kubelet cannot present: probes are TCP.
        readinessProbe: k.tcpProbe('http', 15),
        livenessProbe: k.tcpProbe('http', 60),
        resources: k.resources(config.plan.loki, factor),
        securityContext: k.containerSecurity,
        volumeMounts: [
          { name: 'config', mountPath: '/etc/loki', readOnly: true },
          { name: 'data', mountPath: '/var/loki' },
          tls.mount,
        ],
      }],
      volumes: [{ name: 'config', configMap: { name: name } }, tls.volume(name)],
    } + k.spread(selector)),
    [{ name: 'data', size: '%dGi' % (config.volumeGi.loki * factor) }],
  ),
}
