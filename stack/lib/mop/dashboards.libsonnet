// The provisioned dashboards. Datasources are referenced by their fixed UIDs (grafana.libsonnet).
local slo = import 'slo.libsonnet';
local ds = {
  mimir: { type: 'prometheus', uid: 'mop-mimir' },
  tempo: { type: 'tempo', uid: 'mop-tempo' },
  loki: { type: 'loki', uid: 'mop-loki' },
};

local prom(expr, legend='') = { datasource: ds.mimir, expr: expr, legendFormat: legend };

local panel(title, targets, unit='short', type='timeseries', w=12, h=8) = {
  type: type,
  title: title,
  datasource: targets[0].datasource,
  fieldConfig: { defaults: { unit: unit }, overrides: [] },
  options: {},
  targets: [targets[i] { refId: std.char(65 + i) } for i in std.range(0, std.length(targets) - 1)],
  gridPos:: { w: w, h: h },
};

// Lay panels out left to right, wrapping at Grafana's 24 columns; give them ids.
local layout(panels) = std.foldl(
  function(acc, p)
    local fits = acc.x + p.gridPos.w <= 24;
    local x = if fits then acc.x else 0;
    local y = if fits then acc.y else acc.y + acc.rowH;
    {
      x: x + p.gridPos.w,
      y: y,
      rowH: if fits then std.max(acc.rowH, p.gridPos.h) else p.gridPos.h,
      // `:::` makes the hidden size field visible: a `:` override of a `::` field stays hidden.
      out: acc.out + [p { id: std.length(acc.out) + 1, gridPos::: { x: x, y: y, w: p.gridPos.w, h: p.gridPos.h } }],
    },
  panels,
  { x: 0, y: 0, rowH: 0, out: [] },
).out;

local dashboard(uid, title, panels, variables=[]) = {
  uid: uid,
  title: title,
  tags: ['mop'],
  editable: false,
  schemaVersion: 39,
  time: { from: 'now-1h', to: 'now' },
  refresh: '30s',
  timezone: 'utc',
  templating: { list: variables },
  panels: layout(panels),
};

local queryVariable(name, label, query) = {
  name: name,
  label: label,
  type: 'query',
  datasource: ds.mimir,
  query: { query: query, refId: 'PrometheusVariableQueryEditor-VariableQuery' },
  definition: query,
  refresh: 2,
  sort: 1,
  includeAll: false,
  multi: false,
};

local rate = '$__rate_interval';
local obi = 'k8s_namespace_name="$namespace", service_name="$service"';

{
  'canary-analysis.json': dashboard('mop-canary-analysis', 'Canary analysis', [
    panel('Canaries by phase', [prom('sum by (phase) (canary_canaries)', '{{phase}}')], type='stat', w=24, h=5),
    panel('Checks by result', [prom('sum by (result) (rate(canary_checks_total[%s]))' % rate, '{{result}}')], 'ops'),
    panel('Decision latency', [
      prom('histogram_quantile(0.5, sum by (le) (rate(canary_decision_seconds_bucket[%s])))' % rate, 'p50'),
      prom('histogram_quantile(0.99, sum by (le) (rate(canary_decision_seconds_bucket[%s])))' % rate, 'p99'),
    ], 's'),
    panel('Rollbacks', [prom('sum by (namespace, deployment, action) (increase(canary_rollbacks_total[$__range]))', '{{namespace}}/{{deployment}} {{action}}')], type='table'),
    panel('Promotions', [prom('sum by (namespace, deployment) (increase(canary_promotions_total[$__range]))', '{{namespace}}/{{deployment}}')], type='table'),
    panel('Backend query latency p99', [prom('histogram_quantile(0.99, sum by (le, backend) (rate(canary_backend_query_seconds_bucket[%s])))' % rate, '{{backend}}')], 's'),
    panel('Backend errors', [prom('sum by (backend, kind) (rate(canary_backend_errors_total[%s]))' % rate, '{{backend}} {{kind}}')], 'ops'),
    panel('Notifications', [prom('sum by (sink, result) (rate(canary_notifications_total[%s]))' % rate, '{{sink}} {{result}}')], 'ops', w=24),
  ]),

  'service-red.json': dashboard('mop-service-red', 'Service RED', [
    panel('Requests by Deployment', [prom('sum by (k8s_deployment_name) (rate(http_server_request_duration_seconds_count{%s}[%s]))' % [obi, rate], '{{k8s_deployment_name}}')], 'reqps', w=8),
    panel('Error ratio by Deployment (canary vs baseline)', [prom(
      'sum by (k8s_deployment_name) (rate(http_server_request_duration_seconds_count{%s, http_response_status_code=~"5.."}[%s])) / sum by (k8s_deployment_name) (rate(http_server_request_duration_seconds_count{%s}[%s]))' % [obi, rate, obi, rate],
      '{{k8s_deployment_name}}'
    )], 'percentunit', w=8),
    panel('p99 latency by Deployment', [prom('histogram_quantile(0.99, sum by (le, k8s_deployment_name) (rate(http_server_request_duration_seconds_bucket{%s}[%s])))' % [obi, rate], '{{k8s_deployment_name}}')], 's', w=8),
    panel('Requests by ReplicaSet', [prom('sum by (k8s_replicaset_name) (rate(http_server_request_duration_seconds_count{%s}[%s]))' % [obi, rate], '{{k8s_replicaset_name}}')], 'reqps', w=8),
    panel('Error ratio by ReplicaSet (new vs previous revision)', [prom(
      'sum by (k8s_replicaset_name) (rate(http_server_request_duration_seconds_count{%s, http_response_status_code=~"5.."}[%s])) / sum by (k8s_replicaset_name) (rate(http_server_request_duration_seconds_count{%s}[%s]))' % [obi, rate, obi, rate],
      '{{k8s_replicaset_name}}'
    )], 'percentunit', w=8),
    panel('p99 latency by ReplicaSet', [prom('histogram_quantile(0.99, sum by (le, k8s_replicaset_name) (rate(http_server_request_duration_seconds_bucket{%s}[%s])))' % [obi, rate], '{{k8s_replicaset_name}}')], 's', w=8),
    panel('gRPC errors by Deployment', [prom('sum by (k8s_deployment_name, rpc_grpc_status_code) (rate(rpc_server_duration_seconds_count{%s, rpc_grpc_status_code!="0"}[%s]))' % [obi, rate], '{{k8s_deployment_name}} {{rpc_grpc_status_code}}')], 'ops'),
    panel('Error traces', [{
      datasource: ds.tempo,
      queryType: 'traceql',
      query: '{ resource.service.name = "$service" && resource.k8s.namespace.name = "$namespace" && status = error }',
      limit: 20,
    }], type='table'),
    panel('Logs', [{ datasource: ds.loki, expr: '{namespace="$namespace"} |~ "(?i)error"' }], type='logs', w=24),
  ], [
    queryVariable('namespace', 'Namespace', 'label_values(http_server_request_duration_seconds_count, k8s_namespace_name)'),
    queryVariable('service', 'Service', 'label_values(http_server_request_duration_seconds_count{k8s_namespace_name="$namespace"}, service_name)'),
  ]),

  // The stack's own SLOs (slo.libsonnet): SLIs against their objectives, budget burn, budget left.
  'mop-slo.json': dashboard('mop-slo', 'MOP SLOs', [
    panel('Ingestion availability (30m)', [prom('1 - mop_slo:ingestion_errors:ratio_rate30m', 'availability')], 'percentunit', type='stat', w=6, h=5),
    panel('Ingestion error budget left (3d)', [prom('1 - mop_slo:ingestion_errors:ratio_rate3d / %s' % slo.budgets.ingestion, 'budget left')], 'percentunit', type='stat', w=6, h=5),
    panel('Queries under 1 s (30m)', [prom('1 - mop_slo:query_latency_errors:ratio_rate30m', 'under 1 s')], 'percentunit', type='stat', w=6, h=5),
    panel('Query latency error budget left (3d)', [prom('1 - mop_slo:query_latency_errors:ratio_rate3d / %s' % slo.budgets.latency, 'budget left')], 'percentunit', type='stat', w=6, h=5),
    panel('Ingestion burn rate', [
      prom('mop_slo:ingestion_errors:ratio_rate%s / %s' % [w, slo.budgets.ingestion], w)
      for w in ['5m', '1h', '6h', '1d']
    ]),
    panel('Query latency burn rate', [
      prom('mop_slo:query_latency_errors:ratio_rate%s / %s' % [w, slo.budgets.latency], w)
      for w in ['5m', '1h', '6h', '1d']
    ]),
    panel('Failed sends by signal', [
      prom('sum(rate(otelcol_exporter_send_failed_spans_total[%s]))' % rate, 'spans'),
      prom('sum(rate(otelcol_exporter_send_failed_log_records_total[%s]))' % rate, 'log records'),
      prom('sum(rate(prometheus_remote_storage_samples_failed_total[%s]))' % rate, 'samples'),
    ], 'ops', w=24),
  ]),

  'mop-health.json': dashboard('mop-health', 'MOP health', [
    panel('Scrape targets up', [prom('sum by (job) (up)', '{{job}}')], w=24, h=6),
    panel('Spans into Alloy', [
      prom('sum(rate(otelcol_receiver_accepted_spans_total[%s]))' % rate, 'accepted'),
      prom('sum(rate(otelcol_receiver_refused_spans_total[%s]))' % rate, 'refused'),
    ], 'ops', w=8),
    panel('Span export failures', [prom('sum(rate(otelcol_exporter_send_failed_spans_total[%s]))' % rate, 'failed')], 'ops', w=8),
    panel('Tempo spans received / discarded', [
      prom('sum(rate(tempo_distributor_spans_received_total[%s]))' % rate, 'received'),
      prom('sum by (reason) (rate(tempo_discarded_spans_total[%s]))' % rate, 'discarded {{reason}}'),
    ], 'ops', w=8),
    panel('Mimir samples received / discarded', [
      prom('sum(rate(cortex_distributor_received_samples_total[%s]))' % rate, 'received'),
      prom('sum by (reason) (rate(cortex_discarded_samples_total[%s]))' % rate, 'discarded {{reason}}'),
    ], 'ops', w=8),
    panel('Remote write failures', [prom('sum(rate(prometheus_remote_storage_samples_failed_total[%s]))' % rate, 'failed')], 'ops', w=8),
    panel('Active series', [prom('sum(cortex_ingester_memory_series)', 'series')], w=8),
    panel('Loki lines received', [prom('sum(rate(loki_distributor_lines_received_total[%s]))' % rate, 'lines')], 'ops', w=12),
    panel('Memory by component', [prom('sum by (job) (process_resident_memory_bytes)', '{{job}}')], 'bytes', w=12),
  ]),
}
