"""The terminal view renders every part of a snapshot; keys become commands."""

from __future__ import annotations

from rich.console import Console

from exposure_ctrl.scenario import resolve_scenario
from exposure_ctrl.session.commands import CommandKind
from exposure_ctrl.session.runner import Snapshot
from exposure_ctrl.session.terminal import KeyReader, hr_strip, render_snapshot

SC = resolve_scenario("spider")


def text_of(renderable) -> str:
    con = Console(width=140, record=True, color_system=None)
    con.print(renderable)
    return con.export_text()


def test_render_shows_phase_scene_policy_shield_and_alarms():
    s = Snapshot(phase="exposure", t=130.0, phase_started_t=100.0, mode="advisory")
    s.baseline_bpm, s.hr_bpm, s.hr_above_bpm = 70.0, 82.5, 12.5
    s.state = SC.hierarchy[2].state
    s.shown_state = SC.hierarchy[1].state
    s.intensity = SC.intensity(s.state)
    s.hierarchy_index = 2
    s.last_policy_action = "size up (small → medium)"
    s.last_policy_reason = "arousal fell by half from its peak"
    s.pending_proposal = "size up (small → medium): arousal fell by half"
    s.last_shield = "too soon after the last change: holding"
    s.alarms = ["HEADSET LOST for 4 s"]
    out = text_of(render_snapshot(s, SC, patient="P-0042"))
    for needle in (
        "EXPOSURE", "30 s", "P-0042", "advisory", "82.5 bpm", "+12.5 bpm", "8–18 (ceiling 25)",
        "3/12: Small brown spider, slightly hairy, 1.5 m", "arousal fell by half from its peak",
        "PROPOSAL", "too soon after the last change", "⚠ HEADSET LOST for 4 s",
    ):
        assert needle in out, needle
    # commanded vs shown: the headset still shows step 2's distance
    assert "1.5 m" in out and "2.1 m" in out


def test_hr_strip_colours_by_band():
    s = Snapshot()
    s.baseline_bpm = 70.0
    for i, bpm in enumerate([72.0] * 20 + [82.0] * 20 + [100.0] * 20):
        s.hr_history.append((float(i), bpm))
    strip = hr_strip(s, SC, width=60, span_s=60.0)
    styles = {str(span.style) for span in strip.spans}
    assert {"yellow", "green", "bold red"} <= styles
    assert "baseline" in hr_strip(Snapshot(), SC).plain


def test_keys_become_commands_and_typing_collects_suds_and_notes():
    got = []
    paused = [False]
    kr = KeyReader(got.append, lambda: paused[0])
    kr.feed(" ")
    paused[0] = True
    kr.feed(" ")
    kr.feed("d")
    for ch in "r45\n":
        kr.feed(ch)
    for ch in "nok\x7fk!\n":
        kr.feed(ch)
    kr.feed("r")
    kr.feed("\x1b")  # cancelled: nothing sent
    kr.feed("z")  # nothing
    kinds = [c.kind for c in got]
    assert kinds == [CommandKind.PAUSE, CommandKind.RESUME, CommandKind.STEP_DOWN, CommandKind.SUDS, CommandKind.NOTE]
    assert got[3].value == 45 and got[4].text == "ok!"
    kr.feed("r")
    for ch in "250\n":
        kr.feed(ch)
    assert len(got) == 5 and "0 to 100" in kr.typing  # an out-of-range rating is refused visibly
