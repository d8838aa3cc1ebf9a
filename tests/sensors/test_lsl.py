"""LSL outlets, on loopback only: the check runs in a subprocess whose LSLAPICFG keeps liblsl on
127.0.0.1 with machine-scoped discovery, random ports and a private session id (liblsl reads its
configuration once per process, so a subprocess guarantees the test's settings are the ones used)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("pylsl")

from exposure_ctrl.sensors.lsl import loopback_config  # noqa: E402

SCRIPT = textwrap.dedent(
    """
    import json, math, pylsl
    from exposure_ctrl.clock import ManualClock
    from exposure_ctrl.sensors.lsl import LslOutlet
    from exposure_ctrl.sensors.sample import HeartSample, Quality
    from exposure_ctrl.sensors.source import Gap

    out = LslOutlet(clock=ManualClock(100.0), name="test", source_id="t1")
    heart = pylsl.resolve_byprop("name", "test heart", timeout=5)
    markers = pylsl.resolve_byprop("name", "test markers", timeout=5)
    hin, min_ = pylsl.StreamInlet(heart[0]), pylsl.StreamInlet(markers[0])
    hin.open_stream(timeout=5); min_.open_stream(timeout=5)
    info = hin.info(timeout=5)
    out.push_sample(HeartSample(110.0, 72, (800.0, 820.0), True))
    out.push_sample(HeartSample(111.0, 73, (), False, flags=Quality.NO_CONTACT))
    out.push_marker({"event": "scene", "parameter": "distance", "to": "1 m"}, t=111.5)
    out.push_event(Gap(111.0, 130.0, "disconnected"))
    beats = [hin.pull_sample(timeout=5) for _ in range(3)]
    marks = [min_.pull_sample(timeout=5) for _ in range(3)]
    hin.close_stream(); min_.close_stream(); del hin, min_
    out.close(); out.close()
    print(json.dumps({
        "offset": out.offset_s,
        "type": info.type(), "channels": info.channel_count(),
        "labels": [info.desc().child("channels").child("channel").child_value("label")],
        "beats": [[v, ts] for v, ts in beats],
        "markers": [[v, ts] for v, ts in marks],
    }, allow_nan=True))
    """
)


def test_heart_and_marker_streams_on_loopback(tmp_path: Path) -> None:
    base = random.randrange(20000, 60000, 32)
    cfg = loopback_config(
        tmp_path / "lsl_api.cfg", base_port=base, multicast_port=base - 1,
        session_id=f"exposure-ctrl-test-{base}", log_level=-3,
    )
    text = cfg.read_text()
    assert "ResolveScope = machine" in text and "ListenAddress = 127.0.0.1" in text
    env = {**os.environ, "LSLAPICFG": str(cfg)}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    off = r["offset"]
    assert (r["type"], r["channels"], r["labels"]) == ("HeartRate", 2, ["bpm"])
    (b1, t1), (b2, t2), (b3, t3) = r["beats"]
    assert (b1, b2) == ([72.0, 800.0], [72.0, 820.0])
    assert t1 == pytest.approx(110.0 - 0.82 + off, abs=1e-6)
    assert t2 == pytest.approx(110.0 + off, abs=1e-6)
    assert b3[0] == 73.0 and b3[1] != b3[1]  # NaN: no RR in that reading
    assert t3 == pytest.approx(111.0 + off, abs=1e-6)
    (m1, s1), (m2, s2), (m3, s3) = r["markers"]
    assert m1 == ["sensor: flags no_contact"] and s1 == pytest.approx(111.0 + off, abs=1e-6)
    assert json.loads(m2[0]) == {"event": "scene", "parameter": "distance", "to": "1 m"}
    assert s2 == pytest.approx(111.5 + off, abs=1e-6)
    assert m3[0].startswith("sensor: gap 19.0 s (disconnected)") and s3 == pytest.approx(130.0 + off, abs=1e-6)


def test_closed_outlet_refuses_samples(tmp_path: Path) -> None:
    base = random.randrange(20000, 60000, 32)
    cfg = loopback_config(tmp_path / "c.cfg", base_port=base, multicast_port=base - 1, session_id=f"t-{base}", log_level=-3)
    script = textwrap.dedent(
        """
        from exposure_ctrl.errors import ConfigError
        from exposure_ctrl.sensors.lsl import LslOutlet
        from exposure_ctrl.sensors.sample import HeartSample
        with LslOutlet() as out:
            pass
        try:
            out.push_sample(HeartSample(1.0, 60))
        except ConfigError as e:
            print("refused:", e)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], env={**os.environ, "LSLAPICFG": str(cfg)},
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "refused: this LSL outlet is closed" in proc.stdout
