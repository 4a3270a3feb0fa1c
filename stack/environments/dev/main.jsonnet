// dev: everything in the cluster, including an S3-compatible store (no cloud account needed).
// Profile: tk show environments/dev --tla-str profile=medium (default small).
local mop = import 'mop/mop.libsonnet';

function(profile='small') mop.new({
  env: 'dev',
  profile: profile,
  storage: { provider: 's3', inClusterS3: true },
})
