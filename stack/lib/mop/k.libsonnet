// Small Kubernetes object constructors shared by every MOP component (no external library needed).
{
  // 1500 -> "1500m", 2000 -> "2"; 768 -> "768Mi", 4096 -> "4Gi".
  cpu(millicores):: if millicores % 1000 == 0 then std.toString(millicores / 1000) else std.toString(millicores) + 'm',
  memory(mebibytes):: if mebibytes % 1024 == 0 then std.toString(mebibytes / 1024) + 'Gi' else std.toString(mebibytes) + 'Mi',

  // Requests are the capacity plan times the profile factor; memory is also the limit (no CPU limit: no throttling).
  resources(plan, factor):: {
    requests: { cpu: $.cpu(plan.cpu * factor), memory: $.memory(plan.memory * factor) },
    limits: { memory: $.memory(plan.memory * factor) },
  },

  labels(name, component):: {
    'app.kubernetes.io/name': name,
    'app.kubernetes.io/component': component,
    'app.kubernetes.io/part-of': 'mop',
    'app.kubernetes.io/managed-by': 'mop-canary',
  },
  selector(name):: { 'app.kubernetes.io/name': name, 'app.kubernetes.io/part-of': 'mop' },

  // `template % values` for long templates: std.format is far too slow on kilobytes of Alloy config
  // (it builds the text in Jsonnet); std.strReplace is native. Placeholders: %(key)s or %(key)d.
  fill(template, values):: std.foldl(
    function(text, key) std.strReplace(std.strReplace(text, '%(' + key + ')s', std.toString(values[key])), '%(' + key + ')d', std.toString(values[key])),
    std.objectFields(values),
    template,
  ),

  // Fully qualified in-cluster address of a Service port.
  address(ns, service, port):: '%s.%s.svc.cluster.local:%d' % [service, ns, port],
  // Every in-stack URL is HTTPS: all components serve TLS (tls.libsonnet).
  url(ns, service, port, path='', tls=true):: '%s://%s%s' % [if tls then 'https' else 'http', $.address(ns, service, port), path],

  podSecurity(uid):: {
    runAsNonRoot: true,
    runAsUser: uid,
    runAsGroup: uid,
    fsGroup: uid,
    seccompProfile: { type: 'RuntimeDefault' },
  },
  containerSecurity:: {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    runAsNonRoot: true,
    capabilities: { drop: ['ALL'] },
  },

  httpProbe(path, port, initialDelay=10, period=10, failures=3):: {
    httpGet: { path: path, port: port },
    initialDelaySeconds: initialDelay,
    periodSeconds: period,
    timeoutSeconds: 5,
    failureThreshold: failures,
  },
  tcpProbe(port, initialDelay=10, period=10):: {
    tcpSocket: { port: port },
    initialDelaySeconds: initialDelay,
    periodSeconds: period,
    timeoutSeconds: 5,
    failureThreshold: 3,
  },

  scrapeAnnotations(port, path='/metrics', scheme='https'):: {
    'prometheus.io/scrape': 'true',
    'prometheus.io/scheme': scheme,
    'prometheus.io/port': std.toString(port),
    'prometheus.io/path': path,
  },

  namespace(name):: {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: name, labels: { 'app.kubernetes.io/part-of': 'mop' } },
  },

  configMap(name, ns, labels, data):: {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: name, namespace: ns, labels: labels },
    data: data,
  },

  // Tokens are mounted only into pods that call the Kubernetes API (automountToken: true); cloud
  // workload identity (IRSA, Azure) injects its own projected token and needs no API token.
  serviceAccount(name, ns, labels, annotations={}, automountToken=false):: {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: name, namespace: ns, labels: labels } + (if annotations == {} then {} else { annotations: annotations }),
    automountServiceAccountToken: automountToken,
  },

  // Default-deny NetworkPolicy of the pods `selector` selects, allowing exactly `ingress` and
  // `egress` (lists of NetworkPolicy rules). DNS egress to kube-dns is added to every policy.
  networkPolicy(name, ns, selector, ingress, egress):: {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: name, namespace: ns, labels: { 'app.kubernetes.io/part-of': 'mop', 'app.kubernetes.io/managed-by': 'mop-canary' } },
    spec: {
      podSelector: { matchLabels: selector },
      policyTypes: ['Ingress', 'Egress'],
      ingress: ingress,
      egress: egress + [$.dnsEgress],
    },
  },
  dnsEgress:: {
    to: [{
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
      podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
    }],
    ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }],
  },
  // A peer: pods of `selector` in namespace `ns`.
  peer(ns, selector):: {
    namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } },
    podSelector: { matchLabels: selector },
  },
  tcp(ports):: [{ protocol: 'TCP', port: p } for p in ports],

  // ports: [{name, port}] (targetPort is the container port of the same name)
  service(name, ns, labels, selector, ports, headless=false, annotations={}):: {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: name, namespace: ns, labels: labels } + (if annotations == {} then {} else { annotations: annotations }),
    spec: {
      selector: selector,
      ports: [{ name: p.name, port: p.port, targetPort: p.name, protocol: 'TCP' } for p in ports],
    } + (if headless then { clusterIP: 'None', publishNotReadyAddresses: true } else { type: 'ClusterIP' }),
  },

  pdb(name, ns, labels, selector, maxUnavailable=1):: {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: { name: name, namespace: ns, labels: labels },
    spec: { maxUnavailable: maxUnavailable, selector: { matchLabels: selector } },
  },

  clusterRole(name, labels, rules):: {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name: name, labels: labels },
    rules: rules,
  },
  clusterRoleBinding(name, labels, ns, serviceAccount):: {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: name, labels: labels },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: name },
    subjects: [{ kind: 'ServiceAccount', name: serviceAccount, namespace: ns }],
  },

  // Spread replicas over nodes so one node loss never takes a quorum.
  spread(selector):: {
    topologySpreadConstraints: [{
      maxSkew: 1,
      topologyKey: 'kubernetes.io/hostname',
      whenUnsatisfiable: 'ScheduleAnyway',
      labelSelector: { matchLabels: selector },
    }],
  },

  podTemplate(labels, annotations, spec):: {
    metadata: { labels: labels, annotations: annotations },
    spec: spec,
  },

  deployment(name, ns, labels, selector, replicas, template):: {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: name, namespace: ns, labels: labels },
    spec: {
      replicas: replicas,
      revisionHistoryLimit: 5,
      selector: { matchLabels: selector },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: template,
    },
  },

  statefulSet(name, ns, labels, selector, replicas, serviceName, template, volumeClaims):: {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name: name, namespace: ns, labels: labels },
    spec: {
      replicas: replicas,
      serviceName: serviceName,
      podManagementPolicy: 'Parallel',
      revisionHistoryLimit: 5,
      selector: { matchLabels: selector },
      updateStrategy: { type: 'RollingUpdate' },
      template: template,
      volumeClaimTemplates: [{
        metadata: { name: c.name },
        spec: {
          accessModes: ['ReadWriteOnce'],
          resources: { requests: { storage: c.size } },
        },
      } for c in volumeClaims],
    },
  },

  daemonSet(name, ns, labels, selector, template):: {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name: name, namespace: ns, labels: labels },
    spec: {
      revisionHistoryLimit: 5,
      selector: { matchLabels: selector },
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } },
      template: template,
    },
  },
}
