"""The story fails loudly, naming the step, when the controller does not do what the story expects; the
report is still written and everything is stopped."""

from __future__ import annotations

from pathlib import Path

import pytest

from canary_testkit.demo import scenario as sc
from canary_testkit.demo.environment import start_environment
from canary_testkit.demo.options import Scenario
from canary_testkit.demo.record import Recorder
from canary_testkit.demo.story import Story, StoryError
from tests.demo.sockets import accepts, listening_ports


def test_a_healthy_version_that_is_rolled_back_fails_the_story_naming_the_step(tmp_path: Path) -> None:
    before = listening_ports()
    pace = sc.Pace(2.0)
    recorder = Recorder()
    # v2 is announced as healthy but serves the error spike: the controller rightly rolls it back
    profiles = {"v1": sc.HEALTHY, "v2": sc.ERROR_SPIKE, "v3": sc.ERROR_SPIKE}
    env = start_environment(pace, profiles, recorder, tmp_path)
    try:
        story = Story(env, recorder, pace, Scenario.ERRORS)
        with pytest.raises(StoryError) as caught:
            story.run()
    finally:
        env.stop()
    message = str(caught.value)
    assert message.startswith("step 1 (v2 (healthy) analysed and promoted): the healthy v2 was rolled back: ")
    assert "availability" in message and "\n" not in message
    assert [s.ok for s in story.steps] == [True, False]
    assert story.steps[1].detail in message
    assert story.marks.fault is None, "the story stopped at the failing step"
    assert listening_ports() == before
    assert not [port for port in env.endpoints.ports() if accepts(port)]
