// Grafana (2 stateless replicas, anonymous admin: internal use only): the three datasources with fixed
// UIDs and their correlations, and the MOP dashboards.
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
          // Exemplars -> Tempo
          exemplarTraceIdDestinations: [{ name: 'trace_id', datasourceUid: 'mop-tempo' }],
        },
      },
      {
        name: 'Tempo',
        uid: 'mop-tempo',
        type: 'tempo',
        access: 'proxy',
        url: k.url(ns, 'tempo', 3200),
        jsonData: {
          // Trace -> logs of the same pod around the span.
          tracesToLogsV2: {
            datasourceUid: 'mop-loki',
            spanStartTimeShift: '-5m',
            spanEndTimeShift: '5m',
            filterByTraceID: true,
            tags: [{ key: 'k8s.namespace.name', value: 'namespace' }, { key: 'k8s.pod.name', value: 'pod' }],
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
      },
      {
        name: 'Loki',
        uid: 'mop-loki',
        type: 'loki',
        access: 'proxy',
        url: k.url(ns, 'loki', 3100),
        jsonData: {
          // A trace id in a log line links to the trace in Tempo.
          derivedFields: [{
            name: 'TraceID',
            datasourceUid: 'mop-tempo',
            matcherRegex: '(?:trace_?id|traceID)["=: ]+"?(\\w+)',
            url: '$${__value.raw}',
            urlDisplayLabel: 'View trace',
          }],
        },
      },
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
        { name: 'GF_AUTH_ANONYMOUS_ENABLED', value: 'true' },
        { name: 'GF_AUTH_ANONYMOUS_ORG_ROLE', value: 'Admin' },
        { name: 'GF_AUTH_DISABLE_LOGIN_FORM', value: 'true' },
        { name: 'GF_AUTH_BASIC_ENABLED', value: 'false' },
        { name: 'GF_ANALYTICS_REPORTING_ENABLED', value: 'false' },
        { name: 'GF_ANALYTICS_CHECK_FOR_UPDATES', value: 'false' },
        { name: 'GF_PATHS_DATA', value: '/var/lib/grafana/data' },
        { name: 'GF_PATHS_PROVISIONING', value: '/etc/grafana/provisioning' },
        { name: 'GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH', value: '/var/lib/grafana/dashboards/canary-analysis.json' },
      ],
      ports: [{ name: 'http', containerPort: port }],
      readinessProbe: k.httpProbe('/api/health', 'http', 5),
      livenessProbe: k.httpProbe('/api/health', 'http', 30),
      resources: k.resources(config.plan.grafana, factor),
      securityContext: k.containerSecurity,
      volumeMounts: [
        { name: 'provisioning', mountPath: '/etc/grafana/provisioning/datasources/mop.yaml', subPath: 'datasources.yaml', readOnly: true },
        { name: 'provisioning', mountPath: '/etc/grafana/provisioning/dashboards/mop.yaml', subPath: 'dashboards.yaml', readOnly: true },
        { name: 'dashboards', mountPath: '/var/lib/grafana/dashboards', readOnly: true },
        { name: 'data', mountPath: '/var/lib/grafana/data' },
        { name: 'tmp', mountPath: '/tmp' },
      ],
    }],
    volumes: [
      { name: 'provisioning', configMap: { name: 'grafana-provisioning' } },
      { name: 'dashboards', configMap: { name: 'grafana-dashboards' } },
      { name: 'data', emptyDir: {} },
      { name: 'tmp', emptyDir: {} },
    ],
  } + k.spread(selector))),
}
