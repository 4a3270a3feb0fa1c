// Tempo 3 in microservices mode, the topology Tempo 3 supports for more than one replica (monolithic
// `target: all` instances do not share data; Tempo 3 removed scalable-single-binary):
//   write path: distributor (OTLP in) -> Kafka (durable write-ahead log, one partition per
//     live-store/block-builder pair) -> live-store (recent traces and TraceQL metrics over them),
//     block-builder (Parquet blocks to object storage), metrics-generator (span metrics and service
//     graphs by Deployment and ReplicaSet, remote-written to Mimir);
//   read path: query-frontend (the `tempo` Service: Grafana and the controller) -> querier (live-stores
//     for recent data, object storage for older blocks);
//   compaction and retention: ONE backend-scheduler (it owns the work list in the bucket) handing jobs
//     to the backend-workers.
// The partition ring (live-stores) and the backend-worker ring are gossiped over memberlist (TLS).
local config = import 'config.libsonnet';
local k = import 'k.libsonnet';
function(cfg, storage) {
  local ns = cfg.namespace,
  local tls = (import 'tls.libsonnet')(cfg),
  local factor = config.profiles[cfg.profile],
  local replicas = config.replicas.tempo,
  local partitions = config.replicas.tempoPartitions,
  local ports = { http: 3200, grpc: 9095, otlpGrpc: 4317, otlpHttp: 4318, gossip: 7946 },
  local kafkaPort = 9093,
  local name(target) = 'tempo-' + target,
  // Every Tempo pod carries this label: the gossip Service selects them all.
  local member = { 'app.kubernetes.io/instance': 'tempo', 'app.kubernetes.io/part-of': 'mop' },
  local labels(target) = k.labels(name(target), 'backend') + member,
  local selector(target) = k.selector(name(target)),

  local tempoConfig = {
    multitenancy_enabled: false,
    stream_over_http_enabled: true,
    server: {
      http_listen_port: ports.http,
      grpc_listen_port: ports.grpc,
      log_format: 'json',
      http_tls_config: tls.dskitServer,
      grpc_tls_config: tls.dskitServer,
    },
    memberlist: {
      join_members: ['dns+' + k.address(ns, 'tempo-gossip', ports.gossip)],
      bind_port: ports.gossip,
      abort_if_cluster_join_fails: false,
    } + tls.dskitClient('tempo-gossip'),
    ingest: {
      kafka: {
        address: k.address(ns, 'kafka', kafkaPort),
        topic: 'tempo-ingest',
        auto_create_topic_default_partitions: partitions,
      } + tls.dskitClient('kafka'),
    },
    distributor: {
      receivers: {
        otlp: {
          protocols: {
            grpc: { endpoint: '0.0.0.0:%d' % ports.otlpGrpc, tls: tls.otelServer },
            http: { endpoint: '0.0.0.0:%d' % ports.otlpHttp, tls: tls.otelServer },
          },
        },
      },
    },
    live_store: { readiness_target_lag: '5s', readiness_max_wait: '5m' },
    live_store_client: { grpc_client_config: tls.dskitClient('tempo-live-store') },
    // Partition i is built by block-builder i (StatefulSet ordinals are stable).
    block_builder: {
      consume_cycle_duration: '30s',
      assigned_partitions: { [name('block-builder') + '-' + i]: [i] for i in std.range(0, partitions - 1) },
    },
    backend_scheduler: {},
    backend_scheduler_client: { grpc_client_config: tls.dskitClient('tempo-backend-scheduler') },
    backend_worker: {
      backend_scheduler_addr: k.address(ns, 'tempo-backend-scheduler', ports.grpc),
      ring: { kvstore: { store: 'memberlist' } },
    },
    querier: { frontend_worker: { frontend_address: k.address(ns, 'tempo', ports.grpc), grpc_client_config: tls.dskitClient('tempo') } },
    query_frontend: {
      // TraceQL metrics (the controller's trace checks): a day of range.
      metrics: { max_duration: '24h', query_backend_after: '30m' },
      search: { duration_slo: '5s' },
    },
    metrics_generator: {
      registry: { external_labels: { source: 'tempo', cluster: cfg.cluster } },
      storage: {
        path: '/var/tempo/generator/wal',
        remote_write: [{
          url: k.url(ns, 'mimir', 8080, '/api/v1/push', tls=true),
          send_exemplars: true,
          tls_config: tls.promClient('mimir'),
        }],
      },
      processor: {
        span_metrics: {
          dimensions: ['k8s.namespace.name', 'k8s.deployment.name', 'k8s.replicaset.name', 'http.route'],
          enable_target_info: true,
        },
        service_graphs: { dimensions: ['k8s.namespace.name'] },
      },
    },
    storage: {
      trace: storage.tempo(storage.bucket('tempo')) + {
        wal: { path: '/var/tempo/wal' },
        block: { version: 'vParquet4' },
      },
    },
    overrides: {
      defaults: {
        // No local-blocks: Tempo 3 removed that processor (the live-store answers TraceQL metrics).
        metrics_generator: { processors: ['service-graphs', 'span-metrics'] },
        global: { max_bytes_per_trace: 5000000 },
        // retention.tracesHours, applied by the backend-scheduler's compaction jobs.
        compaction: { block_retention: '%dh' % cfg.retention.tracesHours },
      },
    },
  },
  local configText = std.manifestYamlDoc(tempoConfig, quote_keys=false),

  // What each target needs beyond the common pod: its kind, its volume, its Service ports.
  local targets = {
    distributor: { kind: 'Deployment', volume: false, service: ['otlpGrpc', 'otlpHttp'] },
    'live-store': { kind: 'StatefulSet', volume: true, service: ['grpc'] },
    'block-builder': { kind: 'StatefulSet', volume: true, service: [] },
    'metrics-generator': { kind: 'StatefulSet', volume: true, service: [] },
    'query-frontend': { kind: 'Deployment', volume: false, service: ['http', 'grpc'] },
    querier: { kind: 'Deployment', volume: false, service: [] },
    'backend-scheduler': { kind: 'StatefulSet', volume: true, service: ['grpc'] },
    'backend-worker': { kind: 'Deployment', volume: false, service: [] },
  },
  local portNames = { http: 'http', grpc: 'grpc', otlpGrpc: 'otlp-grpc', otlpHttp: 'otlp-http', gossip: 'gossip' },
  local containerPorts(target) = [
    { name: portNames[p], containerPort: ports[p] }
    for p in ['http', 'grpc', 'gossip'] + (if target == 'distributor' then ['otlpGrpc', 'otlpHttp'] else [])
  ],

  local podTemplate(target) = k.podTemplate(labels(target), k.scrapeAnnotations(ports.http, scheme='https') {
    'checksum/config': std.md5(configText),
  }, {
    serviceAccountName: 'tempo',
    automountServiceAccountToken: false,
    securityContext: k.podSecurity(10001),
    terminationGracePeriodSeconds: if targets[target].volume then 300 else 30,
    containers: [{
      name: 'tempo',
      image: config.images.tempo,
      args: ['-config.file=/etc/tempo/tempo.yaml', '-config.expand-env=true', '-target=' + target],
      env: storage.env,
      ports: containerPorts(target),
      // Every port requires a client certificate, which the kubelet cannot present: probes are TCP.
      readinessProbe: k.tcpProbe('http', 15),
      livenessProbe: k.tcpProbe('http', 60),
      resources: k.resources(config.plan.tempo[target], factor),
      securityContext: k.containerSecurity,
      volumeMounts: [
        { name: 'config', mountPath: '/etc/tempo', readOnly: true },
        { name: 'data', mountPath: '/var/tempo' },
        tls.mount,
      ],
    }],
    volumes: [{ name: 'config', configMap: { name: 'tempo' } }, tls.volume('tempo')]
             + (if targets[target].volume then [] else [{ name: 'data', emptyDir: {} }]),
  } + k.spread(selector(target))),

  local workload(target) =
    if targets[target].kind == 'Deployment' then
      k.deployment(name(target), ns, labels(target), selector(target), replicas[target], podTemplate(target))
    else
      k.statefulSet(
        name(target), ns, labels(target), selector(target), replicas[target], 'tempo-gossip', podTemplate(target),
        [{ name: 'data', size: '%dGi' % (config.volumeGi.tempo * factor) }],
      ),

  serviceaccount: k.serviceAccount('tempo', ns, k.labels('tempo', 'backend'), cfg.storage.serviceAccountAnnotations),
  configmap: k.configMap('tempo', ns, k.labels('tempo', 'backend'), { 'tempo.yaml': configText }),
  certificate: tls.certificate(
    'tempo',
    ['tempo', 'tempo-distributor', 'tempo-live-store', 'tempo-backend-scheduler', 'tempo-gossip'],
    ['tempo-gossip'],
  ),
  // The query frontend keeps the name `tempo`: Grafana and the controller query it.
  service: k.service('tempo', ns, labels('query-frontend'), selector('query-frontend'), [
    { name: 'http', port: ports.http },
    { name: 'grpc', port: ports.grpc },
  ]),
  distributorService: k.service(name('distributor'), ns, labels('distributor'), selector('distributor'), [
    { name: 'otlp-grpc', port: ports.otlpGrpc },
    { name: 'otlp-http', port: ports.otlpHttp },
  ]),
  liveStoreService: k.service(name('live-store'), ns, labels('live-store'), selector('live-store'), [
    { name: 'grpc', port: ports.grpc },
  ]),
  schedulerService: k.service(name('backend-scheduler'), ns, labels('backend-scheduler'), selector('backend-scheduler'), [
    { name: 'grpc', port: ports.grpc },
  ]),
  gossip: k.service('tempo-gossip', ns, k.labels('tempo', 'backend'), member, [{ name: 'gossip', port: ports.gossip }], headless=true),
  pdbs: { [t]: k.pdb(name(t), ns, labels(t), selector(t)) for t in std.objectFields(targets) },
  workloads: { [t]: workload(t) for t in std.objectFields(targets) },
}
