// OBI (OpenTelemetry eBPF Instrumentation) on every node: RED metrics and traces of every HTTP/gRPC
// server with no code change, decorated with Kubernetes metadata (k8s_deployment_name,
// k8s_replicaset_name, ...). Metrics: its Prometheus exporter, scraped by Alloy. Traces: OTLP to Alloy.
local config = import 'config.libsonnet';
local k = import 'k.libsonnet';
function(cfg) {
  local ns = cfg.namespace,
  local name = 'obi',
  local labels = k.labels(name, 'agent'),
  local selector = k.selector(name),
  local factor = config.profiles[cfg.profile],
  local metricsPort = 9400,

  local obiConfig = {
    log_level: 'info',
    attributes: {
      kubernetes: { enable: true, cluster_name: cfg.cluster },
    },
    discovery: {
      // Every server process in the cluster except the platform's own namespaces.
      instrument: [{ k8s_namespace: '.' }],
      exclude_instrument: [{ k8s_namespace: '^%s$' % n } for n in cfg.obiExcludeNamespaces],
    },
    prometheus_export: {
      port: metricsPort,
      path: '/metrics',
      features: ['application', 'application_service_graph'],
    },
    otel_traces_export: {
      endpoint: k.url(ns, 'alloy', 4317),
      protocol: 'grpc',
    },
  },
  local configText = std.manifestYamlDoc(obiConfig, quote_keys=false),

  serviceaccount: k.serviceAccount(name, ns, labels),
  // Kubernetes decoration needs to read pods, their ReplicaSets (-> Deployment) and nodes; nothing else.
  clusterrole: k.clusterRole('mop-obi', labels, [
    { apiGroups: [''], resources: ['pods', 'nodes'], verbs: ['get', 'list', 'watch'] },
    { apiGroups: ['apps'], resources: ['replicasets'], verbs: ['get', 'list', 'watch'] },
  ]),
  clusterrolebinding: k.clusterRoleBinding('mop-obi', labels, ns, name),
  configmap: k.configMap(name, ns, labels, { 'obi.yaml': configText }),
  pdb: k.pdb(name, ns, labels, selector),
  daemonset: k.daemonSet(name, ns, labels, selector, k.podTemplate(labels, k.scrapeAnnotations(metricsPort) {
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
      ],
    }],
    volumes: [
      { name: 'config', configMap: { name: name } },
      { name: 'var-run-obi', emptyDir: {} },
      { name: 'cgroup', hostPath: { path: '/sys/fs/cgroup', type: 'Directory' } },
    ],
  })),
}
