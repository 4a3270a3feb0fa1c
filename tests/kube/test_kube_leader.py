"""Leader election on a coordination.k8s.io/v1 Lease against the simulated API server, with ~1 s timings."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator

import pytest
from kube_testkit import wait_until
from kubernetes.client import ApiClient

from canary.kube import LeaderElector
from canary.kube.wire import parse_time
from canary_testkit.kube import KubeSim

LEASE_SECONDS = 2
RENEW_DEADLINE = 1.2
RETRY = 0.2
MICRO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


class Campaign:
    """Electors on one Lease plus a sampler that records every instant two of them claimed to lead."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api
        self.electors: dict[str, LeaderElector] = {}
        self.log: list[str] = []
        self.overlaps: list[list[str]] = []
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def add(self, identity: str, **timing: float) -> LeaderElector:
        options = {"lease_duration_seconds": LEASE_SECONDS, "renew_deadline_seconds": RENEW_DEADLINE,
                   "retry_period_seconds": RETRY, **timing}
        elector = LeaderElector(
            self.api, namespace="default", name="mop-canary", identity=identity,
            on_started_leading=lambda: self.log.append(f"{identity} started"),
            on_stopped_leading=lambda: self.log.append(f"{identity} stopped"),
            **options,
        )
        self.electors[identity] = elector
        return elector.start()

    def leaders(self) -> list[str]:
        return [name for name, e in self.electors.items() if e.is_leader]

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            leading = self.leaders()
            if len(leading) > 1:
                self.overlaps.append(leading)

    def close(self) -> None:
        self._stop.set()
        self._sampler.join(2)
        for elector in self.electors.values():
            elector.stop(release=False, timeout=5)


@pytest.fixture
def campaign(sim: KubeSim, api: ApiClient) -> Iterator[Campaign]:
    c = Campaign(api)
    yield c
    c.close()
    assert c.overlaps == [], "two electors led at the same time"


def lease(sim: KubeSim) -> dict:
    found = sim.get("coordination.k8s.io/v1", "leases", "default", "mop-canary")
    assert found is not None
    return found["spec"]


def test_one_of_two_candidates_leads_and_renews_a_well_formed_lease(sim: KubeSim, campaign: Campaign) -> None:
    campaign.add("a")
    campaign.add("b")
    assert wait_until(lambda: len(campaign.leaders()) == 1)
    leader = campaign.leaders()[0]
    first = lease(sim)
    assert first["holderIdentity"] == leader
    assert first["leaseDurationSeconds"] == LEASE_SECONDS
    assert first["leaseTransitions"] == 0
    assert MICRO_TIME.match(first["renewTime"]) and MICRO_TIME.match(first["acquireTime"])

    assert wait_until(lambda: lease(sim)["renewTime"] != first["renewTime"]), "the leader renews"
    threading.Event().wait(LEASE_SECONDS + 0.5)  # longer than the lease: renewals keep it
    assert campaign.leaders() == [leader]
    spec = lease(sim)
    assert spec["holderIdentity"] == leader and spec["acquireTime"] == first["acquireTime"]
    assert parse_time(spec["renewTime"]) > parse_time(first["renewTime"])
    assert campaign.log == [f"{leader} started"]


def test_graceful_stop_releases_and_the_other_takes_over_within_a_retry_period(
    sim: KubeSim, campaign: Campaign
) -> None:
    campaign.add("a")
    assert wait_until(lambda: campaign.leaders() == ["a"])
    campaign.add("b")
    threading.Event().wait(3 * RETRY)
    assert campaign.leaders() == ["a"], "a follower does not take a lease that is being renewed"

    campaign.electors["a"].stop(release=True)
    released_at = time.monotonic()
    assert wait_until(lambda: campaign.leaders() == ["b"], timeout=LEASE_SECONDS)
    took = time.monotonic() - released_at
    assert took < LEASE_SECONDS - 0.5, f"failover after a release took {took:.2f}s: it waited for expiry"
    spec = lease(sim)
    assert spec["holderIdentity"] == "b" and spec["leaseTransitions"] == 1
    assert campaign.log == ["a started", "a stopped", "b started"]


def test_a_crashed_leader_is_replaced_after_the_lease_expires_not_before(sim: KubeSim, campaign: Campaign) -> None:
    campaign.add("a")
    assert wait_until(lambda: campaign.leaders() == ["a"])
    campaign.add("b")
    threading.Event().wait(2 * RETRY)

    campaign.electors["a"].stop(release=False)  # like a killed process: the Lease still names "a"
    last_renewal = lease(sim)
    assert last_renewal["holderIdentity"] == "a"
    assert wait_until(lambda: campaign.leaders() == ["b"], timeout=LEASE_SECONDS + 2)
    taken = lease(sim)
    assert taken["holderIdentity"] == "b" and taken["leaseTransitions"] == 1
    waited = (parse_time(taken["acquireTime"]) - parse_time(last_renewal["renewTime"])).total_seconds()
    assert waited >= LEASE_SECONDS, f"took over {waited:.2f}s after the last renewal, before the lease expired"


def test_leader_cut_off_from_the_api_server_stops_leading_before_anyone_else_could(
    sim: KubeSim, campaign: Campaign
) -> None:
    campaign.add("a")
    assert wait_until(lambda: campaign.leaders() == ["a"])
    sim.pause()
    time.sleep(RENEW_DEADLINE + 0.05)
    assert campaign.leaders() == [], "is_leader turns False by the renew deadline, even while a request hangs"
    assert wait_until(lambda: campaign.log[-1:] == ["a stopped"], timeout=10)
    sim.resume()
    assert wait_until(lambda: campaign.leaders() == ["a"], timeout=LEASE_SECONDS + 8), "leads again once reachable"


def test_lost_renewal_race_on_409_does_not_make_two_leaders(sim: KubeSim, campaign: Campaign) -> None:
    campaign.add("a")
    assert wait_until(lambda: campaign.leaders() == ["a"])
    sim.fail_next("PUT /apis/coordination.k8s.io/v1/namespaces/default/leases/mop-canary", 409, times=2)
    campaign.add("b")
    threading.Event().wait(RENEW_DEADLINE + 0.5)
    assert campaign.leaders() == ["a"], "two failed renewals within the deadline keep the leader"
    assert lease(sim)["holderIdentity"] == "a"


def test_invalid_timings_are_refused_with_the_reason(api: ApiClient) -> None:
    with pytest.raises(ValueError, match="retry_period_seconds < renew_deadline_seconds < lease_duration_seconds"):
        LeaderElector(api, namespace="default", name="x", identity="a", lease_duration_seconds=2,
                      renew_deadline_seconds=3.0, retry_period_seconds=1.0)
    with pytest.raises(ValueError, match="identity"):
        LeaderElector(api, namespace="default", name="x", identity="")
