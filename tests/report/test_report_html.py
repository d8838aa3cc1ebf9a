"""The review report: self-contained, escaped, complete, honest about changed scenarios."""

from __future__ import annotations

import datetime as _dt
import re
from pathlib import Path

import pytest

from exposure_ctrl.report.html import CSP, ReviewInput, render_progress, render_review
from exposure_ctrl.report.review import build_review, progress_rows, session_scenario
from exposure_ctrl.scenario import Scenario, load_scenario
from exposure_ctrl.sensors.sample import HeartSample
from exposure_ctrl.store import Store

NOW = _dt.datetime(2026, 6, 1, 12, 0, tzinfo=_dt.timezone.utc)
_XMLNS = re.compile(r'xmlns(:\w+)?="http://www\.w3\.org/[^"]*"')


def assert_self_contained(html: str) -> None:
    """Nothing in the document points outside it."""
    assert "<script" not in html.lower()
    assert "@import" not in html
    refs = re.findall(r'(?:src|href)\s*=\s*["\']([^"\']*)', html, flags=re.I)
    assert all(r.startswith("#") or r.startswith("data:") for r in refs), refs
    urls = re.findall(r"url\(([^)]*)\)", html)
    assert all(u.strip("'\" ").startswith(("#", "data:")) for u in urls), urls
    assert "http" not in _XMLNS.sub("", html).lower().replace("http-equiv", "")
    assert f'<meta http-equiv="Content-Security-Policy" content="{CSP}">' in html


def test_the_report_is_self_contained_and_complete(demo: tuple[Store, int]) -> None:
    store, sid = demo
    inp = build_review(store, sid)
    html = render_review(inp)
    assert_self_contained(html)
    for element in ('id="fig-heart-rate"', 'id="hr-line"', 'id="hr-smooth"',
                    'id="baseline-line"', 'id="window-band"', 'id="ceiling-band"',
                    'id="shield-markers"', 'id="gap-sensor-1"', 'id="gap-headset-2"',
                    'id="suds-points-therapist"', 'id="fig-scene"', 'id="intensity-line"',
                    'id="trigger-policy"', 'id="trigger-shield"', 'id="trigger-therapist"',
                    'id="fig-sensitivity"', 'id="levels-table"', 'id="changes-table"',
                    'id="shield-table"', 'id="gaps-table"', 'id="suds-table"',
                    'id="notes-table"', 'id="provenance-table"', 'id="sensitivity-lines"'):
        assert element in html, element
    for p in inp.scenario.parameters:
        assert f'id="param-{p.id}"' in html
        assert f'id="sensitivity-bar-{p.id}"' in html
    for key in ("outcome", "time-in-window", "peak-rise", "step-reached", "shield", "gaps"):
        assert f'data-key="{key}"' in html
    assert "Completed" in html and "P-0001" in html
    assert inp.record.info.scenario_sha256 in html
    assert "No end was recorded" not in html


def test_rendering_is_deterministic(demo: tuple[Store, int]) -> None:
    store, sid = demo
    inp = build_review(store, sid)
    a = render_review(ReviewInput(inp.record, inp.scenario, (), NOW))
    b = render_review(ReviewInput(inp.record, inp.scenario, (), NOW))
    assert a == b


def test_recorded_text_is_escaped(store: Store, spider: Scenario) -> None:
    with store.begin_session(patient="P-1", scenario=spider, mode="manual") as w:
        w.sample(HeartSample(t=0.0, bpm=70, source="t"))
        w.note(1.0, '<script>alert("x")</script> & <img src=//x.invalid/a.png>', "thera<b>")
        w.command(2.0, "therapist", "hold", {"why": "<i>tired</i>"}, "ok")
        w.end(3.0, "completed", "</td><td>")
    html = render_review(build_review(store, w.session_id))
    assert_self_contained(html)
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;img" in html
    assert "thera&lt;b&gt;" in html and "&lt;/td&gt;&lt;td&gt;" in html


def test_a_crashed_session_says_so(demo: tuple[Store, int]) -> None:
    store, _ = demo
    html = render_review(build_review(store, 3))
    assert "No end was recorded" in html
    assert_self_contained(html)


def test_an_empty_session_still_renders(store: Store, spider: Scenario) -> None:
    with store.begin_session(patient="P-1", scenario=spider, mode="manual"):
        pass
    html = render_review(build_review(store, 1))
    assert "No resting baseline was recorded" in html
    assert "no SUDS" not in html or "no SUDS ratings recorded" in html
    assert_self_contained(html)


def test_a_changed_or_missing_scenario_file_is_flagged(
    store: Store, spider: Scenario, tmp_path: Path
) -> None:
    path = tmp_path / "my_spider.yaml"
    text = Path(spider.source).read_text()  # type: ignore[arg-type]
    path.write_text(text + "\n# a local copy\n")
    sc = load_scenario(path)
    with store.begin_session(patient="P-1", scenario=sc, mode="manual") as w:
        w.sample(HeartSample(t=0.0, bpm=70))
    info = store.session_info(w.session_id)
    used, notes = session_scenario(info)
    assert notes == [] and used.model_dump() == sc.model_dump()

    path.write_text(path.read_text().replace("ceiling_bpm: 25", "ceiling_bpm: 30"))
    used, notes = session_scenario(info)
    assert len(notes) == 1 and "has changed since this session" in notes[0]
    assert used.targets.ceiling_bpm == 25  # the copy the session ran with
    assert "has changed since this session" in render_review(build_review(store, w.session_id))

    path.unlink()
    used, notes = session_scenario(info)
    assert "is no longer there" in notes[0] and "differs from the one this session used" in notes[1]
    assert used.targets.ceiling_bpm == 25


def test_progress_report(demo: tuple[Store, int]) -> None:
    store, _ = demo
    rows, sc = progress_rows(store, "P-0001")
    assert [r.info_id for r in rows] == [1, 2]
    assert all(r.stats.step_reached is not None for r in rows)
    html = render_progress("P-0001", rows, sc, NOW)
    assert_self_contained(html)
    assert 'id="progress-peak-1"' in html and 'id="progress-window-2"' in html
    assert 'id="progress-step"' in html


@pytest.mark.parametrize("bad", ['<img src="https://cdn.invalid/x.png">',
                                 "<style>@import url(http://x.invalid/a.css)</style>"])
def test_the_self_containment_check_itself_catches_external_references(bad: str) -> None:
    with pytest.raises(AssertionError):
        assert_self_contained(
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">{bad}'
        )
