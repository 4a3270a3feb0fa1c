// The MOP stack's SLOs, measured where users feel them:
//   ingestion availability 99.9%: telemetry Alloy hands to Tempo, Mimir and Loki is accepted (failed
//     sends of spans, log records and samples over everything sent);
//   query latency: 99% of queries to Mimir, Tempo and Loki answered in under 1 s.
// Recording rules give each SLI's error ratio over every window the burn-rate alerts use; the alerts
// pair a long and a short window (page: 14.4x over 1h+5m, 6x over 6h+30m; ticket: 3x over 1d+2h,
// 1x over 3d+6h), so they fire fast on a sharp burn and stop soon after it ends.
local windows = ['5m', '30m', '1h', '2h', '6h', '1d', '3d'];

// Built by concatenation: std.format is slow in Jsonnet and these are many strings.
local sum(expr) = '(sum(' + expr + ') or vector(0))';
local rate(metric, w) = sum('rate(' + metric + '[' + w + '])');

// Error and total event rates of each SLI over a window.
local ingestion = {
  errors(w):: std.join(' + ', [
    rate('otelcol_exporter_send_failed_spans_total', w),
    rate('otelcol_exporter_send_failed_log_records_total', w),
    rate('prometheus_remote_storage_samples_failed_total', w),
  ]),
  total(w):: std.join(' + ', [
    rate('otelcol_exporter_sent_spans_total', w),
    rate('otelcol_exporter_sent_log_records_total', w),
    rate('prometheus_remote_storage_samples_total', w),
  ]) + ' + ' + self.errors(w),
};

local queryRoutes = {
  cortex: 'prometheus_api_v1_query|prometheus_api_v1_query_range',
  tempo: 'api_search|api_traces_traceid|api_v2_traces_traceid|api_metrics_query|api_metrics_query_range',
  loki: 'loki_api_v1_query|loki_api_v1_query_range',
};
local latency = {
  local bucket(le, w) = std.join(' + ', [
    rate(p + '_request_duration_seconds_bucket{route=~"' + queryRoutes[p] + '", le="' + le + '"}', w)
    for p in ['cortex', 'tempo', 'loki']
  ]),
  total(w):: bucket('+Inf', w),
  // Slow = answered in more than 1 s (every request minus those in the le="1" bucket).
  errors(w):: '(' + self.total(w) + ') - (' + bucket('1', w) + ')',
};

local record(name, w) = 'mop_slo:' + name + '_errors:ratio_rate' + w;
local ratioRules(name, sli) = [
  { record: record(name, w), expr: '(' + sli.errors(w) + ') / clamp_min(' + sli.total(w) + ', 1e-9)' }
  for w in windows
];

// slo: { name, title, objective (text, e.g. '99.9'), budget (text, 1 - objective, e.g. '0.001') }
local burnAlerts(slo) = [
  {
    alert: 'Mop' + slo.title + 'BudgetBurn',
    expr: std.join(' or ', [
      '(' + record(slo.name, p.long) + ' > ' + p.factor + ' * ' + slo.budget
      + ' and ' + record(slo.name, p.short) + ' > ' + p.factor + ' * ' + slo.budget + ')'
      for p in pairs
    ]),
    'for': pairs[0].for_,
    labels: { severity: pairs[0].severity, slo: slo.name },
    annotations: {
      summary: slo.title + ' SLO (' + slo.objective + '%) burns its error budget ' + pairs[0].speed,
    },
  }
  for pairs in [
    [
      { long: '1h', short: '5m', factor: '14.4', severity: 'critical', for_: '2m', speed: 'fast' },
      { long: '6h', short: '30m', factor: '6', severity: 'critical', for_: '2m', speed: 'fast' },
    ],
    [
      { long: '1d', short: '2h', factor: '3', severity: 'warning', for_: '15m', speed: 'slowly' },
      { long: '3d', short: '6h', factor: '1', severity: 'warning', for_: '15m', speed: 'slowly' },
    ],
  ]
];

local slos = {
  ingestion: { name: 'ingestion', title: 'IngestionAvailability', objective: '99.9', budget: '0.001' },
  latency: { name: 'query_latency', title: 'QueryLatency', objective: '99', budget: '0.01' },
};

// Every scraped component (OBI and Kafka are not scraped: OBI's metrics arrive over OTLP, Tempo's
// Kafka clients report the broker's health); job is "<namespace>/<app.kubernetes.io/name>".
local components(cfg) = [
  'alloy', 'mimir', 'loki', 'grafana',
  'tempo-distributor', 'tempo-live-store', 'tempo-block-builder', 'tempo-metrics-generator',
  'tempo-query-frontend', 'tempo-querier', 'tempo-backend-scheduler', 'tempo-backend-worker',
];

{
  // The error budgets (1 - objective), as PromQL literals.
  budgets:: { ingestion: slos.ingestion.budget, latency: slos.latency.budget },
  windows:: windows,
  components:: components,

  groups(cfg):: [
    {
      name: 'mop-slo-recording',
      rules: ratioRules('ingestion', ingestion) + ratioRules('query_latency', latency),
    },
    {
      name: 'mop-slo-alerts',
      rules: burnAlerts(slos.ingestion) + burnAlerts(slos.latency),
    },
    {
      name: 'mop-meta',
      rules: [
        {
          alert: 'Watchdog',
          expr: 'vector(1)',
          labels: { severity: 'none' },
          annotations: { summary: 'Always firing: proves rules are evaluated and alerts are delivered (dead man\'s switch)' },
        },
      ] + [
        {
          alert: 'MopComponentAbsent',
          expr: 'absent(up{job="' + cfg.namespace + '/' + c + '"})',
          'for': '10m',
          labels: { severity: 'critical', component: c },
          annotations: { summary: 'No ' + c + ' target has been scraped for 10 minutes (not deployed, or discovery broken)' },
        }
        for c in components(cfg)
      ],
    },
  ],
}
