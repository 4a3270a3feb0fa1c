// Alloy (StatefulSet, 3 clustered replicas): the telemetry pipeline.
//   OTLP in (mTLS) -> Kubernetes attributes -> span metrics of every span (before sampling) and
//   trace-ID load balancing over the replicas -> tail (or probabilistic) sampling, keeping 100% of the
//   workloads under canary analysis -> Tempo (+ extra destinations); OTLP metrics, span metrics and
//   scraped /metrics (every annotated pod, sharded by clustering) -> cost filter -> Mimir remote write
//   (+ extra URLs); OTLP logs and pod logs -> Loki. Every hop inside the stack is mTLS.
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

  local tls = (import 'tls.libsonnet')(cfg),
  // Client TLS blocks of each Alloy component family, checking the server's name.
  local otelTls(service) = k.fill(|||
    tls {
          ca_file     = %(ca)s
          cert_file   = %(cert)s
          key_file    = %(key)s
          server_name = %(server)s
        }
  |||, { ca: q(tls.ca), cert: q(tls.cert), key: q(tls.key), server: q(tls.serverName(service)) }),
  local promTls(service) = k.fill(|||
    tls_config {
        ca_file     = %(ca)s
        cert_file   = %(cert)s
        key_file    = %(key)s
        server_name = %(server)s
      }
  |||, { ca: q(tls.ca), cert: q(tls.cert), key: q(tls.key), server: q(tls.serverName(service)) }),
  local serverTls = k.fill(|||
    tls {
          cert_file      = %(cert)s
          key_file       = %(key)s
          client_ca_file = %(ca)s
        }
  |||, { ca: q(tls.ca), cert: q(tls.cert), key: q(tls.key) }),

  local extraTraces = [
    k.fill(|||
      otelcol.exporter.otlp %(label)s {
        client {
          endpoint = %(endpoint)s
        }
      }
    |||, { label: q(d.name), endpoint: q(d.endpoint) })
    for d in a.extraTraceDestinations
  ],
  local traceExporters = ['otelcol.exporter.otlp.tempo.input'] + ['otelcol.exporter.otlp.%s.input' % d.name for d in a.extraTraceDestinations],
  local extraWrites = [
    k.fill(|||
      prometheus.remote_write "extra_%(index)d" {
        endpoint {
          url = %(url)s
        }
        external_labels = { cluster = %(cluster)s }
      }
    |||, { index: i, url: q(a.extraRemoteWrite[i]), cluster: q(cfg.cluster) })
    for i in std.range(0, std.length(a.extraRemoteWrite) - 1)
  ],
  local metricWriters = ['prometheus.remote_write.mimir.receiver'] + ['prometheus.remote_write.extra_%d.receiver' % i for i in std.range(0, std.length(a.extraRemoteWrite) - 1)],

  // The analysed set: "namespace/deployment" of every canary and baseline the controller is analysing,
  // comma-separated, published by the controller in this ConfigMap (canary/sources/sampling.py).
  local analysedPolicy = |||
    // 100% of the traces of every workload under canary analysis (the controller's trace error rate
    // must not be measured on a biased sample).
      policy {
        name = "analysed"
        type = "string_attribute"
        string_attribute {
          key    = "mop.workload"
          values = string.split(coalesce(remote.kubernetes.configmap.sampling.data["workloads"], ""), ",")
        }
      }
  |||,

  local samplingBlock = if a.sampling == 'tail' then k.fill(|||
    // Tail sampling: a trace is kept when its workload is under analysis, has an error, is slow, or
    // falls in the probabilistic share.
    otelcol.processor.tail_sampling "default" {
      decision_wait = "10s"
      num_traces    = %(numTraces)d

    %(analysed)s
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
  |||, { numTraces: 50000 * factor, slowMs: a.slowTraceMs, percent: a.sampledPercent, analysed: analysedPolicy }) else k.fill(|||
    // Probabilistic sampling by trace ID (consistent across replicas): independent of a span's status,
    // so error ratios measured on the kept traces are unbiased.
    otelcol.processor.probabilistic_sampler "default" {
      sampling_percentage = %(percent)d
      output {
        traces = [otelcol.processor.batch.traces.input]
      }
    }
  |||, { percent: a.sampledPercent }),

  // Scrapes of the MOP components over mTLS, one per certificate (the server name to check), and one
  // plain-HTTP scrape of everything else annotated (applications, the canary controller).
  local secureScrapes = ['alloy', 'tempo', 'mimir', 'loki', 'grafana'],
  local scrapeOf(component) = k.fill(|||
    discovery.relabel "scrape_%(id)s" {
      targets = discovery.relabel.scrape.output
      rule {
        source_labels = ["__meta_kubernetes_namespace", "__meta_kubernetes_pod_label_app_kubernetes_io_instance", "__meta_kubernetes_pod_label_app_kubernetes_io_name"]
        regex         = %(match)s
        action        = "keep"
      }
    }

    prometheus.scrape "%(id)s" {
      targets         = discovery.relabel.scrape_%(id)s.output
      honor_labels    = true
      scrape_interval = "15s"
      scheme          = "https"
      %(tls)s
      clustering {
        enabled = true
      }
      forward_to = [prometheus.relabel.cost.receiver]
    }
  |||, {
    id: std.strReplace(component, '-', '_'),
    match: q('%s;(%s;.*|.*;%s)' % [ns, component, component]),
    tls: promTls(if component == 'tempo' then 'tempo' else component),
  }),

  local alloyConfig = k.fill(|||
    logging {
      level  = "info"
      format = "json"
    }

    // Alloy's own HTTP server (UI, /metrics, clustering) requires client certificates too.
    http {
      tls {
        cert_file        = %(certFile)s
        key_file         = %(keyFile)s
        client_ca_file   = %(caFile)s
        client_auth_type = "RequireAndVerifyClientCert"
      }
    }

    // ---- OTLP from OBI and instrumented applications (mTLS) ----
    otelcol.receiver.otlp "ingress" {
      grpc {
        endpoint = "0.0.0.0:%(otlpGrpc)d"
        %(serverTls)s
      }
      http {
        endpoint = "0.0.0.0:%(otlpHttp)d"
        %(serverTls)s
      }
      output {
        traces  = [otelcol.processor.k8sattributes.default.input]
        metrics = [otelcol.processor.k8sattributes.default.input]
        logs    = [otelcol.processor.k8sattributes.default.input]
      }
    }

    // Kubernetes attribute enrichment (namespace, Deployment, ReplicaSet, pod, node) on the replica the
    // sender connected to, BEFORE the load-balancing hop: past it, the connection is another Alloy.
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
        traces  = [otelcol.connector.spanmetrics.unsampled.input, otelcol.processor.transform.workload.input]
        metrics = [otelcol.processor.filter.cost.input]
        logs    = [otelcol.processor.batch.logs.input]
      }
    }

    // Span metrics of EVERY span, computed before any sampling: unbiased RED per Deployment and
    // ReplicaSet (traces_span_metrics_calls_total{status_code="STATUS_CODE_ERROR", ...}).
    otelcol.connector.spanmetrics "unsampled" {
      namespace = "traces.span.metrics"
      dimension {
        name = "k8s.namespace.name"
      }
      dimension {
        name = "k8s.deployment.name"
      }
      dimension {
        name = "k8s.replicaset.name"
      }
      histogram {
        explicit {}
      }
      exemplars {
        enabled = true
      }
      output {
        metrics = [otelcol.processor.filter.cost.input]
      }
    }

    // mop.workload = "namespace/deployment": what the "analysed" sampling policy matches.
    otelcol.processor.transform "workload" {
      error_mode = "ignore"
      trace_statements {
        context    = "resource"
        statements = [`set(attributes["mop.workload"], Concat([attributes["k8s.namespace.name"], attributes["k8s.deployment.name"]], "/"))`]
      }
      output {
        traces = [otelcol.exporter.loadbalancing.traces.input]
      }
    }

    // Trace-ID-aware load balancing: every span of a trace lands on the same replica (mTLS).
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
            %(lbTls)s
          }
        }
      }
    }

    otelcol.receiver.otlp "balanced" {
      grpc {
        endpoint = "0.0.0.0:%(lb)d"
        %(serverTls)s
      }
      output {
        traces = [%(sampler)s.input]
      }
    }

    // The analysed set published by the canary controller.
    remote.kubernetes.configmap "sampling" {
      namespace      = %(ns)s
      name           = "mop-canary-sampling"
      poll_frequency = "10s"
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
        %(tempoTls)s
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

    // Every pod annotated prometheus.io/scrape=true: the MOP components, the canary controller, apps.
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

    %(secureScrapes)s
    discovery.relabel "scrape_plain" {
      targets = discovery.relabel.scrape.output
      rule {
        source_labels = ["__meta_kubernetes_pod_annotation_prometheus_io_scheme"]
        regex         = "https"
        action        = "drop"
      }
    }

    // honor_labels keeps the k8s_* labels applications put on their series.
    prometheus.scrape "plain" {
      targets         = discovery.relabel.scrape_plain.output
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
        %(mimirTls)s
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

    // OTLP logs keep trace_id and span_id as Loki structured metadata (trace -> logs in Grafana).
    otelcol.exporter.otlphttp "loki" {
      client {
        endpoint = %(lokiOtlp)s
        %(lokiOtelTls)s
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
        %(lokiTls)s
      }
      external_labels = { cluster = %(cluster)s }
    }
  |||, {
    otlpGrpc: ports.otlpGrpc,
    otlpHttp: ports.otlpHttp,
    lb: ports.lb,
    ns: q(ns),
    headless: q('alloy-headless.%s.svc.cluster.local' % ns),
    sampler: sampler,
    samplingBlock: samplingBlock,
    traceExporters: list(traceExporters),
    tempo: q(k.address(ns, 'tempo-distributor', 4317)),
    extraTraces: std.join('\n', extraTraces),
    metricWriters: list(metricWriters),
    mimir: q(k.url(ns, 'mimir', 8080, '/api/v1/push')),
    cluster: q(cfg.cluster),
    extraWrites: std.join('\n', extraWrites),
    lokiOtlp: q(k.url(ns, 'loki', 3100, '/otlp')),
    lokiPush: q(k.url(ns, 'loki', 3100, '/loki/api/v1/push')),
    certFile: q(tls.cert),
    keyFile: q(tls.key),
    caFile: q(tls.ca),
    serverTls: serverTls,
    lbTls: otelTls('alloy-headless'),
    tempoTls: otelTls('tempo-distributor'),
    lokiOtelTls: otelTls('loki'),
    mimirTls: promTls('mimir'),
    lokiTls: promTls('loki'),
    secureScrapes: std.join('\n', [scrapeOf(c) for c in secureScrapes]),
  }),

  serviceaccount: k.serviceAccount(name, ns, labels, automountToken=true),
  certificate: tls.certificate(name, [name, 'alloy-headless'], ['alloy-headless']),
  // remote.kubernetes.configmap reads the controller's analysed set in this namespace only.
  role: {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name: 'mop-alloy-sampling', namespace: ns, labels: labels },
    rules: [{ apiGroups: [''], resources: ['configmaps'], resourceNames: ['mop-canary-sampling'], verbs: ['get', 'list', 'watch'] }],
  },
  rolebinding: {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: 'mop-alloy-sampling', namespace: ns, labels: labels },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'mop-alloy-sampling' },
    subjects: [{ kind: 'ServiceAccount', name: name, namespace: ns }],
  },
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
          '--cluster.enable-tls=true',
          '--cluster.tls-ca-path=' + tls.ca,
          '--cluster.tls-cert-path=' + tls.cert,
          '--cluster.tls-key-path=' + tls.key,
          '--cluster.tls-server-name=' + tls.serverName('alloy-headless'),
          '--stability.level=generally-available',
        ],
        ports: [
          { name: 'otlp-grpc', containerPort: ports.otlpGrpc },
          { name: 'otlp-http', containerPort: ports.otlpHttp },
          { name: 'otlp-lb', containerPort: ports.lb },
          { name: 'http', containerPort: ports.http },
        ],
        // Every port requires a client certificate, which the kubelet cannot present: probes are TCP.
        readinessProbe: k.tcpProbe('http', 10),
        livenessProbe: k.tcpProbe('http', 30),
        resources: k.resources(config.plan.alloy, factor),
        securityContext: k.containerSecurity,
        volumeMounts: [
          { name: 'config', mountPath: '/etc/alloy', readOnly: true },
          { name: 'storage', mountPath: '/var/lib/alloy' },
          { name: 'tmp', mountPath: '/tmp' },
          tls.mount,
        ],
      }],
      volumes: [
        { name: 'config', configMap: { name: name } },
        { name: 'storage', emptyDir: {} },
        { name: 'tmp', emptyDir: {} },
        tls.volume(name),
      ],
    } + k.spread(selector)),
    [],
  ),
}
