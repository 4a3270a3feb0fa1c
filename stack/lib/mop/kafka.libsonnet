// Kafka (KRaft, 3 combined broker+controller nodes): Tempo 3's durable write-ahead log between the
// distributors and the live-stores, block-builders and metrics-generators. TLS on both listeners,
// client certificates required (ssl.client.auth=required); keystores in PKCS#12 made by cert-manager.
local config = import 'config.libsonnet';
local k = import 'k.libsonnet';
function(cfg) {
  local ns = cfg.namespace,
  local name = 'kafka',
  local labels = k.labels(name, 'queue'),
  local selector = k.selector(name),
  local factor = config.profiles[cfg.profile],
  local tls = (import 'tls.libsonnet')(cfg),
  local replicas = config.replicas.kafka,
  local ports = { client: 9093, controller: 9094 },
  local pod(i) = '%s-%d.%s' % [name, i, tls.serverName(name)],
  local storePassword = { secretKeyRef: { name: 'kafka-keystore', key: 'password' } },

  local env = {
    KAFKA_PROCESS_ROLES: 'broker,controller',
    KAFKA_CONTROLLER_QUORUM_VOTERS: std.join(',', ['%d@%s:%d' % [i, pod(i), ports.controller] for i in std.range(0, replicas - 1)]),
    KAFKA_LISTENERS: 'SSL://:%d,CONTROLLER://:%d' % [ports.client, ports.controller],
    KAFKA_ADVERTISED_LISTENERS: 'SSL://$(POD_NAME).%s:%d' % [tls.serverName(name), ports.client],
    KAFKA_LISTENER_SECURITY_PROTOCOL_MAP: 'SSL:SSL,CONTROLLER:SSL',
    KAFKA_CONTROLLER_LISTENER_NAMES: 'CONTROLLER',
    KAFKA_INTER_BROKER_LISTENER_NAME: 'SSL',
    KAFKA_SSL_CLIENT_AUTH: 'required',
    KAFKA_SSL_KEYSTORE_TYPE: 'PKCS12',
    KAFKA_SSL_KEYSTORE_LOCATION: tls.dir + '/keystore.p12',
    KAFKA_SSL_TRUSTSTORE_TYPE: 'PKCS12',
    KAFKA_SSL_TRUSTSTORE_LOCATION: tls.dir + '/truststore.p12',
    KAFKA_LOG_DIRS: '/var/lib/kafka/data',
    KAFKA_NUM_PARTITIONS: std.toString(config.replicas.tempoPartitions),
    KAFKA_DEFAULT_REPLICATION_FACTOR: std.toString(replicas),
    KAFKA_MIN_INSYNC_REPLICAS: '2',
    KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: std.toString(replicas),
    KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: std.toString(replicas),
    KAFKA_LOG_RETENTION_HOURS: '24',
    CLUSTER_ID: 'bW9wLXRlbXBvLWluZ2VzdA',
  },

  serviceaccount: k.serviceAccount(name, ns, labels),
  // The keystore password only guards the PKCS#12 files inside the Secret cert-manager writes.
  keystorePassword: {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'kafka-keystore', namespace: ns, labels: labels },
    type: 'Opaque',
    stringData: { password: 'mop-kafka-keystore' },
  },
  certificate: tls.certificate(name, [name], [name], {
    keystores: { pkcs12: { create: true, passwordSecretRef: { name: 'kafka-keystore', key: 'password' } } },
  }),
  service: k.service(name, ns, labels, selector, [
    { name: 'client', port: ports.client },
    { name: 'controller', port: ports.controller },
  ], headless=true),
  pdb: k.pdb(name, ns, labels, selector),
  statefulset: k.statefulSet(
    name, ns, labels, selector, replicas, name,
    k.podTemplate(labels, {}, {
      serviceAccountName: name,
      automountServiceAccountToken: false,
      securityContext: k.podSecurity(1000),
      // The image writes server.properties into its config directory at start: a copy on an emptyDir
      // keeps the root filesystem read-only.
      initContainers: [{
        name: 'config',
        image: config.images.kafka,
        command: ['cp', '-R', '/opt/kafka/config/.', '/config/'],
        resources: k.resources({ cpu: 50, memory: 64 }, 1),
        securityContext: k.containerSecurity,
        volumeMounts: [{ name: 'config', mountPath: '/config' }],
      }],
      containers: [{
        name: name,
        image: config.images.kafka,
        // The node id is the StatefulSet ordinal.
        command: ['/bin/bash', '-c', 'export KAFKA_NODE_ID="${POD_NAME##*-}"; exec /etc/kafka/docker/run'],
        env: [
          { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
          { name: 'KAFKA_SSL_KEYSTORE_PASSWORD', valueFrom: storePassword },
          { name: 'KAFKA_SSL_KEY_PASSWORD', valueFrom: storePassword },
          { name: 'KAFKA_SSL_TRUSTSTORE_PASSWORD', valueFrom: storePassword },
        ] + [{ name: key, value: env[key] } for key in std.objectFields(env)],
        ports: [
          { name: 'client', containerPort: ports.client },
          { name: 'controller', containerPort: ports.controller },
        ],
        readinessProbe: k.tcpProbe('client', 20),
        livenessProbe: k.tcpProbe('controller', 60),
        resources: k.resources(config.plan.kafka, factor),
        securityContext: k.containerSecurity,
        volumeMounts: [
          { name: 'data', mountPath: '/var/lib/kafka/data' },
          { name: 'config', mountPath: '/opt/kafka/config' },
          { name: 'tmp', mountPath: '/tmp' },
          tls.mount,
        ],
      }],
      volumes: [{ name: 'config', emptyDir: {} }, { name: 'tmp', emptyDir: {} }, tls.volume(name)],
    } + k.spread(selector)),
    [{ name: 'data', size: '%dGi' % (config.volumeGi.kafka * factor) }],
  ),
}
