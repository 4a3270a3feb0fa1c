"""A Deployment's configuration: its `canary.mop.dev/*` annotations over its ServiceSLO, its mode, and
the first problem that keeps it from being analysed (naming the annotation or object at fault)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from canary.config.loader import ConfigError
from canary.config.slo import ServiceSLO, ServiceSLOSpec, default_slo
from canary.controller.annotations import AnnotationError, Annotations, parse_annotations
from canary.controller.strategies import Strategy, strategy_for
from canary.kube.bodies import DeploymentBody


class SLOIndex(Protocol):
    def get(self, namespace: str, name: str) -> ServiceSLO | None: ...

    def problem(self, namespace: str, name: str) -> ConfigError | None:
        """Why a ServiceSLO of that name was refused, if one was."""
        ...


@dataclass(frozen=True)
class Config:
    """What a Deployment asks of the controller; `error` says why it cannot be analysed."""

    strategy: Strategy
    annotations: Annotations | None
    slo: ServiceSLO | None
    spec: ServiceSLOSpec | None
    error: str | None


class Configurator:
    def __init__(self, slos: SLOIndex, min_interval: float = 0.0) -> None:
        self.slos = slos
        self.min_interval = min_interval
        """Floor of every analysis interval (a shorter one runs at this interval, its window at least as long)."""

    def resolve(self, deployment: DeploymentBody) -> Config:
        ns, name = deployment.key
        try:
            ann = parse_annotations(deployment.annotations)
        except AnnotationError as exc:
            return Config(strategy_for(None), None, None, None, str(exc))
        strategy = strategy_for(ann)
        if ann.slo:
            slo = self.slos.get(ns, ann.slo)
            refused = self.slos.problem(ns, ann.slo) if slo is None else None
            if refused is not None:
                return Config(strategy, ann, None, None, f"annotation canary.mop.dev/slo: {refused}")
            if slo is None:
                return Config(
                    strategy, ann, None, None,
                    f"annotation canary.mop.dev/slo: ServiceSLO {ns}/{ann.slo} not found in any ConfigMap "
                    "labelled canary.mop.dev/slo-config",
                )
        else:
            slo = default_slo(service=name, namespace=ns)
        try:
            spec = _floored(ann.apply(slo.spec), self.min_interval)
        except AnnotationError as exc:
            return Config(strategy, ann, slo, None, str(exc))
        problem = strategy.config_problem(deployment, ann, spec)
        if problem:
            return Config(strategy, ann, slo, None, problem)
        return Config(strategy, ann, slo, spec, None)


def _floored(spec: ServiceSLOSpec, min_interval: float) -> ServiceSLOSpec:
    analysis = spec.analysis
    if analysis.interval >= min_interval:
        return spec
    floored = analysis.model_copy(update={"interval": min_interval, "window": max(analysis.window, min_interval)})
    return spec.model_copy(update={"analysis": floored})
