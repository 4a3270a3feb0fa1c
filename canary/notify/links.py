"""Grafana URLs for a CanaryEvent: the service dashboard, TraceQL in Explore, one trace. Pure."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from urllib.parse import quote, urlencode

from canary.evidence.model import Evidence
from canary.notify.events import CanaryEvent
from canary.notify.settings import RenderSettings

_MARGIN = timedelta(minutes=5)


def _ms(at: datetime) -> str:
    return str(int(at.timestamp() * 1000))


def time_range(event: CanaryEvent, evidence: Evidence | None = None) -> tuple[str, str]:
    """Epoch milliseconds from a little before the analysis started (or the evidence's window) to a
    little after the event."""
    start = event.started_at or (event.at - timedelta(seconds=event.window or 600))
    end = event.at
    if evidence is not None:
        start, end = min(start, evidence.start), max(end, evidence.end)
    return _ms(start - _MARGIN), _ms(end + _MARGIN)


def dashboard_url(event: CanaryEvent, settings: RenderSettings) -> str | None:
    if settings.grafana_url is None:
        return None
    start, end = time_range(event)
    query = urlencode(
        {
            "var-namespace": event.namespace,
            "var-deployment": event.deployment,
            "var-service": event.service,
            "from": start,
            "to": end,
        }
    )
    return f"{settings.grafana_url}/d/{quote(settings.dashboard_uid, safe='')}?{query}"


def explore_url(
    query: str, event: CanaryEvent, settings: RenderSettings, evidence: Evidence | None = None
) -> str | None:
    """Grafana Explore on the Tempo datasource running `query` (TraceQL, or a trace id) over the event's time."""
    if settings.grafana_url is None:
        return None
    start, end = time_range(event, evidence)
    uid = settings.tempo_datasource_uid
    pane = {
        "datasource": uid,
        "queries": [
            {
                "refId": "A",
                "datasource": {"type": "tempo", "uid": uid},
                "queryType": "traceql",
                "query": query,
                "limit": 20,
                "tableType": "traces",
            }
        ],
        "range": {"from": start, "to": end},
    }
    panes = json.dumps({"canary": pane}, separators=(",", ":"))
    return f"{settings.grafana_url}/explore?{urlencode({'schemaVersion': 1, 'panes': panes, 'orgId': 1})}"


def trace_url(
    trace_id: str, event: CanaryEvent, settings: RenderSettings, evidence: Evidence | None = None
) -> str | None:
    return explore_url(trace_id, event, settings, evidence)


def logs_explore_url(
    query: str, event: CanaryEvent, settings: RenderSettings, evidence: Evidence | None = None
) -> str | None:
    """Grafana Explore on the Loki datasource running the LogQL `query` over the event's time."""
    if settings.grafana_url is None:
        return None
    start, end = time_range(event, evidence)
    uid = settings.loki_datasource_uid
    pane = {
        "datasource": uid,
        "queries": [{"refId": "A", "datasource": {"type": "loki", "uid": uid}, "expr": query, "queryType": "range"}],
        "range": {"from": start, "to": end},
    }
    panes = json.dumps({"logs": pane}, separators=(",", ":"))
    return f"{settings.grafana_url}/explore?{urlencode({'schemaVersion': 1, 'panes': panes, 'orgId': 1})}"
