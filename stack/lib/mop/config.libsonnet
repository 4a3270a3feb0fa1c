// Defaults for every MOP environment: images, the capacity plan and the knobs an environment may override.
{
  // Explicit release tags only; bump them here and nowhere else. Alloy v1.21.2 is a published release
  // (2026-10-22); apache/kafka 4.0.0 is Apache Kafka's official KRaft image of the 4.0.0 release.
  images: {
    obi: 'docker.io/otel/ebpf-instrument:v0.5.0',
    alloy: 'docker.io/grafana/alloy:v1.21.2',
    kafka: 'docker.io/apache/kafka:4.0.0',
    tempo: 'docker.io/grafana/tempo:3.0.2',
    mimir: 'docker.io/grafana/mimir:3.0.2',
    loki: 'docker.io/grafana/loki:3.7.5',
    grafana: 'docker.io/grafana/grafana:13.1.0',
    // The Debian variant: the official Alpine image is built without TLS (memcached -Z needs it).
    memcached: 'docker.io/library/memcached:1.6.44',
    minio: 'quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z',
  },

  // Capacity plan, profile "small" (dev/test: 10-50 services, <1M spans/day), per pod (OBI: per node).
  // cpu in millicores, memory in MiB. "medium" is 3x, "large" 10x.
  plan: {
    obi: { cpu: 200, memory: 256 },
    alloy: { cpu: 1000, memory: 2048 },
    // Tempo 3 microservices (per pod): the write path (distributor -> Kafka -> live-store,
    // block-builder, metrics-generator) and the read path (query-frontend -> querier), plus compaction.
    tempo: {
      distributor: { cpu: 500, memory: 1024 },
      'live-store': { cpu: 1000, memory: 4096 },
      'block-builder': { cpu: 1000, memory: 2048 },
      'metrics-generator': { cpu: 500, memory: 2048 },
      'query-frontend': { cpu: 500, memory: 1024 },
      querier: { cpu: 1000, memory: 2048 },
      'backend-scheduler': { cpu: 100, memory: 256 },
      'backend-worker': { cpu: 500, memory: 1024 },
    },
    // Kafka (KRaft, combined broker+controller): Tempo's write-ahead log.
    kafka: { cpu: 1000, memory: 2048 },
    mimir: { cpu: 2000, memory: 4096 },
    loki: { cpu: 2000, memory: 4096 },
    grafana: { cpu: 500, memory: 1024 },
    // Not in the capacity plan; sized to the backends they serve.
    memcached: { cpu: 250, memory: 1024 },
    minio: { cpu: 500, memory: 1024 },
  },
  profiles: { small: 1, medium: 3, large: 10 },

  replicas: {
    alloy: 3,
    // One backend-scheduler: it owns the compaction work list (work.json) in the bucket.
    tempo: {
      distributor: 3,
      'live-store': 3,
      'block-builder': 3,
      'metrics-generator': 3,
      'query-frontend': 2,
      querier: 3,
      'backend-scheduler': 1,
      'backend-worker': 3,
    },
    // Tempo partitions = Kafka partitions of the ingest topic (one per live-store/block-builder pair).
    tempoPartitions: 3,
    kafka: 3,
    mimir: 3,
    loki: 3,
    grafana: 2,
    memcached: 2,
    minio: 1,
  },

  // Persistent volume per replica for the profile "small"; scaled like the plan.
  volumeGi: { tempo: 10, kafka: 20, mimir: 20, loki: 10, minio: 50 },

  defaults: {
    // env (required) and cluster (default: the env name) come from the environment.
    profile: 'small',
    namespace: 'mop',
    // s3 | gcs | azure. inClusterS3 deploys a MinIO in the namespace (dev only: no cloud account needed).
    storage: {
      provider: 's3',
      bucketPrefix: 'mop',
      inClusterS3: false,
      s3: { endpoint: 's3.amazonaws.com', region: 'us-east-1', insecure: false },
      gcs: {},
      azure: { accountName: '' },
      // Secret with access_key_id/secret_access_key (s3) or account_key (azure); '': workload identity.
      credentialsSecret: 'mop-object-storage',
      // Annotations on the storage-using ServiceAccounts (IRSA role, GKE workload identity, ...).
      serviceAccountAnnotations: {},
    },
    alloy: {
      // tail: keep errors, slow traces and a probabilistic share of the rest; probabilistic: head-style only.
      sampling: 'tail',
      sampledPercent: 10,
      slowTraceMs: 1000,
      // Extra OTLP destinations that receive the sampled traces too: [{name, endpoint}].
      extraTraceDestinations: [],
      // Extra Prometheus remote-write URLs that receive the metrics too.
      extraRemoteWrite: [],
    },
    // mTLS: every certificate is issued by `issuer`. Default (null): the stack's own CA, a self-signed
    // root made by cert-manager in caNamespace (cert-manager's cluster resource namespace). Bring your
    // own CA: issuer: { kind: 'ClusterIssuer', name: 'corp-ca' } (any cert-manager issuer that signs
    // serverAuth+clientAuth certificates for *.mop.svc.cluster.local).
    tls: { issuer: null, caNamespace: 'cert-manager' },
    // Destinations outside the cluster (API server, cloud object storage, alert receivers) that the
    // NetworkPolicies allow HTTPS egress to; narrow them to your API server and providers' ranges.
    network: { externalCIDRs: ['0.0.0.0/0'] },
    // Where the canary controller runs (its flows in the NetworkPolicies, its trace sampling set).
    controllerNamespace: 'mop-canary',
    // Alerting: the receiver every MOP alert goes to (Alertmanager receiver object: slack_configs,
    // webhook_configs, pagerduty_configs, ...) and the dead man's switch URL the Watchdog pings.
    alerting: {
      receiver: {
        name: 'mop-oncall',
        slack_configs: [{
          api_url_file: '/etc/mimir/alerting/slack-url',
          channel: '#mop-alerts',
          send_resolved: true,
          title: '{{ .CommonLabels.alertname }} ({{ .Status }})',
          text: '{{ range .Alerts }}{{ .Annotations.summary }}\n{{ end }}',
        }],
      },
      // Secret with key `slack-url` (the on-call channel's incoming webhook) and `watchdog-url`.
      secret: 'mop-alerting',
    },
    // Namespaces OBI never instruments (the platform itself).
    obiExcludeNamespaces: ['kube-system', 'mop', 'mop-canary'],
    retention: { tracesHours: 336, metricsDays: 30, logsHours: 744 },
  },
}
