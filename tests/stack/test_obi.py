"""OBI instruments every namespace except the platform's: its selectors checked with glob semantics."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.stack.conftest import COMBINATIONS, find
from tests.stack.globs import expand, matches

Manifest = dict[str, Any]
APPLICATION_NAMESPACES = ["default", "shop", "payments-eu", "team.a"]
PLATFORM_NAMESPACES = ["kube-system", "mop", "mop-canary"]


def instrumented(obi: dict[str, Any], namespace: str) -> bool:
    """OBI's decision for a process in `namespace`: some instrument selector matches, no exclusion does."""
    discovery = obi["discovery"]
    included = any(matches(s["k8s_namespace"], namespace) for s in discovery["instrument"])
    excluded = any(matches(s["k8s_namespace"], namespace) for s in discovery.get("exclude_instrument", []))
    return included and not excluded


def test_the_glob_matcher_has_obis_semantics() -> None:
    assert expand("{a,b}-{x,y}") == ["a-x", "a-y", "b-x", "b-y"]
    assert matches("*", "shop") and matches("{kube-system,mop}", "mop") and matches("pay?ents*", "payments-eu")
    # a regex is not a glob: "." is a literal dot, "^mop$" a literal string with ^ and $
    assert not matches(".", "shop") and not matches("^mop$", "mop")


@pytest.mark.parametrize(("env", "profile"), COMBINATIONS)
def test_obi_instruments_applications_and_not_the_platform(
    stacks: dict[Any, list[Manifest]], env: str, profile: str
) -> None:
    obi = yaml.safe_load(find(stacks[(env, profile)], "ConfigMap", "obi")["data"]["obi.yaml"])
    assert [ns for ns in APPLICATION_NAMESPACES if not instrumented(obi, ns)] == []
    assert [ns for ns in PLATFORM_NAMESPACES if instrumented(obi, ns)] == []
