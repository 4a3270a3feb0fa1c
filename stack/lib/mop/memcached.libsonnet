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
  local tls = (import 'tls.libsonnet')(cfg),

  // Headless: clients resolve every replica (dns+ discovery) and shard keys over them.
  certificate: tls.certificate(name, [name], [name]),
  service: k.service(name, ns, labels, selector, [{ name: 'client', port: 11211 }], headless=true),
  pdb: k.pdb(name, ns, labels, selector),
  deployment: k.deployment(name, ns, labels, selector, config.replicas.memcached, k.podTemplate(labels, {}, {
    securityContext: k.podSecurity(11211),
    automountServiceAccountToken: false,
    containers: [{
      name: name,
      image: config.images.memcached,
      // Item memory leaves 10% of the container for connections and overhead. TLS only (-Z), and a
      // client certificate signed by the CA is required (ssl_verify_mode=2).
      args: ['-m', std.toString(std.floor(memoryMi * 0.9)), '-I', '5m', '-c', '4096', '-v', '-Z', '-o',
             'ssl_chain_cert=%s,ssl_key=%s,ssl_ca_cert=%s,ssl_verify_mode=2' % [tls.cert, tls.key, tls.ca]],
      ports: [{ name: 'client', containerPort: 11211 }],
      readinessProbe: k.tcpProbe('client', 5),
      livenessProbe: k.tcpProbe('client', 30),
      resources: k.resources(config.plan.memcached, factor),
      securityContext: k.containerSecurity,
      volumeMounts: [tls.mount],
    }],
    volumes: [tls.volume(name)],
  } + k.spread(selector))),
}
