// Alert rules for the health of the telemetry pipeline itself, evaluated by Mimir's ruler.
// Every MOP component is scraped by Alloy under job "<namespace>/<app.kubernetes.io/name>".
// Plus the MOP's own SLOs (recording rules and multi-window, multi-burn-rate alerts, as in the Google
// SRE workbook), the Watchdog (always firing: proves the alerting path end to end) and absent() alerts
// for components whose metrics vanish (a dead target raises no rate-based alert).
local slo = import 'slo.libsonnet';

function(cfg) std.manifestYamlDoc({
  groups: [
    {
      name: 'mop-pipeline',
      rules: [
        {
          alert: 'MopComponentDown',
          expr: 'up{namespace="%s"} == 0' % cfg.namespace,
          'for': '5m',
          labels: { severity: 'warning' },
          annotations: { summary: '{{ $labels.job }} target {{ $labels.instance }} is not scraped' },
        },
        {
          alert: 'MopTraceIngestionFailing',
          expr: 'sum(rate(otelcol_exporter_send_failed_spans_total[5m])) > 0',
          'for': '10m',
          labels: { severity: 'critical' },
          annotations: { summary: 'Alloy fails to send spans to Tempo' },
        },
        {
          alert: 'MopSpansDropped',
          expr: 'sum by (reason) (rate(tempo_discarded_spans_total[5m])) > 0 or sum(rate(otelcol_receiver_refused_spans_total[5m])) > 0',
          'for': '10m',
          labels: { severity: 'warning' },
          annotations: { summary: 'Spans are dropped before they reach storage' },
        },
        {
          alert: 'MopMetricIngestionFailing',
          expr: 'sum(rate(prometheus_remote_storage_samples_failed_total[5m])) > 0',
          'for': '10m',
          labels: { severity: 'critical' },
          annotations: { summary: 'Remote write to Mimir is failing' },
        },
        {
          alert: 'MopMetricSamplesDiscarded',
          expr: 'sum by (reason) (rate(cortex_discarded_samples_total[5m])) > 0',
          'for': '15m',
          labels: { severity: 'warning' },
          annotations: { summary: 'Mimir discards samples ({{ $labels.reason }})' },
        },
        {
          alert: 'MopLogIngestionFailing',
          expr: 'sum(rate(loki_write_dropped_entries_total[5m])) > 0 or sum(rate(otelcol_exporter_send_failed_log_records_total[5m])) > 0',
          'for': '10m',
          labels: { severity: 'critical' },
          annotations: { summary: 'Logs are not reaching Loki' },
        },
        {
          alert: 'MopMimirCompactorStuck',
          expr: '(time() - max(cortex_compactor_last_successful_run_timestamp_seconds)) > 86400',
          'for': '1h',
          labels: { severity: 'critical' },
          annotations: { summary: 'The Mimir compactor has not completed a run for a day' },
        },
        {
          alert: 'MopTempoCompactionBacklog',
          expr: 'max(tempodb_compaction_outstanding_blocks) > 100',
          'for': '6h',
          labels: { severity: 'warning' },
          annotations: { summary: 'Tempo compaction is not keeping up (outstanding blocks)' },
        },
        {
          alert: 'MopLokiCompactorStuck',
          expr: '(time() - max(loki_compactor_apply_retention_last_successful_run_timestamp_seconds)) > 86400',
          'for': '1h',
          labels: { severity: 'warning' },
          annotations: { summary: 'Loki retention has not run for a day' },
        },
      ],
    },
  ] + slo.groups(cfg),
}, quote_keys=false)
