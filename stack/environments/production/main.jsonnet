// production: Google Cloud Storage through GKE workload identity (no key in the cluster), and a second
// trace destination (the long-term archive) fed by the same sampled stream.
local mop = import 'mop/mop.libsonnet';

function(profile='large') mop.new({
  env: 'production',
  profile: profile,
  storage: {
    provider: 'gcs',
    bucketPrefix: 'mop-production',
    credentialsSecret: '',
    serviceAccountAnnotations: { 'iam.gke.io/gcp-service-account': 'mop-storage@mop-production.iam.gserviceaccount.com' },
  },
  alloy: {
    sampledPercent: 5,
    extraTraceDestinations: [{ name: 'archive', endpoint: 'traces-archive.observability.svc.cluster.local:4317' }],
  },
  retention: { tracesHours: 720, metricsDays: 395, logsHours: 2160 },
})
