// staging: AWS S3 with keys from the Secret mop-object-storage (access_key_id, secret_access_key),
// created out of band; tail sampling keeps a larger share than production.
local mop = import 'mop/mop.libsonnet';

function(profile='medium') mop.new({
  env: 'staging',
  profile: profile,
  storage: {
    provider: 's3',
    bucketPrefix: 'mop-staging',
    s3: { endpoint: 's3.eu-west-1.amazonaws.com', region: 'eu-west-1', insecure: false },
  },
  alloy: { sampledPercent: 25 },
})
