"""What the demo plays: the versions' behaviour, the pace scaled by `--speed`, and the ServiceSLO. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from canary.config.slo import ServiceSLO
from canary_testkit.demo.options import MAX_SPEED, MIN_SPEED, Scenario
from canary_testkit.traffic import Profile

NAMESPACE: Final = "shop"
DEPLOYMENT: Final = "checkout"
IMAGE: Final = "shop/checkout"
REPLICAS: Final = 4
SLACK_SECRET: Final = "slack-webhook"
SLACK_CHANNEL: Final = "#checkout"
SLACK_MENTION: Final = "@oncall"

HEALTHY: Final = Profile(error_ratio=0.002, latency=((0.02, 0.95), (0.06, 0.05)))
"""v1 and v2: 0.2% errors, p99 about 70ms."""
ERROR_SPIKE: Final = Profile(
    error_ratio=0.25, latency=((0.02, 0.95), (0.06, 0.05)), failing_routes=("/api/orders",),
    failing_call=("INSERT orders", "deadlock detected"),
)
"""v3 in `--scenario errors`: a quarter of the requests fail with HTTP 500, all on `POST /api/orders`,
each because its `INSERT orders` call hit a database deadlock (in its trace and its log line)."""
LATENCY_REGRESSION: Final = Profile(error_ratio=0.002, latency=((0.02, 0.85), (0.9, 0.15)))
"""v3 in `--scenario latency`: 15% of the requests take 900ms, p99 about 1s."""


def faulty_profile(scenario: Scenario) -> Profile | None:
    """How v3 behaves; None: the story stops after the healthy rollout."""
    return {Scenario.ERRORS: ERROR_SPIKE, Scenario.LATENCY: LATENCY_REGRESSION}.get(scenario)


def fault_text(scenario: Scenario) -> str:
    return {Scenario.ERRORS: "an error spike (25% HTTP 500)",
            Scenario.LATENCY: "a p99 latency regression (15% of requests take 900ms)"}.get(scenario, "none")


def profiles(scenario: Scenario) -> dict[str, Profile]:
    """Traffic profiles by image tag."""
    out = {"v1": HEALTHY, "v2": HEALTHY}
    faulty = faulty_profile(scenario)
    if faulty is not None:
        out["v3"] = faulty
    return out


def _ms(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"


@dataclass(frozen=True)
class Pace:
    """Every duration of the demo at speed 1, divided by `speed`; request rates multiplied by it, so a
    window holds the same number of requests (and the judge sees the same evidence) at any speed."""

    speed: float = 1.0

    def __post_init__(self) -> None:
        if not MIN_SPEED <= self.speed <= MAX_SPEED:
            raise ValueError(f"--speed must be between {MIN_SPEED:g} and {MAX_SPEED:g}, not {self.speed:g}")

    @property
    def interval(self) -> float:
        """Seconds between two checks (2s at speed 1)."""
        return 2.0 / self.speed

    @property
    def window(self) -> float:
        """Seconds of data per check (8s at speed 1)."""
        return 8.0 / self.speed

    @property
    def rollout_step(self) -> float:
        """Seconds per step of the simulated deployment controller."""
        return 0.5 / self.speed

    @property
    def scrape_interval(self) -> str:
        """Prometheus scrape interval (1s at speed 1, never below 250ms)."""
        return _ms(max(0.25, 1.0 / self.speed))

    @property
    def rps_per_replica(self) -> float:
        return 25.0 * self.speed

    @property
    def resync(self) -> float:
        return 5.0 / self.speed

    def budget(self, seconds: float) -> float:
        """How long a step may take: `seconds` at speed 1, scaled, plus a margin for slow machines."""
        return seconds / self.speed + 20.0


SUCCESSFUL_CHECKS: Final = 3
FAILED_CHECKS: Final = 2
AVAILABILITY: Final = 99.0
LATENCY_P99: Final = 0.5


def slo_document(pace: Pace) -> dict[str, Any]:
    """The ServiceSLO of `checkout`, as kept in a ConfigMap; Slack through the `slack-webhook` Secret."""
    return {
        "apiVersion": "canary.mop.dev/v1alpha1",
        "kind": "ServiceSLO",
        "metadata": {"name": DEPLOYMENT, "namespace": NAMESPACE},
        "spec": {
            "service": DEPLOYMENT,
            "objectives": {"availability": AVAILABILITY, "latencyP99": _ms(LATENCY_P99)},
            "analysis": {
                "interval": _ms(pace.interval),
                "window": _ms(pace.window),
                "minRequests": 30,
                "successfulChecks": SUCCESSFUL_CHECKS,
                "failedChecks": FAILED_CHECKS,
                "backendErrorLimit": 3,
            },
            "notify": {"slack": {"webhookSecretRef": {"name": SLACK_SECRET, "key": "url"},
                                 "channel": SLACK_CHANNEL, "mention": SLACK_MENTION}},
        },
    }


def slo(pace: Pace) -> ServiceSLO:
    """The same SLO, parsed (the demo reads its thresholds from it)."""
    return ServiceSLO.model_validate(slo_document(pace))
