// Default-deny NetworkPolicies: every MOP pod gets one policy allowing exactly the flows of the
// data-flow diagram (and DNS), nothing else:
//   OBI -> Alloy (OTLP) ; Alloy <-> Alloy (load balancing, clustering) ; Alloy -> Tempo distributor,
//   Mimir, Loki ; Alloy -> every annotated /metrics endpoint (scrape) and the API server (discovery,
//   Kubernetes attributes, pod logs, the sampling ConfigMap) ; Tempo components <-> each other and
//   -> Kafka ; Tempo metrics-generator -> Mimir ; Mimir, Loki, Tempo -> object storage (and, Mimir,
//   -> memcached, -> the alert receivers) ; Grafana -> Mimir, Tempo, Loki ; users -> Grafana ;
//   the canary controller -> Mimir, Tempo, Loki (its API-server and Slack egress are in manifests/).
// Addresses outside the cluster (API server, cloud object storage, Slack/alert receivers) are HTTPS
// egress to cfg.network.externalCIDRs (default: anywhere), narrowed per environment.
local config = import 'config.libsonnet';
local k = import 'k.libsonnet';
function(cfg) {
  local ns = cfg.namespace,
  local sel(name) = k.selector(name),
  local tempoAll = { 'app.kubernetes.io/instance': 'tempo', 'app.kubernetes.io/part-of': 'mop' },
  local from(peers, ports) = { from: peers, ports: k.tcp(ports) },
  local to(peers, ports) = { to: peers, ports: k.tcp(ports) },
  local local_(selector) = { podSelector: { matchLabels: selector } },
  local controller = k.peer(cfg.controllerNamespace, { 'app.kubernetes.io/name': 'mop-canary' }),
  local external(ports) = { to: [{ ipBlock: { cidr: c } } for c in cfg.network.externalCIDRs], ports: k.tcp(ports) },
  local alloyScrape(ports) = from([local_(sel('alloy'))], ports),
  local objectStorage = if cfg.storage.inClusterS3 then to([local_(sel('minio'))], [9000]) else external([443]),
  local policy(name, selector, ingress, egress) = k.networkPolicy('mop-' + name, ns, selector, ingress, egress),

  obi: policy('obi', sel('obi'), [], [to([local_(sel('alloy'))], [4317]), external([443, 6443])]),
  alloy: policy('alloy', sel('alloy'), [
    from([local_(sel('obi'))], [4317, 4318]),
    from([local_(sel('alloy'))], [4319, 12345]),
  ], [
    to([local_(sel('alloy'))], [4319, 12345]),
    to([local_(sel('tempo-distributor'))], [4317]),
    to([local_(sel('mimir'))], [8080]),
    to([local_(sel('loki'))], [3100]),
    // Scrapes: the MOP components here, the controller and annotated applications anywhere.
    { to: [{ namespaceSelector: {} }] },
    external([443, 6443]),
  ]),
  // Ingress-only additions for the two Tempo entry points (policies add up).
  local entry(name, selector, ingress) = k.networkPolicy('mop-' + name, ns, selector, ingress, []) {
    spec+: { policyTypes: ['Ingress'], egress:: null },
  },
  tempoDistributor: entry('tempo-distributor', sel('tempo-distributor'), [from([local_(sel('alloy'))], [4317])]),
  tempoQueryFrontend: entry('tempo-query-frontend', sel('tempo-query-frontend'), [
    from([local_(sel('grafana')), controller], [3200]),
  ]),
  tempo: policy('tempo', tempoAll, [
    from([local_(tempoAll)], [3200, 9095, 7946]),
    alloyScrape([3200]),
  ], [
    to([local_(tempoAll)], [3200, 9095, 7946]),
    to([local_(sel('kafka'))], [9093]),
    to([local_(sel('mimir'))], [8080]),
    objectStorage,
  ]),
  kafka: policy('kafka', sel('kafka'), [
    from([local_(tempoAll)], [9093]),
    from([local_(sel('kafka'))], [9093, 9094]),
  ], [to([local_(sel('kafka'))], [9093, 9094])]),
  mimir: policy('mimir', sel('mimir'), [
    from([local_(sel('mimir'))], [8080, 9095, 7946]),
    from([local_(sel('alloy'))], [8080]),
    from([local_(tempoAll)], [8080]),
    from([local_(sel('grafana')), controller], [8080]),
  ], [
    to([local_(sel('mimir'))], [8080, 9095, 7946]),
    to([local_(sel('memcached'))], [11211]),
    objectStorage,
    // Alert receivers (Slack, pager, the dead man's switch).
    external([443]),
  ]),
  memcached: policy('memcached', sel('memcached'), [from([local_(sel('mimir'))], [11211])], []),
  loki: policy('loki', sel('loki'), [
    from([local_(sel('loki'))], [3100, 9095, 7946]),
    from([local_(sel('alloy'))], [3100]),
    from([local_(sel('grafana')), controller], [3100]),
  ], [
    to([local_(sel('loki'))], [3100, 9095, 7946]),
    objectStorage,
  ]),
  grafana: policy('grafana', sel('grafana'), [
    // Users (any source) and Alloy's scrape.
    { ports: k.tcp([3000]) },
  ], [
    to([local_(sel('mimir'))], [8080]),
    to([local_(sel('tempo-query-frontend'))], [3200]),
    to([local_(sel('loki'))], [3100]),
  ]),
  minio: if cfg.storage.inClusterS3 then policy('minio', sel('minio'), [
    from([local_(tempoAll), local_(sel('mimir')), local_(sel('loki'))], [9000]),
    alloyScrape([9000]),
  ], []) else null,
}
