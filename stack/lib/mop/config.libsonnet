// Defaults for every MOP environment: images, the capacity plan and the knobs an environment may override.
{
  // Explicit release tags only; bump them here and nowhere else.
  images: {
    obi: 'docker.io/otel/ebpf-instrument:v0.5.0',
    alloy: 'docker.io/grafana/alloy:v1.19.1',
    tempo: 'docker.io/grafana/tempo:3.0.2',
    mimir: 'docker.io/grafana/mimir:3.0.2',
    loki: 'docker.io/grafana/loki:3.7.5',
    grafana: 'docker.io/grafana/grafana:13.1.0',
    memcached: 'docker.io/library/memcached:1.6.44-alpine',
    minio: 'quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z',
  },

  // Capacity plan, profile "small" (dev/test: 10-50 services, <1M spans/day), per pod (OBI: per node).
  // cpu in millicores, memory in MiB. "medium" is 3x, "large" 10x.
  plan: {
    obi: { cpu: 200, memory: 256 },
    alloy: { cpu: 1000, memory: 2048 },
    tempo: { cpu: 2000, memory: 4096 },
    mimir: { cpu: 2000, memory: 4096 },
    loki: { cpu: 2000, memory: 4096 },
    grafana: { cpu: 500, memory: 1024 },
    // Not in the capacity plan; sized to the backends they serve.
    memcached: { cpu: 250, memory: 1024 },
    minio: { cpu: 500, memory: 1024 },
  },
  profiles: { small: 1, medium: 3, large: 10 },

  replicas: { alloy: 3, tempo: 3, mimir: 3, loki: 3, grafana: 2, memcached: 2, minio: 1 },

  // Persistent volume per replica for the profile "small"; scaled like the plan.
  volumeGi: { tempo: 10, mimir: 20, loki: 10, minio: 50 },

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
    // Namespaces OBI never instruments (the platform itself).
    obiExcludeNamespaces: ['kube-system', 'mop', 'mop-canary'],
    retention: { tracesHours: 336, metricsDays: 30, logsHours: 744 },
  },
}
