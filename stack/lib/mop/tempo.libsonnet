// Tempo 3 (monolithic target "all", 3 replicas joined by memberlist): traces in object storage, the
// metrics-generator (span-metrics by Deployment and ReplicaSet, service graphs) writing to Mimir, and
// TraceQL metrics served by the live-store for recent data and by backend blocks for older data.
local config = import 'config.libsonnet';
local k = import 'k.libsonnet';
function(cfg, storage) {
  local ns = cfg.namespace,
  local name = 'tempo',
  local labels = k.labels(name, 'backend'),
  local selector = k.selector(name),
  local factor = config.profiles[cfg.profile],
  local ports = { http: 3200, grpc: 9095, otlpGrpc: 4317, otlpHttp: 4318, gossip: 7946 },

  local tempoConfig = {
    multitenancy_enabled: false,
    stream_over_http_enabled: true,
    server: { http_listen_port: ports.http, grpc_listen_port: ports.grpc, log_format: 'json' },
    memberlist: {
      join_members: ['dns+' + k.address(ns, 'tempo-gossip', ports.gossip)],
      bind_port: ports.gossip,
    },
    distributor: {
      receivers: {
        otlp: {
          protocols: {
            grpc: { endpoint: '0.0.0.0:%d' % ports.otlpGrpc },
            http: { endpoint: '0.0.0.0:%d' % ports.otlpHttp },
          },
        },
      },
    },
    query_frontend: {
      // TraceQL metrics (the controller's trace checks): a day of range, exemplars for drill-down.
      metrics: { max_duration: '24h', query_backend_after: '30m' },
      search: { duration_slo: '5s' },
    },
    metrics_generator: {
      registry: { external_labels: { source: 'tempo', cluster: cfg.cluster } },
      storage: {
        path: '/var/tempo/generator/wal',
        remote_write: [{ url: k.url(ns, 'mimir', 8080, '/api/v1/push'), send_exemplars: true }],
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
      },
    },
  },
  local configText = std.manifestYamlDoc(tempoConfig, quote_keys=false),

  serviceaccount: k.serviceAccount(name, ns, labels, cfg.storage.serviceAccountAnnotations),
  configmap: k.configMap(name, ns, labels, { 'tempo.yaml': configText }),
  service: k.service(name, ns, labels, selector, [
    { name: 'http', port: ports.http },
    { name: 'grpc', port: ports.grpc },
    { name: 'otlp-grpc', port: ports.otlpGrpc },
    { name: 'otlp-http', port: ports.otlpHttp },
  ]),
  gossip: k.service('tempo-gossip', ns, labels, selector, [{ name: 'gossip', port: ports.gossip }], headless=true),
  pdb: k.pdb(name, ns, labels, selector),
  statefulset: k.statefulSet(
    name, ns, labels, selector, config.replicas.tempo, 'tempo-gossip',
    k.podTemplate(labels, k.scrapeAnnotations(ports.http) { 'checksum/config': std.md5(configText) }, {
      serviceAccountName: name,
      securityContext: k.podSecurity(10001),
      terminationGracePeriodSeconds: 300,
      containers: [{
        name: name,
        image: config.images.tempo,
        args: ['-config.file=/etc/tempo/tempo.yaml', '-config.expand-env=true', '-target=all'],
        env: storage.env,
        ports: [
          { name: 'http', containerPort: ports.http },
          { name: 'grpc', containerPort: ports.grpc },
          { name: 'otlp-grpc', containerPort: ports.otlpGrpc },
          { name: 'otlp-http', containerPort: ports.otlpHttp },
          { name: 'gossip', containerPort: ports.gossip },
        ],
        readinessProbe: k.httpProbe('/ready', 'http', 15),
        livenessProbe: k.tcpProbe('http', 60),
        resources: k.resources(config.plan.tempo, factor),
        securityContext: k.containerSecurity,
        volumeMounts: [
          { name: 'config', mountPath: '/etc/tempo', readOnly: true },
          { name: 'data', mountPath: '/var/tempo' },
        ],
      }],
      volumes: [{ name: 'config', configMap: { name: name } }],
    } + k.spread(selector)),
    [{ name: 'data', size: '%dGi' % (config.volumeGi.tempo * factor) }],
  ),
}
