"""Render the MOP stack (`stack/`, Jsonnet in Tanka's layout) and apply it, with the controller, to a cluster."""

from canary.stack.apply import Applier, ApplyError, ApplyReport, Change, ObjectResult
from canary.stack.kustomize import KustomizeError, load_kustomization
from canary.stack.render import ENVIRONMENTS, PROFILES, RenderError, render, to_yaml

__all__ = [
    "ENVIRONMENTS",
    "PROFILES",
    "Applier",
    "ApplyError",
    "ApplyReport",
    "Change",
    "KustomizeError",
    "ObjectResult",
    "RenderError",
    "load_kustomization",
    "render",
    "to_yaml",
]
