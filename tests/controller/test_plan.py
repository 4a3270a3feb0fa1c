"""What a decision writes and tells, as data: the plan of a rollback, a contained rollback under GitOps,
a canary-mode rollback and promotion, and a notification that was already delivered. Pure: no cluster."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from canary.config.slo import NotifyEvent, ObjectMeta, PromoteMode, ServiceSLO, ServiceSLOSpec
from canary.controller.configure import Configurator
from canary.controller.edits import ClearRequests, RestoreTemplate, ScaleReplicaSet, SetPaused, SetReplicas
from canary.controller.machine import decide
from canary.controller.plan import Plan, plan
from canary.controller.snapshot import Snapshot, take_snapshot
from canary.controller.status import STATUS_ANNOTATION, CanaryStatus
from canary.kube.deployments import template_hash
from canary.vocabulary import CanaryPhase, Mode

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def template(image: str) -> dict[str, Any]:
    return {"metadata": {"labels": {"app": "checkout"}}, "spec": {"containers": [{"name": "app", "image": image}]}}


def replicaset(image: str, replicas: int) -> dict[str, Any]:
    return {"metadata": {"name": f"checkout-{image.split(':')[1]}", "namespace": "shop"},
            "spec": {"replicas": replicas, "template": template(image)},
            "status": {"replicas": replicas, "readyReplicas": replicas}}


STABLE, CANARY = replicaset("checkout:v1", 3), replicaset("checkout:v2", 1)
V1, V2 = template_hash(STABLE), template_hash(CANARY)


class SLOs:
    def __init__(self, **spec: Any) -> None:
        self.slo = ServiceSLO(metadata=ObjectMeta(name="checkout", namespace="shop"),
                              spec=ServiceSLOSpec(service="checkout", **spec))

    def get(self, namespace: str, name: str) -> ServiceSLO | None:
        return self.slo

    def problem(self, namespace: str, name: str) -> None:
        return None


def snapshot(
    status: CanaryStatus, *, labels: dict[str, str] | None = None, baseline: dict[str, Any] | None = None,
    replicas: int = 4, slo: SLOs | None = None, **annotations: str,
) -> Snapshot:
    deployment = {
        "metadata": {"name": "checkout", "namespace": "shop", "labels": labels or {}, "annotations": {
            "canary.mop.dev/enabled": "true", "canary.mop.dev/slo": "checkout",
            STATUS_ANNOTATION: status.to_annotation(), **annotations}},
        "spec": {"replicas": replicas, "template": template("checkout:v2")},
        "status": {"replicas": replicas, "readyReplicas": replicas},
    }
    replicasets = [] if baseline else [STABLE, CANARY]
    return take_snapshot(deployment, lambda _: replicasets, Configurator(slo or SLOs()), lambda ns, name: baseline)


def analysing(mode: Mode = Mode.GUARD, **kw: Any) -> CanaryStatus:
    return CanaryStatus(phase=CanaryPhase.ANALYSING, mode=mode, template_hash=V2, stable_hash=V1, revision="2",
                        started_at=NOW, **kw)


def plan_of(snap: Snapshot, reaches_someone: bool = True) -> Plan:
    assert snap.error is None, snap.error
    decision = decide(snap.status, snap.observation(None, NOW), snap.spec, NOW)
    return plan(decision, snap, snap.strategy, outcome=None, now=NOW, has_destination=lambda _: reaches_someone)


def test_a_guard_mode_rollback_restores_the_stable_template_and_empties_the_canary_replicaset() -> None:
    p = plan_of(snapshot(analysing(), **{"canary.mop.dev/abort": "true"}))
    assert p.edits == (RestoreTemplate("checkout-v1", STABLE["spec"]["template"]), ClearRequests())
    assert p.scales == (ScaleReplicaSet("checkout-v2", 0),), "the canary is the minority: its pods go at once"
    assert (p.status.phase, p.status.template_hash, p.status.rejected) == (CanaryPhase.ROLLING_BACK, V1, [V2])
    assert p.event is not None and (p.event.type, p.event.reason) == ("Warning", "RolledBack")
    assert p.metrics.rollback == "undo" and not p.promote_into_baseline
    assert p.notification is not None and p.notification.type is NotifyEvent.ROLLED_BACK
    assert p.notification.revision == V2 and p.notification.images_from == ("checkout:v1",)
    assert [e.key for e in p.status.outbox] == [p.notification.key], "the message is decided in the same write"


def test_under_a_gitops_agent_a_rollback_pauses_and_contains_instead_of_writing_the_template_back() -> None:
    p = plan_of(snapshot(analysing(), labels={"argocd.argoproj.io/instance": "shop"},
                         **{"canary.mop.dev/abort": "true"}))
    assert p.edits == (SetPaused(True), ClearRequests())
    assert p.scales == (ScaleReplicaSet("checkout-v2", 0),)
    assert p.status.template_hash == V2, "the rejected template stays in the spec, where Git put it"
    assert "Argo CD applies this Deployment from Git" in p.status.message


def test_a_canary_mode_rollback_scales_the_canary_to_zero_and_remembers_its_replicas() -> None:
    baseline = {"metadata": {"name": "checkout-stable", "namespace": "shop"},
                "spec": {"replicas": 6, "template": template("checkout:v1")}}
    p = plan_of(snapshot(analysing(Mode.CANARY), baseline=baseline, replicas=2,
                         **{"canary.mop.dev/baseline": "checkout-stable", "canary.mop.dev/abort": "true"}))
    assert p.edits == (SetReplicas(0), ClearRequests())
    assert p.status.replicas_before == 2 and p.scales == ()
    assert p.notification is not None and p.notification.images_from == ("checkout:v1",)


def test_a_manual_promotion_waits_for_the_promote_request_in_canary_mode() -> None:
    baseline = {"metadata": {"name": "checkout-stable", "namespace": "shop"},
                "spec": {"replicas": 6, "template": template("checkout:v1")}}
    manual = SLOs(promote=PromoteMode.MANUAL)
    skip = plan_of(snapshot(analysing(Mode.CANARY), baseline=baseline, slo=manual,
                            **{"canary.mop.dev/baseline": "checkout-stable", "canary.mop.dev/skip": "true"}))
    assert skip.status.phase is CanaryPhase.PROMOTING and not skip.promote_into_baseline
    asked = plan_of(snapshot(analysing(Mode.CANARY), baseline=baseline, slo=manual,
                             **{"canary.mop.dev/baseline": "checkout-stable", "canary.mop.dev/promote": "true"}))
    assert asked.promote_into_baseline and asked.edits == (ClearRequests(),)


def test_a_notification_already_delivered_or_reaching_nobody_is_not_queued_again() -> None:
    first = plan_of(snapshot(analysing(), **{"canary.mop.dev/abort": "true"}))
    assert first.notification is not None
    delivered = analysing(delivered=[first.notification.delivery_key("slack")])
    again = plan_of(snapshot(delivered, **{"canary.mop.dev/abort": "true"}))
    assert again.notification is None and again.status.outbox == []
    nobody = plan_of(snapshot(analysing(), **{"canary.mop.dev/abort": "true"}), reaches_someone=False)
    assert nobody.notification is None and nobody.event is not None, "the Event is recorded all the same"
