"""The annotation contract: overrides apply, bad values name the annotation."""

from __future__ import annotations

import pytest

from canary.config.slo import InconclusivePolicy, RollbackAction, ServiceSLOSpec
from canary.controller.annotations import AnnotationError, is_enabled, parse_annotations

SPEC = ServiceSLOSpec(service="checkout")


def test_overrides_apply_to_the_slo() -> None:
    ann = parse_annotations({
        "canary.mop.dev/enabled": "true", "canary.mop.dev/interval": "1m", "canary.mop.dev/failed-checks": "5",
        "canary.mop.dev/successful-checks": "2", "canary.mop.dev/rollback-action": "pause",
        "canary.mop.dev/slack-channel": "#shop", "canary.mop.dev/baseline": "checkout",
        "canary.mop.dev/max-duration": "45m", "canary.mop.dev/on-inconclusive": "rollback",
    })
    spec = ann.apply(SPEC)
    assert (spec.analysis.interval, spec.analysis.failed_checks, spec.analysis.successful_checks) == (60, 5, 2)
    assert (spec.analysis.max_duration, spec.analysis.on_inconclusive) == (2700, InconclusivePolicy.ROLLBACK)
    assert spec.rollback.action is RollbackAction.PAUSE
    assert ann.slack_channel == "#shop" and ann.baseline == "checkout"
    assert SPEC.analysis.interval == 30  # the SLO itself is untouched


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("canary.mop.dev/interval", "soon", "canary.mop.dev/interval"),
        ("canary.mop.dev/failed-checks", "0", "canary.mop.dev/failed-checks"),
        ("canary.mop.dev/failed-checks", "three", "canary.mop.dev/failed-checks"),
        ("canary.mop.dev/rollback-action", "delete", "canary.mop.dev/rollback-action"),
        ("canary.mop.dev/abort", "yes please", "canary.mop.dev/abort"),
        ("canary.mop.dev/baseline", 'x"} or vector(1)', "canary.mop.dev/baseline"),
        ("canary.mop.dev/slack-channel", "two words", "canary.mop.dev/slack-channel"),
        ("canary.mop.dev/max-duration", "a while", "canary.mop.dev/max-duration"),
        ("canary.mop.dev/max-duration", "30d", "canary.mop.dev/max-duration"),
        ("canary.mop.dev/on-inconclusive", "shrug", "canary.mop.dev/on-inconclusive"),
    ],
)
def test_bad_values_name_the_annotation(key: str, value: str, named: str) -> None:
    with pytest.raises(AnnotationError, match=named):
        parse_annotations({"canary.mop.dev/enabled": "true", key: value})


def test_interval_longer_than_the_window_is_refused() -> None:
    ann = parse_annotations({"canary.mop.dev/interval": "10m"})
    with pytest.raises(AnnotationError, match=r"canary\.mop\.dev/interval"):
        ann.apply(SPEC)


def test_only_an_explicit_true_opts_in() -> None:
    assert is_enabled({"canary.mop.dev/enabled": "true"})
    assert not is_enabled({"canary.mop.dev/enabled": "false"})
    assert not is_enabled({})
    assert not is_enabled(None)
