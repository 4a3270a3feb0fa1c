// Alloy (StatefulSet, 3 clustered replicas): the telemetry pipeline.
//   OTLP in -> trace-ID load balancing over the replicas -> Kubernetes attributes -> tail (or probabilistic)
//   sampling -> Tempo (+ extra destinations); OTLP metrics and scraped /metrics (every annotated pod,
//   sharded by clustering) -> cost filter -> Mimir remote write (+ extra URLs); OTLP logs and pod logs -> Loki.
local config = import 'config.libsonnet';
local k = import 'k.libsonnet';

function(cfg) {
  local ns = cfg.namespace,
  local name = 'alloy',
  local labels = k.labels(name, 'pipeline'),
  local selector = k.selector(name),
  local factor = config.profiles[cfg.profile],
  local a = cfg.alloy,
  local ports = { otlpGrpc: 4317, otlpHttp: 4318, lb: 4319, http: 12345 },
  local q(s) = std.escapeStringJson(s),
  local list(xs) = '[' + std.join(', ', xs) + ']',

  local sampler = if a.sampling == 'tail' then 'otelcol.processor.tail_sampling.default'
  else if a.sampling == 'probabilistic' then 'otelcol.processor.probabilistic_sampler.default'
  else error 'alloy.sampling must be tail or probabilistic, got %s' % a.sampling,

  local extraTraces = [
    |||
      otelcol.exporter.otlp %(label)s {
        client {
          endpoint = %(endpoint)s
        }
      }
    ||| % { label: q(d.name), endpoint: q(d.endpoint) }
    for d in a.extraTraceDestinations
  ],
  local traceExporters = ['otelcol.exporter.otlp.tempo.input'] + ['otelcol.exporter.otlp.%s.input' % d.name for d in a.extraTraceDestinations],
  local extraWrites = [
    |||
      prometheus.remote_write "extra_%(index)d" {
        endpoint {
          url = %(url)s
        }
        external_labels = { cluster = %(cluster)s }
      }
    ||| % { index: i, url: q(a.extraRemoteWrite[i]), cluster: q(cfg.cluster) }
    for i in std.range(0, std.length(a.extraRemoteWrite) - 1)
  ],
  local metricWriters = ['prometheus.remote_write.mimir.receiver'] + ['prometheus.remote_write.extra_%d.receiver' % i for i in std.range(0, std.length(a.extraRemoteWrite) - 1)],

  local samplingBlock = if a.sampling == 'tail' then |||
    // Tail sampling: a trace is kept when it has an error, is slow, or falls in the probabilistic share.
    otelcol.processor.tail_sampling "default" {
      decision_wait = "10s"
      num_traces    = %(numTraces)d

      policy {
        name = "errors"
        type = "status_code"
        status_code {
          status_codes = ["ERROR"]
        }
      }
      policy {
        name = "slow"
        type = "latency"
        latency {
          threshold_ms = %(slowMs)d
        }
      }
      policy {
        name = "sampled"
        type = "probabilistic"
        probabilistic {
          sampling_percentage = %(percent)d
        }
      }

      output {
        traces = [otelcol.processor.batch.traces.input]
      }
    }
  ||| % { numTraces: 50000 * factor, slowMs: a.slowTraceMs, percent: a.sampledPercent } else |||
    // Probabilistic sampling by trace ID (consistent across replicas).
    otelcol.processor.probabilistic_sampler "default" {
      sampling_percentage = %(percent)d
      output {
        traces = [otelcol.processor.batch.traces.input]
      }
    }
  ||| % { percent: a.sampledPercent },

  local alloyConfig = |||
    logging {
      level  = "info"
      format = "json"
    }

    // ---- OTLP from OBI and instrumented applications ----
    otelcol.receiver.otlp "ingress" {
      grpc {
        endpoint = "0.0.0.0:%(otlpGrpc)d"
      }
      http {
        endpoint = "0.0.0.0:%(otlpHttp)d"
      }
      output {
        traces  = [otelcol.exporter.loadbalancing.traces.input]
        metrics = [otelcol.processor.k8sattributes.default.input]
        logs    = [otelcol.processor.k8sattributes.default.input]
      }
    }

    // Trace-ID-aware load balancing: every span of a trace lands on the same replica.
    otelcol.exporter.loadbalancing "traces" {
      routing_key = "traceID"
      resolver {
        dns {
          hostname = %(headless)s
          port     = "%(lb)d"
        }
      }
      protocol {
        otlp {
          client {
            tls {
              insecure = true
            }
          }
        }
      }
    }

    otelcol.receiver.otlp "balanced" {
      grpc {
        endpoint = "0.0.0.0:%(lb)d"
      }
      output {
        traces = [otelcol.processor.k8sattributes.default.input]
      }
    }

    // Kubernetes attribute enrichment (namespace, Deployment, ReplicaSet, pod, node).
    otelcol.processor.k8sattributes "default" {
      extract {
        metadata = ["k8s.namespace.name", "k8s.deployment.name", "k8s.replicaset.name", "k8s.pod.name", "k8s.node.name"]
      }
      pod_association {
        source {
          from = "resource_attribute"
          name = "k8s.pod.ip"
        }
      }
      pod_association {
        source {
          from = "connection"
        }
      }
      output {
        traces  = [%(sampler)s.input]
        metrics = [otelcol.processor.filter.cost.input]
        logs    = [otelcol.processor.batch.logs.input]
      }
    }

    %(samplingBlock)s
    otelcol.processor.batch "traces" {
      output {
        traces = %(traceExporters)s
      }
    }

    otelcol.exporter.otlp "tempo" {
      client {
        endpoint = %(tempo)s
        tls {
          insecure = true
        }
      }
    }

    %(extraTraces)s
    // ---- Metrics ----
    // Cost: drop runtime internals nobody charts before they become series.
    otelcol.processor.filter "cost" {
      error_mode = "ignore"
      metrics {
        metric = [`IsMatch(name, "^(process_runtime_|runtime_|jvm_buffer_|go_memstats_lookups).*")`]
      }
      output {
        metrics = [otelcol.processor.batch.metrics.input]
      }
    }

    otelcol.processor.batch "metrics" {
      output {
        metrics = [otelcol.exporter.prometheus.otlp.input]
      }
    }

    // Resource attributes become labels, so k8s.deployment.name arrives as k8s_deployment_name.
    otelcol.exporter.prometheus "otlp" {
      resource_to_telemetry_conversion = true
      forward_to                       = [prometheus.relabel.cost.receiver]
    }

    discovery.kubernetes "pods" {
      role = "pod"
    }

    // Every pod annotated prometheus.io/scrape=true: OBI, the MOP components, the canary controller.
    discovery.relabel "scrape" {
      targets = discovery.kubernetes.pods.targets
      rule {
        source_labels = ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"]
        regex         = "true"
        action        = "keep"
      }
      rule {
        source_labels = ["__meta_kubernetes_pod_phase"]
        regex         = "Running"
        action        = "keep"
      }
      rule {
        source_labels = ["__address__", "__meta_kubernetes_pod_annotation_prometheus_io_port"]
        regex         = `([^:]+)(?::\d+)?;(\d+)`
        replacement   = "$1:$2"
        target_label  = "__address__"
      }
      rule {
        source_labels = ["__meta_kubernetes_pod_annotation_prometheus_io_path"]
        regex         = "(.+)"
        target_label  = "__metrics_path__"
      }
      rule {
        source_labels = ["__meta_kubernetes_namespace", "__meta_kubernetes_pod_label_app_kubernetes_io_name"]
        separator     = "/"
        target_label  = "job"
      }
      rule {
        source_labels = ["__meta_kubernetes_namespace"]
        target_label  = "namespace"
      }
      rule {
        source_labels = ["__meta_kubernetes_pod_name"]
        target_label  = "pod"
      }
    }

    // honor_labels keeps the k8s_* labels OBI puts on its series.
    prometheus.scrape "pods" {
      targets         = discovery.relabel.scrape.output
      honor_labels    = true
      scrape_interval = "15s"
      clustering {
        enabled = true
      }
      forward_to = [prometheus.relabel.cost.receiver]
    }

    // Cost: drop high-cardinality internals of the runtimes and the components themselves.
    prometheus.relabel "cost" {
      rule {
        source_labels = ["__name__"]
        regex         = "go_gc_.*|go_sched_.*|go_memstats_.*_bucket|.*_request_message_bytes_bucket|cortex_bucket_store_series_.*_bucket"
        action        = "drop"
      }
      forward_to = %(metricWriters)s
    }

    prometheus.remote_write "mimir" {
      endpoint {
        url            = %(mimir)s
        send_exemplars = true
      }
      external_labels = { cluster = %(cluster)s }
    }

    %(extraWrites)s
    // ---- Logs ----
    otelcol.processor.batch "logs" {
      output {
        logs = [otelcol.exporter.otlphttp.loki.input]
      }
    }

    otelcol.exporter.otlphttp "loki" {
      client {
        endpoint = %(lokiOtlp)s
      }
    }

    discovery.relabel "logs" {
      targets = discovery.kubernetes.pods.targets
      rule {
        source_labels = ["__meta_kubernetes_namespace"]
        target_label  = "namespace"
      }
      rule {
        source_labels = ["__meta_kubernetes_pod_name"]
        target_label  = "pod"
      }
      rule {
        source_labels = ["__meta_kubernetes_pod_container_name"]
        target_label  = "container"
      }
      rule {
        source_labels = ["__meta_kubernetes_pod_label_app_kubernetes_io_name"]
        target_label  = "app"
      }
    }

    loki.source.kubernetes "pods" {
      targets    = discovery.relabel.logs.output
      forward_to = [loki.write.loki.receiver]
      clustering {
        enabled = true
      }
    }

    loki.write "loki" {
      endpoint {
        url = %(lokiPush)s
      }
      external_labels = { cluster = %(cluster)s }
    }
  ||| % {
    otlpGrpc: ports.otlpGrpc,
    otlpHttp: ports.otlpHttp,
    lb: ports.lb,
    headless: q('alloy-headless.%s.svc.cluster.local' % ns),
    sampler: sampler,
    samplingBlock: samplingBlock,
    traceExporters: list(traceExporters),
    tempo: q(k.address(ns, 'tempo', 4317)),
    extraTraces: std.join('\n', extraTraces),
    metricWriters: list(metricWriters),
    mimir: q(k.url(ns, 'mimir', 8080, '/api/v1/push')),
    cluster: q(cfg.cluster),
    extraWrites: std.join('\n', extraWrites),
    lokiOtlp: q(k.url(ns, 'loki', 3100, '/otlp')),
    lokiPush: q(k.url(ns, 'loki', 3100, '/loki/api/v1/push')),
  },

  serviceaccount: k.serviceAccount(name, ns, labels),
  clusterrole: k.clusterRole('mop-alloy', labels, [
    { apiGroups: [''], resources: ['pods', 'pods/log', 'namespaces', 'nodes'], verbs: ['get', 'list', 'watch'] },
    { apiGroups: ['apps'], resources: ['replicasets'], verbs: ['get', 'list', 'watch'] },
  ]),
  clusterrolebinding: k.clusterRoleBinding('mop-alloy', labels, ns, name),
  configmap: k.configMap(name, ns, labels, { 'config.alloy': alloyConfig }),
  service: k.service(name, ns, labels, selector, [
    { name: 'otlp-grpc', port: ports.otlpGrpc },
    { name: 'otlp-http', port: ports.otlpHttp },
    { name: 'http', port: ports.http },
  ]),
  headless: k.service('alloy-headless', ns, labels, selector, [
    { name: 'otlp-lb', port: ports.lb },
    { name: 'http', port: ports.http },
  ], headless=true),
  pdb: k.pdb(name, ns, labels, selector),
  statefulset: k.statefulSet(
    name, ns, labels, selector, config.replicas.alloy, 'alloy-headless',
    k.podTemplate(labels, k.scrapeAnnotations(ports.http) { 'checksum/config': std.md5(alloyConfig) }, {
      serviceAccountName: name,
      securityContext: k.podSecurity(473),
      containers: [{
        name: name,
        image: config.images.alloy,
        args: [
          'run',
          '/etc/alloy/config.alloy',
          '--server.http.listen-addr=0.0.0.0:%d' % ports.http,
          '--storage.path=/var/lib/alloy',
          '--cluster.enabled=true',
          '--cluster.join-addresses=' + k.address(ns, 'alloy-headless', ports.http),
          '--stability.level=generally-available',
        ],
        ports: [
          { name: 'otlp-grpc', containerPort: ports.otlpGrpc },
          { name: 'otlp-http', containerPort: ports.otlpHttp },
          { name: 'otlp-lb', containerPort: ports.lb },
          { name: 'http', containerPort: ports.http },
        ],
        readinessProbe: k.httpProbe('/-/ready', 'http', 10),
        livenessProbe: k.httpProbe('/-/healthy', 'http', 30),
        resources: k.resources(config.plan.alloy, factor),
        securityContext: k.containerSecurity,
        volumeMounts: [
          { name: 'config', mountPath: '/etc/alloy', readOnly: true },
          { name: 'storage', mountPath: '/var/lib/alloy' },
          { name: 'tmp', mountPath: '/tmp' },
        ],
      }],
      volumes: [
        { name: 'config', configMap: { name: name } },
        { name: 'storage', emptyDir: {} },
        { name: 'tmp', emptyDir: {} },
      ],
    } + k.spread(selector)),
    [],
  ),
}
