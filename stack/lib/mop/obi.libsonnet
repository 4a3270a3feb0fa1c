// OBI (OpenTelemetry eBPF Instrumentation) on every node: RED metrics and traces of every HTTP/gRPC
// server with no code change, decorated with Kubernetes metadata (k8s_deployment_name,
// k8s_replicaset_name, ...). Metrics and traces: OTLP to Alloy over mTLS (OBI's client certificate).
// Its own health port (internal metrics) serves only the kubelet's probes; nothing scrapes it.
local config = import 'config.libsonnet';
local k = import 'k.libsonnet';
function(cfg) {
  local ns = cfg.namespace,
  local name = 'obi',
  local labels = k.labels(name, 'agent'),
  local selector = k.selector(name),
  local factor = config.profiles[cfg.profile],
  local metricsPort = 9400,
  local tls = (import 'tls.libsonnet')(cfg),
  local otlp = { endpoint: k.url(ns, 'alloy', 4317), protocol: 'grpc' },

  local obiConfig = {
    log_level: 'info',
    attributes: {
      kubernetes: { enable: true, cluster_name: cfg.cluster },
    },
    discovery: {
      // Every server process in the cluster except the platform's own namespaces. OBI reads these
      // selectors as globs (gobwas/glob: `*`, `?`, `[...]`, `{a,b}`), not regular expressions.
      instrument: [{ k8s_namespace: '*' }],
      exclude_instrument: [{ k8s_namespace: '{%s}' % std.join(',', cfg.obiExcludeNamespaces) }],
    },
    internal_metrics: { prometheus: { port: metricsPort, path: '/internal/metrics' } },
    otel_metrics_export: otlp { features: ['application', 'application_service_graph'] },
    otel_traces_export: otlp,
  },
  local configText = std.manifestYamlDoc(obiConfig, quote_keys=false),

  serviceaccount: k.serviceAccount(name, ns, labels, automountToken=true),
  certificate: tls.certificate(name, []),
  // Kubernetes decoration reads pods, their ReplicaSets (-> Deployment), nodes and Services (the
  // server and client names of a connection); nothing else.
  clusterrole: k.clusterRole('mop-obi', labels, [
    { apiGroups: [''], resources: ['pods', 'nodes', 'services'], verbs: ['get', 'list', 'watch'] },
    { apiGroups: ['apps'], resources: ['replicasets'], verbs: ['get', 'list', 'watch'] },
  ]),
  clusterrolebinding: k.clusterRoleBinding('mop-obi', labels, ns, name),
  configmap: k.configMap(name, ns, labels, { 'obi.yaml': configText }),
  pdb: k.pdb(name, ns, labels, selector),
  daemonset: k.daemonSet(name, ns, labels, selector, k.podTemplate(labels, {
    'checksum/config': std.md5(configText),
  }, {
    serviceAccountName: name,
    // Sees the processes of every pod on the node (needed to attach uprobes and read their cgroups).
    hostPID: true,
    priorityClassName: 'system-node-critical',
    tolerations: [{ operator: 'Exists' }],
    securityContext: { seccompProfile: { type: 'RuntimeDefault' } },
    containers: [{
      name: name,
      image: config.images.obi,
      env: [
        { name: 'OTEL_EBPF_CONFIG_PATH', value: '/etc/obi/obi.yaml' },
        { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
        // The OpenTelemetry exporters' standard TLS settings: the CA and OBI's client certificate.
        { name: 'OTEL_EXPORTER_OTLP_CERTIFICATE', value: tls.ca },
        { name: 'OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE', value: tls.cert },
        { name: 'OTEL_EXPORTER_OTLP_CLIENT_KEY', value: tls.key },
      ],
      ports: [{ name: 'metrics', containerPort: metricsPort }],
      readinessProbe: k.tcpProbe('metrics', 10),
      livenessProbe: k.tcpProbe('metrics', 60),
      resources: k.resources(config.plan.obi, factor),
      // Root inside the container but not privileged: only the capabilities eBPF instrumentation needs.
      securityContext: {
        privileged: false,
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        runAsUser: 0,
        capabilities: {
          drop: ['ALL'],
          add: ['BPF', 'PERFMON', 'SYS_PTRACE', 'DAC_READ_SEARCH', 'CHECKPOINT_RESTORE', 'NET_RAW', 'SYS_RESOURCE'],
        },
      },
      volumeMounts: [
        { name: 'config', mountPath: '/etc/obi', readOnly: true },
        { name: 'var-run-obi', mountPath: '/var/run/obi' },
        { name: 'cgroup', mountPath: '/sys/fs/cgroup', readOnly: true },
        tls.mount,
      ],
    }],
    volumes: [
      { name: 'config', configMap: { name: name } },
      { name: 'var-run-obi', emptyDir: {} },
      { name: 'cgroup', hostPath: { path: '/sys/fs/cgroup', type: 'Directory' } },
      tls.volume(name),
    ],
  })),
}
