"""Bounded fuzzing of everything a tenant or a backend controls: SLO documents, annotations, status
annotations, judge inputs and backend answers. No input may crash the product or make it pass or fail
wrongly (see tests/hardening/fuzz.py for the oracles; benchmarks/hardening.py runs many more)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from canary.samples import RedSample
from canary_testkit.faults import FaultServer
from tests.hardening import fuzz

FEW = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def server() -> Iterator[FaultServer]:
    with FaultServer() as s:
        yield s


@FEW
@given(fuzz.slo_documents())
def test_slo_documents(text: str) -> None:
    fuzz.check_slo_document(text)


@FEW
@given(fuzz.annotations)
def test_annotations(annotations: dict[str, str]) -> None:
    fuzz.check_annotations(annotations)


@FEW
@given(fuzz.status_annotations())
def test_status_annotations(text: str) -> None:
    fuzz.check_status(text)


@FEW
@given(fuzz.red_pairs(), st.integers(1, 10_000))
def test_judge_inputs(pair: tuple[RedSample, RedSample | None], look: int) -> None:
    fuzz.check_judge(*pair, look)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(fuzz.prometheus_bodies().map(lambda b: (b, False)), fuzz.tempo_bodies().map(lambda b: (b, True))))
def test_backend_answers(server: FaultServer, answer: tuple[bytes, bool]) -> None:
    fuzz.check_backend_answer(server, *answer)
