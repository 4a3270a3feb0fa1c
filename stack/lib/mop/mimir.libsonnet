// Mimir (monolithic, 3 replicas joined by memberlist, replication factor 3): blocks in object storage,
// memcached for chunks/index/metadata/results caches, the ruler evaluating the MOP pipeline alerts and
// the built-in Alertmanager receiving them. Exemplars are kept for the Mimir -> Tempo correlation.
local config = import 'config.libsonnet';
local k = import 'k.libsonnet';
function(cfg, storage, rules) {
  local ns = cfg.namespace,
  local name = 'mimir',
  local labels = k.labels(name, 'backend'),
  local selector = k.selector(name),
  local factor = config.profiles[cfg.profile],
  local ports = { http: 8080, grpc: 9095, gossip: 7946 },
  local tls = (import 'tls.libsonnet')(cfg),
  local memcached = { addresses: 'dns+' + k.address(ns, 'memcached', 11211), timeout: '500ms' } + tls.dskitClient('memcached'),
  local grpcClient = { grpc_client_config: tls.dskitClient('mimir') },
  local cache = { backend: 'memcached', memcached: memcached },
  local ring = { kvstore: { store: 'memberlist' } },

  local mimirConfig = {
    multitenancy_enabled: false,
    target: 'all,alertmanager',
    server: {
      http_listen_port: ports.http,
      grpc_listen_port: ports.grpc,
      log_format: 'json',
      http_tls_config: tls.dskitServer,
      grpc_tls_config: tls.dskitServer,
    },
    memberlist: {
      join_members: ['dns+' + k.address(ns, 'mimir-gossip', ports.gossip)],
      bind_port: ports.gossip,
    } + tls.dskitClient('mimir-gossip'),
    // Every internal gRPC hop presents the component's certificate and verifies the peer's.
    ingester_client: grpcClient,
    frontend_worker: grpcClient,
    query_scheduler: grpcClient,
    querier: { store_gateway_client: tls.dskitClient('mimir') },
    common: { storage: storage.mimirCommon },
    blocks_storage: storage.mimirBucket(storage.bucket('mimir-blocks')) + {
      tsdb: { dir: '/data/tsdb', retention_period: '13h' },
      bucket_store: {
        sync_dir: '/data/tsdb-sync',
        chunks_cache: cache,
        index_cache: cache,
        metadata_cache: cache,
      },
    },
    ingester: { ring: ring { replication_factor: 3 } },
    distributor: { ring: ring },
    store_gateway: { sharding_ring: ring { replication_factor: 3 } },
    compactor: { data_dir: '/data/compactor', sharding_ring: ring },
    frontend: { cache_results: true, results_cache: cache },
    ruler: {
      rule_path: '/data/ruler',
      alertmanager_url: k.url(ns, 'mimir', ports.http, '/alertmanager'),
      alertmanager_client: { tls_cert_path: tls.cert, tls_key_path: tls.key, tls_ca_path: tls.ca, tls_server_name: tls.serverName('mimir') },
      ruler_client: tls.dskitClient('mimir'),
      ring: ring,
    },
    ruler_storage: { backend: 'local', 'local': { directory: '/etc/mimir/rules' } },
    alertmanager: {
      data_dir: '/data/alertmanager',
      fallback_config_file: '/etc/mimir/config/alertmanager-fallback.yaml',
      sharding_ring: ring { replication_factor: 3 },
      alertmanager_client: tls.dskitClient('mimir'),
    },
    alertmanager_storage: storage.mimirBucket(storage.bucket('mimir-alertmanager')),
    limits: {
      compactor_blocks_retention_period: '%dd' % cfg.retention.metricsDays,
      max_global_exemplars_per_user: 100000,
      native_histograms_ingestion_enabled: true,
      ingestion_rate: 100000 * factor,
      ingestion_burst_size: 1000000 * factor,
      max_global_series_per_user: 1500000 * factor,
      max_label_names_per_series: 40,
    },
    usage_stats: { enabled: false },
  },
  local configText = std.manifestYamlDoc(mimirConfig, quote_keys=false),
  // Every alert goes to the on-call receiver; the Watchdog to the dead man's switch, every minute
  // (its silence is the alert). Receiver credentials are files from the Secret cfg.alerting.secret.
  local receiver = cfg.alerting.receiver,
  local fallback = std.manifestYamlDoc({
    route: {
      receiver: receiver.name,
      group_by: ['alertname', 'severity'],
      group_wait: '30s',
      group_interval: '5m',
      repeat_interval: '4h',
      routes: [{ receiver: 'watchdog', matchers: ['alertname="Watchdog"'], repeat_interval: '1m', group_wait: '0s', group_interval: '1m' }],
    },
    inhibit_rules: [{ source_matchers: ['severity="critical"'], target_matchers: ['severity="warning"'], equal: ['alertname'] }],
    receivers: [
      receiver,
      { name: 'watchdog', webhook_configs: [{ url_file: '/etc/mimir/alerting/watchdog-url', send_resolved: false }] },
    ],
  }, quote_keys=false),

  serviceaccount: k.serviceAccount(name, ns, labels, cfg.storage.serviceAccountAnnotations),
  certificate: tls.certificate(name, [name, 'mimir-gossip'], ['mimir-gossip']),
  configmap: k.configMap(name, ns, labels, { 'mimir.yaml': configText, 'alertmanager-fallback.yaml': fallback }),
  // Rules for the single tenant ("anonymous" with multitenancy off), read by the ruler from disk.
  rules: k.configMap('mimir-rules', ns, labels, { 'mop-pipeline.yaml': rules }),
  service: k.service(name, ns, labels, selector, [
    { name: 'http', port: ports.http },
    { name: 'grpc', port: ports.grpc },
  ]),
  gossip: k.service('mimir-gossip', ns, labels, selector, [{ name: 'gossip', port: ports.gossip }], headless=true),
  pdb: k.pdb(name, ns, labels, selector),
  statefulset: k.statefulSet(
    name, ns, labels, selector, config.replicas.mimir, 'mimir-gossip',
    k.podTemplate(labels, k.scrapeAnnotations(ports.http) {
      'checksum/config': std.md5(configText),
      'checksum/rules': std.md5(rules),
    }, {
      serviceAccountName: name,
      automountServiceAccountToken: false,
      securityContext: k.podSecurity(10001),
      terminationGracePeriodSeconds: 240,
      containers: [{
        name: name,
        image: config.images.mimir,
        args: ['-config.file=/etc/mimir/config/mimir.yaml', '-config.expand-env=true'],
        env: storage.env,
        ports: [
          { name: 'http', containerPort: ports.http },
          { name: 'grpc', containerPort: ports.grpc },
          { name: 'gossip', containerPort: ports.gossip },
        ],
        // Every port requires a client certificate, which the kubelet cannot present: probes are TCP.
        readinessProbe: k.tcpProbe('http', 30),
        livenessProbe: k.tcpProbe('http', 60),
        resources: k.resources(config.plan.mimir, factor),
        securityContext: k.containerSecurity,
        volumeMounts: [
          { name: 'config', mountPath: '/etc/mimir/config', readOnly: true },
          { name: 'rules', mountPath: '/etc/mimir/rules/anonymous', readOnly: true },
          { name: 'data', mountPath: '/data' },
          { name: 'alerting', mountPath: '/etc/mimir/alerting', readOnly: true },
          tls.mount,
        ],
      }],
      volumes: [
        { name: 'config', configMap: { name: name } },
        { name: 'rules', configMap: { name: 'mimir-rules' } },
        { name: 'alerting', secret: { secretName: cfg.alerting.secret } },
        tls.volume(name),
      ],
    } + k.spread(selector)),
    [{ name: 'data', size: '%dGi' % (config.volumeGi.mimir * factor) }],
  ),
}
