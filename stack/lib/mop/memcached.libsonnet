// Memcached for Mimir's chunks, index, metadata and query-results caches.
local config = import 'config.libsonnet';
local k = import 'k.libsonnet';

function(cfg) {
  local ns = cfg.namespace,
  local name = 'memcached',
  local labels = k.labels(name, 'cache'),
  local selector = k.selector(name),
  local factor = config.profiles[cfg.profile],
  local memoryMi = config.plan.memcached.memory * factor,

  // Headless: clients resolve every replica (dns+ discovery) and shard keys over them.
  service: k.service(name, ns, labels, selector, [{ name: 'client', port: 11211 }], headless=true),
  pdb: k.pdb(name, ns, labels, selector),
  deployment: k.deployment(name, ns, labels, selector, config.replicas.memcached, k.podTemplate(labels, {}, {
    securityContext: k.podSecurity(11211),
    automountServiceAccountToken: false,
    containers: [{
      name: name,
      image: config.images.memcached,
      // Item memory leaves 10% of the container for connections and overhead.
      args: ['-m', std.toString(std.floor(memoryMi * 0.9)), '-I', '5m', '-c', '4096', '-v'],
      ports: [{ name: 'client', containerPort: 11211 }],
      readinessProbe: k.tcpProbe('client', 5),
      livenessProbe: k.tcpProbe('client', 30),
      resources: k.resources(config.plan.memcached, factor),
      securityContext: k.containerSecurity,
    }],
  } + k.spread(selector))),
}
