"""The virtual strap on its own: streams, pacing, payloads, settings."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from exposure_ctrl.clock import ManualClock
from exposure_ctrl.errors import ConfigError
from exposure_ctrl.sensors.bleak_bumble import VirtualAir
from exposure_ctrl.sensors.hrm import parse_heart_rate_measurement
from exposure_ctrl.sensors.sample import HeartSample
from exposure_ctrl.sensors.virtual_strap import (
    VirtualStrap,
    open_virtual_ble_source,
    synthetic_heart_stream,
)


def test_synthetic_stream_is_plausible_and_seeded() -> None:
    a = list(itertools.islice(synthetic_heart_stream(72, seed=1), 500))
    b = list(itertools.islice(synthetic_heart_stream(72, seed=1), 500))
    c = list(itertools.islice(synthetic_heart_stream(72, seed=2), 500))
    assert a == b and a != c
    rr = [x[1][0] for x in a]
    assert all(300 <= r <= 1900 for r in rr)
    mean_bpm = 60000 / (sum(rr) / len(rr))
    assert 65 <= mean_bpm <= 79
    assert len(set(rr)) > 100  # it varies
    with pytest.raises(ConfigError, match="mean_bpm"):
        next(synthetic_heart_stream(500))


async def _play(stream: Any, **kw: Any) -> VirtualStrap:
    async with VirtualStrap(air=VirtualAir("unit"), clock=ManualClock(), **kw) as strap:
        await strap.play(stream)
    return strap


def test_stream_items_of_every_accepted_shape_are_paced_on_the_clock(arun) -> None:
    async def agen() -> Any:
        yield (61, [1000.0], True)

    items = [(60, [500.0, 500.0], True), HeartSample(0.0, 70, (750.0,), None), b"\x10\x3c", (90, [], False)]
    strap = arun(lambda: _play(items))
    assert [n.t for n in strap.sent] == [1.0, 1.75, 2.75, 3.75]  # sum of RR, or 1 s without RR
    parsed = [parse_heart_rate_measurement(n.payload) for n in strap.sent if not n.raw]
    assert [(m.bpm, m.rr_ms, m.contact) for m in parsed] == [
        (60, (500.0, 500.0), True), (70, (750.0,), None), (90, (), False)
    ]
    assert [n.raw for n in strap.sent] == [False, False, True, False]
    assert not any(n.delivered for n in strap.sent)  # nobody was connected
    strap2 = arun(lambda: _play(agen()))
    assert len(strap2.sent) == 1 and strap2.stream_done.is_set()


def test_contact_override_and_energy_expended(arun) -> None:
    async def main() -> VirtualStrap:
        async with VirtualStrap(air=VirtualAir("unit"), clock=ManualClock(), energy_kj=10) as strap:
            await strap.send(60, [1000.0], True)
            strap.drop_contact()
            await strap.send(60, [1000.0], True)
            strap.restore_contact()
            await strap.send(60, [1000.0], None)
        return strap

    strap = arun(main)
    parsed = [parse_heart_rate_measurement(n.payload) for n in strap.sent]
    assert [m.contact for m in parsed] == [True, False, None]
    assert [m.energy_kj for m in parsed] == [11, 12, 13]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dropouts": (0, 10)}, "dropouts"),
        ({"dropouts": (20, 10)}, "dropouts"),
        ({"battery_pct": 101}, "battery_pct"),
    ],
)
def test_bad_settings_are_config_errors(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        VirtualStrap(**kwargs)


def test_bad_stream_items_are_config_errors(arun) -> None:
    with pytest.raises(ConfigError, match=r"\(bpm, rr_ms, contact\)"):
        arun(lambda: _play([(60, [1000.0])]))
    with pytest.raises(ConfigError, match="found int"):
        arun(lambda: _play([60]))


def test_strap_lifecycle(arun) -> None:
    async def main() -> None:
        strap = VirtualStrap(air=VirtualAir("unit"))
        with pytest.raises(ConfigError, match="no address"):
            strap.address
        with pytest.raises(ConfigError, match="not started"):
            await strap.send(60)
        await strap.start()
        assert strap.address.startswith("F0:")
        assert not strap.connected and not strap.subscribed
        await strap.aclose()
        await strap.aclose()
        with pytest.raises(ConfigError, match="closed"):
            await strap.start()

    arun(main)


def test_virtual_source_factory_options() -> None:
    strap = VirtualStrap()
    with pytest.raises(ConfigError, match="not both"):
        open_virtual_ble_source(strap=strap, stream=[])
    source = open_virtual_ble_source("My strap", clock=ManualClock())
    assert source.strap.name == "My strap" and source.device_name == "My strap"
