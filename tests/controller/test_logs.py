"""Every check is logged as one JSON object: the queries with their results, each check's threshold, the verdict."""

from __future__ import annotations

import json
import logging

import pytest

from canary.analysis import Outcome
from canary.config.slo import ServiceSLOSpec
from canary.controller.runtime import _log_check
from canary.judge import judge
from canary.logs import JsonFormatter
from canary.samples import Backend, Measurement, Pair, QueryRecord, RedSample, Target, Workload


def test_check_log_line_is_json_with_queries_thresholds_and_verdict(caplog: pytest.LogCaptureFixture) -> None:
    target = Target(key="shop/checkout", service="checkout", window=120,
                    canary=Workload(namespace="shop", deployment="checkout", replicaset="checkout-2"),
                    baseline=(Workload(namespace="shop", deployment="checkout", replicaset="checkout-1"),))
    m = Measurement(
        target=target,
        red=Pair[RedSample](canary=RedSample(requests=1000, errors=200), baseline=RedSample(requests=1000, errors=5)),
        queries=(QueryRecord(backend=Backend.MIMIR, query='sum by (k8s_replicaset_name) (increase(x[2m]))',
                             seconds=0.012, series=2),),
    )
    verdict = judge(m, ServiceSLOSpec(service="checkout"))
    with caplog.at_level(logging.INFO, logger="canary.controller.runtime"):
        _log_check(Outcome(measurement=m, verdict=verdict))
    (record,) = caplog.records
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "check" and line["canary"] == "shop/checkout" and line["verdict"] == "fail"
    availability = next(c for c in line["checks"] if c["name"] == "availability")
    assert availability["canary"] == 0.2 and availability["threshold"] == pytest.approx(0.01)
    assert availability["result"] == "fail"
    assert line["queries"] == [{"backend": "mimir", "query": "sum by (k8s_replicaset_name) (increase(x[2m]))",
                                "seconds": 0.012, "series": 2, "error": None}]
