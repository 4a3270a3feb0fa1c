"""`canary validate`: ServiceSLOs, the ConfigMaps that hold them and annotated Deployments, read from
files, Kustomize directories or the live cluster, checked the way the controller will read them.

Every problem is a ConfigError naming the source, the object and the field. Errors are what the
controller would refuse (or what is almost surely a mistake: a fraction-like availability, a unit-less
p99 latency); warnings are what it would accept but probably not do what was meant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from canary.config.loader import SLO_CONFIGMAP_LABEL, ConfigError, lint_slo, mapping, parse_documents
from canary.config.slo import KIND, ServiceSLO, default_slo
from canary.controller.annotations import AnnotationError, is_enabled, parse_annotations

Obj = dict[str, Any]
CLUSTER = "cluster"


@dataclass
class _Deployment:
    obj: Obj
    source: str
    document: int | None
    namespace: str
    name: str


@dataclass
class Validation:
    """Collects inputs with `add_*`, then `finish()` checks the Deployments against the SLOs read."""

    default_namespace: str = "default"
    errors: list[ConfigError] = field(default_factory=list)
    warnings: list[ConfigError] = field(default_factory=list)
    valid: list[tuple[str, str, str]] = field(default_factory=list)
    """(kind, namespace/name, description) of every object read; those with errors are not listed by `ok`."""
    slos: dict[tuple[str, str], tuple[ServiceSLO, str]] = field(default_factory=dict)
    deployments: list[_Deployment] = field(default_factory=list)
    """Guarded Deployments (annotated canary.mop.dev/enabled)."""
    known_deployments: set[tuple[str, str]] = field(default_factory=set)
    """Every Deployment read, guarded or not (possible baselines)."""
    cluster_read: bool = False
    """The live cluster was read: an SLO or baseline missing from the inputs is an error, not a warning."""

    @property
    def ok(self) -> list[str]:
        """One line per object without errors."""
        bad = {(e.kind, e.object) for e in self.errors}
        return [f"{kind} {ref} {text}" for kind, ref, text in self.valid if (kind, ref) not in bad]

    @property
    def found(self) -> int:
        return len(self.slos) + len(self.deployments) + len(self.errors)

    # -- inputs -------------------------------------------------------------------------------

    def add_text(self, text: str, source: str, default_namespace: str | None = None, slos_only: bool = False) -> int:
        """Every document of a YAML stream; returns how many ServiceSLO documents it held (valid or not)."""
        result = parse_documents(text, source, default_namespace)
        self.errors.extend(result.errors)
        for slo in result.slos:
            self._add_slo(slo, source)
        try:
            docs = list(yaml.safe_load_all(text))
        except (yaml.YAMLError, RecursionError):
            return 1 if KIND in text else 0  # the YAML error (or too deep nesting) is reported by parse_documents
        for index, doc in enumerate(docs):
            if isinstance(doc, Mapping):
                self._add_document(doc, source, index, default_namespace, slos_only)
        return sum(1 for doc in docs if isinstance(doc, Mapping) and doc.get("kind") == KIND)

    def add_object(self, obj: Mapping[str, Any], source: str, document: int | None = None) -> None:
        """One object already parsed (from a Kustomize directory or the cluster)."""
        if obj.get("kind") == KIND:
            text = yaml.safe_dump(dict(obj), sort_keys=False)
            self.add_text(text, source if document is None else f"{source} (document {document + 1})")
            return
        self._add_document(obj, source, document, None, slos_only=False)

    def _add_document(self, doc: Mapping[str, Any], source: str, index: int | None, default_namespace: str | None,
                      slos_only: bool) -> None:
        kind = doc.get("kind")
        if kind == KIND:  # its refusals come with parse_documents' errors (the controller refuses them too)
            self.warnings.extend(lint_slo(doc, source, index, default_namespace)[1])
        elif kind == "ConfigMap" and not slos_only:
            where = source if index is None else f"{source} (document {index + 1})"
            self._add_configmap(doc, where)
        elif kind == "Deployment" and not slos_only:
            meta = mapping(doc.get("metadata"))
            self.known_deployments.add((str(meta.get("namespace") or self.default_namespace), str(meta.get("name"))))
            if is_enabled(mapping(meta.get("annotations"))):
                self.deployments.append(_Deployment(
                    dict(doc), source, index, str(meta.get("namespace") or self.default_namespace),
                    str(meta.get("name") or "?"),
                ))

    def _add_configmap(self, configmap: Mapping[str, Any], where: str) -> None:
        meta = mapping(configmap.get("metadata"))
        ns = str(meta.get("namespace") or self.default_namespace)
        ref = f"ConfigMap {ns}/{meta.get('name')}"
        labels = mapping(meta.get("labels"))
        labelled = str(labels.get(SLO_CONFIGMAP_LABEL, "")).lower() == "true"
        data = mapping(configmap.get("data"))
        held = sum(
            self.add_text(str(text), f"{where} {ref} key {key}", default_namespace=ns, slos_only=True)
            for key, text in sorted(data.items())
            if labelled or KIND in str(text)
        )
        if labelled and not held:
            self.warnings.append(ConfigError(
                source=where, object=f"{ns}/{meta.get('name')}", kind="ConfigMap",
                field=f"metadata.labels[{SLO_CONFIGMAP_LABEL}]",
                reason="labelled as holding ServiceSLOs but holds none",
            ))
        if held and not labelled:
            self.warnings.append(ConfigError(
                source=where, object=f"{ns}/{meta.get('name')}", kind="ConfigMap", field="metadata.labels",
                reason=f'holds ServiceSLOs but is not labelled {SLO_CONFIGMAP_LABEL}: "true"; the controller '
                       "will not read it",
            ))

    def _add_slo(self, slo: ServiceSLO, source: str) -> None:
        key = (slo.metadata.namespace or self.default_namespace, slo.metadata.name)
        if key in self.slos and self.slos[key][1] != source:
            self.warnings.append(ConfigError(
                source=source, object=f"{key[0]}/{key[1]}", reason=f"defined again (also in {self.slos[key][1]})"
            ))
        self.slos[key] = (slo, source)
        self.valid.append(("ServiceSLO", slo.ref, f"(service {slo.spec.service}) in {source}"))

    # -- cross-checks -------------------------------------------------------------------------

    def finish(self) -> None:
        for dep in self.deployments:
            self._check_deployment(dep)

    def _check_deployment(self, dep: _Deployment) -> None:
        ref = f"{dep.namespace}/{dep.name}"

        def problem(reason: str, warning: bool = False) -> None:
            error = ConfigError(source=dep.source, document=dep.document, object=ref, kind="Deployment",
                                field="metadata.annotations", reason=reason)
            (self.warnings if warning else self.errors).append(error)

        try:
            ann = parse_annotations((dep.obj.get("metadata") or {}).get("annotations"))
        except AnnotationError as exc:
            problem(str(exc))
            return
        slo: ServiceSLO | None = default_slo(service=dep.name, namespace=dep.namespace)
        if ann.slo:
            found = self.slos.get((dep.namespace, ann.slo))
            slo = found[0] if found else None
            if slo is None:
                where = (f"in any ConfigMap labelled {SLO_CONFIGMAP_LABEL} in the cluster or the inputs"
                         if self.cluster_read else "among the inputs (it must exist in the cluster; add --cluster "
                                                   "to check)")
                problem(f"annotation canary.mop.dev/slo: ServiceSLO {dep.namespace}/{ann.slo} not found {where}",
                        warning=not self.cluster_read)
        if slo is not None:
            try:
                ann.apply(slo.spec)
            except AnnotationError as exc:
                problem(str(exc))
                return
        if ann.baseline == dep.name:
            problem("annotation canary.mop.dev/baseline: a Deployment cannot be its own baseline")
            return
        if ann.baseline and (dep.namespace, ann.baseline) not in self.known_deployments:
            problem(f"annotation canary.mop.dev/baseline: Deployment {dep.namespace}/{ann.baseline} not found "
                    + ("in the cluster or the inputs" if self.cluster_read else "among the inputs"),
                    warning=not self.cluster_read)
        mode = f"canary of {dep.namespace}/{ann.baseline}" if ann.baseline else "guard mode"
        named = f"SLO {dep.namespace}/{ann.slo}" if ann.slo else "the default SLO"
        self.valid.append(("Deployment", ref, f"({mode}, {named}) in {dep.source}"))


def read_cluster(kubeconfig: str | None, context: str | None, namespace: str | None,
                 timeout: float = 30.0) -> list[Obj]:
    """What is live: the ConfigMaps labelled as holding ServiceSLOs and every Deployment (possible baselines
    included), as the controller lists them."""
    from kubernetes.client import AppsV1Api, CoreV1Api

    from canary.kube.client import load_api_client

    client = load_api_client(kubeconfig, context)
    core, apps = CoreV1Api(client), AppsV1Api(client)
    kw: dict[str, Any] = {"label_selector": f"{SLO_CONFIGMAP_LABEL}=true", "_request_timeout": timeout}
    configmaps = (core.list_namespaced_config_map(namespace, **kw) if namespace
                  else core.list_config_map_for_all_namespaces(**kw))
    deployments = (apps.list_namespaced_deployment(namespace, _request_timeout=timeout) if namespace
                   else apps.list_deployment_for_all_namespaces(_request_timeout=timeout))
    out: list[Obj] = []
    for kind, listed in (("ConfigMap", configmaps), ("Deployment", deployments)):
        for item in listed.items:
            obj: Obj = client.sanitize_for_serialization(item)
            obj["kind"] = kind
            out.append(obj)
    return out
