// The Managed Observability Platform: new(overrides) returns every Kubernetes object of the stack,
// grouped by component (Tanka walks the nested objects).
local config = import 'config.libsonnet';
local k = import 'k.libsonnet';

{
  new(overrides):: {
    local merged = std.mergePatch(config.defaults, overrides),
    local cfg = merged {
      env: if std.objectHas(merged, 'env') then merged.env else error 'env is required',
      cluster: if std.objectHas(merged, 'cluster') then merged.cluster else self.env,
    },
    local profile = if std.objectHas(config.profiles, cfg.profile) then cfg.profile
    else error 'profile must be one of %s, got %s' % [std.join(', ', std.objectFields(config.profiles)), cfg.profile],
    local storage = (import 'storage.libsonnet')(cfg),
    local rules = (import 'rules.libsonnet')(cfg),

    namespace: k.namespace(cfg.namespace),
    tls: (import 'tls.libsonnet')(cfg).objects,
    network: (import 'network.libsonnet')(cfg),
    sampling: (import 'sampling.libsonnet')(cfg),
    storage: storage.objects,
    memcached: (import 'memcached.libsonnet')(cfg),
    kafka: (import 'kafka.libsonnet')(cfg),
    tempo: (import 'tempo.libsonnet')(cfg, storage),
    mimir: (import 'mimir.libsonnet')(cfg, storage, rules),
    loki: (import 'loki.libsonnet')(cfg, storage),
    alloy: (import 'alloy.libsonnet')(cfg),
    obi: (import 'obi.libsonnet')(cfg),
    grafana: (import 'grafana.libsonnet')(cfg),
  },
}
