// The analysed set: the ConfigMap in which the canary controller publishes every workload it is
// analysing ("namespace/deployment", comma-separated, key `workloads`), read by Alloy's
// remote.kubernetes.configmap so tail sampling keeps 100% of their traces. Created here without data
// (the controller owns that field); the controller may read and patch this one ConfigMap only.
local k = import 'k.libsonnet';
function(cfg) {
  local ns = cfg.namespace,
  local name = 'mop-canary-sampling',
  local labels = k.labels(name, 'sampling'),

  configmap: {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: name, namespace: ns, labels: labels },
  },
  role: {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name: name, namespace: ns, labels: labels },
    rules: [{ apiGroups: [''], resources: ['configmaps'], resourceNames: [name], verbs: ['get', 'patch'] }],
  },
  rolebinding: {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: name, namespace: ns, labels: labels },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: name },
    subjects: [{ kind: 'ServiceAccount', name: 'mop-canary', namespace: cfg.controllerNamespace }],
  },
}
