// mTLS for every component-to-component hop, with certificates from cert-manager.
//
// Default: the stack brings its own CA. A self-signed ClusterIssuer makes a root CA Certificate in
// tls.caNamespace (cert-manager's cluster resource namespace), and the ClusterIssuer `mop-ca` signs
// every component's certificate with it. Bring your own CA: set tls.issuer to your issuer's
// {kind, name}; the stack then creates no CA and requests every certificate from that issuer.
//
// Each component gets one Secret `<name>-tls` (tls.crt, tls.key and the CA as ca.crt) mounted at
// /etc/mop/tls; its certificate serves its Services' names and authenticates it as a client (both
// usages), so every server can require and verify client certificates.
local k = import 'k.libsonnet';

function(cfg) {
  local t = cfg.tls,
  local ownCA = t.issuer == null,
  local labels = k.labels('mop-tls', 'security'),

  issuerRef:: if ownCA then { group: 'cert-manager.io', kind: 'ClusterIssuer', name: 'mop-ca' }
  else { group: 'cert-manager.io' } + t.issuer,

  dir:: '/etc/mop/tls',
  ca:: self.dir + '/ca.crt',
  cert:: self.dir + '/tls.crt',
  key:: self.dir + '/tls.key',
  volume(name):: { name: 'tls', secret: { secretName: name + '-tls' } },
  mount:: { name: 'tls', mountPath: $.dir, readOnly: true },

  // The name every client checks a component's certificate for.
  serverName(service):: '%s.%s.svc.cluster.local' % [service, cfg.namespace],

  // dskit (Tempo, Mimir, Loki): servers require a client certificate signed by the CA.
  dskitServer:: { cert_file: $.cert, key_file: $.key, client_ca_file: $.ca, client_auth_type: 'RequireAndVerifyClientCert' },
  dskitClient(service):: {
    tls_enabled: true,
    tls_cert_path: $.cert,
    tls_key_path: $.key,
    tls_ca_path: $.ca,
    tls_server_name: $.serverName(service),
  },
  // Prometheus-style HTTP clients (remote_write, scrape).
  promClient(service):: { ca_file: $.ca, cert_file: $.cert, key_file: $.key, server_name: $.serverName(service) },
  // OpenTelemetry Collector servers (Tempo's OTLP receivers).
  otelServer:: { cert_file: $.cert, key_file: $.key, client_ca_file: $.ca },

  // services: the Services whose names the certificate serves; headless: those whose pods are
  // addressed one by one (<pod>.<service>).
  certificate(name, services, headless=[], extra={}):: {
    apiVersion: 'cert-manager.io/v1',
    kind: 'Certificate',
    metadata: { name: name, namespace: cfg.namespace, labels: k.labels(name, 'security') },
    spec: {
      secretName: name + '-tls',
      // A client-only certificate (no Service: OBI) is named by its component.
      commonName: if services == [] then '%s.%s' % [name, cfg.namespace] else $.serverName(services[0]),
      dnsNames: std.flattenArrays([
        [s, '%s.%s' % [s, cfg.namespace], '%s.%s.svc' % [s, cfg.namespace], $.serverName(s)]
        for s in services
      ]) + ['*.' + $.serverName(h) for h in headless],
      duration: '2160h',
      renewBefore: '360h',
      privateKey: { algorithm: 'ECDSA', size: 256, rotationPolicy: 'Always' },
      usages: (if services == [] then [] else ['server auth']) + ['client auth', 'digital signature', 'key encipherment'],
      issuerRef: $.issuerRef,
    } + extra,
  },

  objects: if !ownCA then {} else {
    selfsigned: {
      apiVersion: 'cert-manager.io/v1',
      kind: 'ClusterIssuer',
      metadata: { name: 'mop-selfsigned', labels: labels },
      spec: { selfSigned: {} },
    },
    root: {
      apiVersion: 'cert-manager.io/v1',
      kind: 'Certificate',
      metadata: { name: 'mop-ca', namespace: t.caNamespace, labels: labels },
      spec: {
        isCA: true,
        commonName: 'mop-ca',
        secretName: 'mop-ca',
        duration: '87600h',
        privateKey: { algorithm: 'ECDSA', size: 256 },
        issuerRef: { group: 'cert-manager.io', kind: 'ClusterIssuer', name: 'mop-selfsigned' },
      },
    },
    issuer: {
      apiVersion: 'cert-manager.io/v1',
      kind: 'ClusterIssuer',
      metadata: { name: 'mop-ca', labels: labels },
      spec: { ca: { secretName: 'mop-ca' } },
    },
  },
}
