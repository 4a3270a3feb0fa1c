// Grafana (2 stateless replicas, HTTPS; anonymous users are Viewers at most): the three datasources
// with fixed UIDs, their correlations and mTLS client settings, and the MOP dashboards.
local config = import 'config.libsonnet';
local dashboards = import 'dashboards.libsonnet';
local k = import 'k.libsonnet';
function(cfg) {
  local ns = cfg.namespace,
  local name = 'grafana',
  local labels = k.labels(name, 'ui'),
  local selector = k.selector(name),
  local factor = config.profiles[cfg.profile],
  local port = 3000,
  local tls = (import 'tls.libsonnet')(cfg),
  // Every datasource presents Grafana's client certificate and checks the backend's name ($__file
  // is expanded by Grafana's provisioning).
  local mtls(service) = {
    jsonData+: { tlsAuth: true, tlsAuthWithCACert: true, serverName: tls.serverName(service) },
    secureJsonData: {
      tlsCACert: '$__file{%s}' % tls.ca,
      tlsClientCert: '$__file{%s}' % tls.cert,
      tlsClientKey: '$__file{%s}' % tls.key,
    },
  },

  // Grafana expands $VAR in provisioning files: $$ keeps a literal $ for its own template variables.
  local datasources = {
    apiVersion: 1,
    datasources: [
      {
        name: 'Mimir',
        uid: 'mop-mimir',
        type: 'prometheus',
        access: 'proxy',
        url: k.url(ns, 'mimir', 8080, '/prometheus'),
        isDefault: true,
        jsonData: {
          httpMethod: 'POST',
          prometheusType: 'Mimir',
          // Exemplars -> Tempo, under both labels the stack writes exemplars with: `trace_id` (Alloy's
          // span metrics, OTLP metrics) and `traceID` (Tempo's metrics-generator).
          exemplarTraceIdDestinations: [
            { name: 'trace_id', datasourceUid: 'mop-tempo' },
            { name: 'traceID', datasourceUid: 'mop-tempo' },
          ],
        },
      } + mtls('mimir'),
      {
        name: 'Tempo',
        uid: 'mop-tempo',
        type: 'tempo',
        access: 'proxy',
        url: k.url(ns, 'tempo', 3200),
        jsonData: {
          // Trace -> the service's logs of that trace: OTLP logs carry the trace id as structured
          // metadata (trace_id), matched by a label filter, not by searching the line for it.
          tracesToLogsV2: {
            datasourceUid: 'mop-loki',
            spanStartTimeShift: '-5m',
            spanEndTimeShift: '5m',
            customQuery: true,
            query: '{service_name="$${__span.tags["service.name"]}"} | trace_id="$${__trace.traceId}"',
          },
          // Trace -> RED metrics of the same Deployment (OBI series).
          tracesToMetrics: {
            datasourceUid: 'mop-mimir',
            spanStartTimeShift: '-5m',
            spanEndTimeShift: '5m',
            tags: [{ key: 'service.name', value: 'service_name' }, { key: 'k8s.deployment.name', value: 'k8s_deployment_name' }],
            queries: [
              { name: 'Request rate', query: 'sum(rate(http_server_request_duration_seconds_count{$$__tags}[5m]))' },
              { name: 'Error rate', query: 'sum(rate(http_server_request_duration_seconds_count{$$__tags, http_response_status_code=~"5.."}[5m]))' },
            ],
          },
          serviceMap: { datasourceUid: 'mop-mimir' },
          nodeGraph: { enabled: true },
          search: { hide: false },
          lokiSearch: { datasourceUid: 'mop-loki' },
        },
      } + mtls('tempo'),
      {
        name: 'Loki',
        uid: 'mop-loki',
        type: 'loki',
        access: 'proxy',
        url: k.url(ns, 'loki', 3100),
        jsonData: {
          // A trace id links to the trace in Tempo: from the structured metadata of OTLP logs, or
          // printed in the line of a pod log.
          derivedFields: [
            {
              name: 'trace_id',
              matcherType: 'label',
              matcherRegex: 'trace_id',
              datasourceUid: 'mop-tempo',
              url: '$${__value.raw}',
              urlDisplayLabel: 'View trace',
            },
            {
              name: 'TraceID',
              datasourceUid: 'mop-tempo',
              matcherRegex: '(?:trace_?id|traceID)["=: ]+"?(\\w+)',
              url: '$${__value.raw}',
              urlDisplayLabel: 'View trace',
            },
          ],
        },
      } + mtls('loki'),
    ],
  },
  local providers = {
    apiVersion: 1,
    providers: [{
      name: 'mop',
      folder: 'MOP',
      type: 'file',
      disableDeletion: true,
      allowUiUpdates: false,
      options: { path: '/var/lib/grafana/dashboards' },
    }],
  },
  local dashboardData = { [f]: std.manifestJsonEx(dashboards[f], '  ') for f in std.objectFields(dashboards) },
  local datasourcesText = std.manifestYamlDoc(datasources, quote_keys=false),

  certificate: tls.certificate(name, [name]),
  configmap: k.configMap('grafana-provisioning', ns, labels, {
    'datasources.yaml': datasourcesText,
    'dashboards.yaml': std.manifestYamlDoc(providers, quote_keys=false),
  }),
  dashboards: k.configMap('grafana-dashboards', ns, labels, dashboardData),
  service: k.service(name, ns, labels, selector, [{ name: 'http', port: port }]),
  pdb: k.pdb(name, ns, labels, selector),
  deployment: k.deployment(name, ns, labels, selector, config.replicas.grafana, k.podTemplate(labels, k.scrapeAnnotations(port) {
    'checksum/provisioning': std.md5(datasourcesText),
    'checksum/dashboards': std.md5(std.join('', [dashboardData[f] for f in std.objectFields(dashboardData)])),
  }, {
    securityContext: k.podSecurity(472),
    automountServiceAccountToken: false,
    containers: [{
      name: name,
      image: config.images.grafana,
      env: [
        // Anonymous users may look (Viewer), never change anything; admins log in.
        { name: 'GF_AUTH_ANONYMOUS_ENABLED', value: 'true' },
        { name: 'GF_AUTH_ANONYMOUS_ORG_ROLE', value: 'Viewer' },
        { name: 'GF_SERVER_PROTOCOL', value: 'https' },
        { name: 'GF_SERVER_CERT_FILE', value: tls.cert },
        { name: 'GF_SERVER_CERT_KEY', value: tls.key },
        { name: 'GF_ANALYTICS_REPORTING_ENABLED', value: 'false' },
        { name: 'GF_ANALYTICS_CHECK_FOR_UPDATES', value: 'false' },
        { name: 'GF_PATHS_DATA', value: '/var/lib/grafana/data' },
        { name: 'GF_PATHS_PROVISIONING', value: '/etc/grafana/provisioning' },
        { name: 'GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH', value: '/var/lib/grafana/dashboards/canary-analysis.json' },
      ],
      ports: [{ name: 'http', containerPort: port }],
      readinessProbe: k.httpProbe('/api/health', 'http', 5) + { httpGet+: { scheme: 'HTTPS' } },
      livenessProbe: k.httpProbe('/api/health', 'http', 30) + { httpGet+: { scheme: 'HTTPS' } },
      resources: k.resources(config.plan.grafana, factor),
      securityContext: k.containerSecurity,
      volumeMounts: [
        { name: 'provisioning', mountPath: '/etc/grafana/provisioning/datasources/mop.yaml', subPath: 'datasources.yaml', readOnly: true },
        { name: 'provisioning', mountPath: '/etc/grafana/provisioning/dashboards/mop.yaml', subPath: 'dashboards.yaml', readOnly: true },
        { name: 'dashboards', mountPath: '/var/lib/grafana/dashboards', readOnly: true },
        { name: 'data', mountPath: '/var/lib/grafana/data' },
        { name: 'tmp', mountPath: '/tmp' },
        tls.mount,
      ],
    }],
    volumes: [
      { name: 'provisioning', configMap: { name: 'grafana-provisioning' } },
      { name: 'dashboards', configMap: { name: 'grafana-dashboards' } },
      { name: 'data', emptyDir: {} },
      { name: 'tmp', emptyDir: {} },
      tls.volume(name),
    ],
  } + k.spread(selector))),
}
