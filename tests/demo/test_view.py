"""How the demo prints Slack messages and its pace: pure functions, no servers."""

from __future__ import annotations

import pytest
from rich.console import Console

from canary_testkit.demo import scenario as sc
from canary_testkit.demo.view import mrkdwn, slack_message


def styles(text: str) -> dict[str, str]:
    rendered = mrkdwn(text)
    return {rendered.plain[span.start:span.end]: str(span.style) for span in rendered.spans}


def test_mrkdwn_styles_and_unescapes_like_slack() -> None:
    rendered = mrkdwn("*Rolled back* `shop/checkout` _why_ &lt;b&gt; <https://g.example/d?x=1|dashboard> :x: ok")
    assert rendered.plain == "Rolled back shop/checkout why <b> dashboard ✗ ok"
    found = styles("*Rolled back* `shop/checkout` _why_ <https://g.example/d?x=1|dashboard> :x:")
    assert found["Rolled back"] == "bold" and found["shop/checkout"] == "cyan" and found["why"] == "italic"
    assert "link https://g.example/d?x=1" in found["dashboard"] and found["✗"] == "bold red"


def test_mrkdwn_never_interprets_rich_markup_from_a_message() -> None:
    hostile = "[bold red]pwned[/] [link=file:///etc/passwd]x[/link] snake_case_name"
    rendered = mrkdwn(hostile)
    assert rendered.plain == hostile
    assert not rendered.spans


def test_a_slack_payload_is_shown_as_the_channel_would_show_it() -> None:
    payload = {
        "text": "fallback",
        "channel": "#checkout",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "Rolled back shop/checkout"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "@oncall *availability* failed"}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": "*Revision*\n2"},
                                           {"type": "mrkdwn", "text": "*Images*\n`a` → `b`"}]},
            {"type": "divider"},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "cluster *demo*"},
                                             {"type": "mrkdwn", "text": "mop-canary"}]},
        ],
    }
    console = Console(width=80, record=True, color_system=None)
    console.print(slack_message(payload, "Slack message 1/1"))
    text = console.export_text()
    for expected in ("Slack message 1/1", "Rolled back shop/checkout", "@oncall availability failed",
                     "Revision", "a → b", "cluster demo · mop-canary", "to #checkout"):
        assert expected in text
    assert "fallback" not in text, "blocks win over the fallback text"
    console = Console(width=80, record=True, color_system=None)
    console.print(slack_message({"text": "only *text*"}, "plain"))
    assert "only text" in console.export_text()


def test_speed_scales_every_duration_and_keeps_the_evidence_per_window() -> None:
    slow, fast = sc.Pace(1.0), sc.Pace(4.0)
    assert (slow.interval, slow.window) == (2.0, 8.0)
    assert (fast.interval, fast.window, fast.scrape_interval) == (0.5, 2.0, "250ms")
    assert slow.rps_per_replica * slow.window == fast.rps_per_replica * fast.window
    spec = sc.slo(fast).spec.analysis
    assert (spec.interval, spec.window) == (0.5, 2.0)
    with pytest.raises(ValueError, match=r"--speed must be between 0\.25 and 4"):
        sc.Pace(5.0)
