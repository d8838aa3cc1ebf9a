"""The 0x2A37 / 0x2A38 / 0x2A19 parsers: real captures, hand-made cases, random bytes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exposure_ctrl.errors import SensorDataError
from exposure_ctrl.sensors.hrm import (
    BodySensorLocation,
    HeartRateMeasurement,
    encode_heart_rate_measurement,
    parse_battery_level,
    parse_body_sensor_location,
    parse_heart_rate_measurement,
    rr_ms_to_raw,
    rr_raw_to_ms,
)

# bytes -> (bpm, contact, RR ms), captured from real straps (see the issue)
REAL_CAPTURES = [
    ("06 3c", 60, True, []),  # Polar H7
    ("16 3c 11 04", 60, True, [1016.6]),
    ("10 3b 53 04", 59, None, [1081.1]),  # Polar H10: no contact bits
    ("16 48 54 01 ec 02", 72, True, [332.0, 730.5]),
]


@pytest.mark.parametrize(("hexbytes", "bpm", "contact", "rr"), REAL_CAPTURES)
def test_real_captures(hexbytes: str, bpm: int, contact: bool | None, rr: list[float]) -> None:
    m = parse_heart_rate_measurement(bytes.fromhex(hexbytes))
    assert (m.bpm, m.contact, list(m.rr_ms)) == (bpm, contact, rr)
    assert m.energy_kj is None


def test_accepts_bytearray_as_bleak_delivers_it() -> None:
    assert parse_heart_rate_measurement(bytearray(b"\x06\x3c")).bpm == 60


def test_sixteen_bit_heart_rate() -> None:
    m = parse_heart_rate_measurement(bytes.fromhex("01 2c 01"))
    assert m == HeartRateMeasurement(bpm=300, rr_ms=(), contact=None, energy_kj=None)


def test_contact_supported_but_lost() -> None:
    assert parse_heart_rate_measurement(bytes.fromhex("04 50")).contact is False


def test_contact_bit_without_support_bit_means_not_supported() -> None:
    assert parse_heart_rate_measurement(bytes.fromhex("02 50")).contact is None


def test_energy_expended_then_rr() -> None:
    # 16-bit HR 75, contact, energy 0x0102 = 258 kJ, RR 1024/1024 s = 1000 ms
    m = parse_heart_rate_measurement(bytes.fromhex("1f 4b 00 02 01 00 04"))
    assert m == HeartRateMeasurement(bpm=75, rr_ms=(1000.0,), contact=True, energy_kj=258)


def test_reserved_flag_bits_are_ignored() -> None:
    assert parse_heart_rate_measurement(bytes.fromhex("e6 3c")).bpm == 60


def test_rr_flag_with_no_intervals_gives_empty_rr() -> None:
    assert parse_heart_rate_measurement(bytes.fromhex("10 3c")).rr_ms == ()


@pytest.mark.parametrize(
    ("hexbytes", "match"),
    [
        ("", "empty"),
        ("06", "no heart-rate byte"),
        ("01 3c", "16-bit heart rate"),
        ("08 3c 01", "energy expended"),
        ("10 3c 11", "whole number"),
        ("18 3c 01 00 11 04 05", "whole number"),
        ("06 3c 11 04", "trailing"),
    ],
)
def test_malformed_packets_say_what_is_wrong(hexbytes: str, match: str) -> None:
    with pytest.raises(SensorDataError, match=match):
        parse_heart_rate_measurement(bytes.fromhex(hexbytes))


def test_sensor_data_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_heart_rate_measurement(b"")


@given(st.binary(max_size=40))
def test_any_bytes_give_a_result_or_a_sensor_data_error(data: bytes) -> None:
    try:
        m = parse_heart_rate_measurement(data)
    except SensorDataError:
        return
    assert 0 <= m.bpm <= 0xFFFF
    assert all(0.0 <= rr <= 64000.0 for rr in m.rr_ms)
    assert m.contact in (True, False, None)


@given(
    bpm=st.integers(0, 0xFFFF),
    rr=st.lists(st.floats(0, 63999, allow_nan=False), max_size=9),
    contact=st.sampled_from([True, False, None]),
    energy=st.one_of(st.none(), st.integers(0, 0xFFFF)),
)
def test_encode_then_parse_round_trips(
    bpm: int, rr: list[float], contact: bool | None, energy: int | None
) -> None:
    m = parse_heart_rate_measurement(encode_heart_rate_measurement(bpm, rr, contact, energy))
    assert (m.bpm, m.contact, m.energy_kj) == (bpm, contact, energy)
    assert len(m.rr_ms) == len(rr)
    for got, sent in zip(m.rr_ms, rr):
        assert abs(got - sent) <= 1000 / 1024 / 2 + 0.05 + 1e-9  # quantisation + 0.1 ms rounding


@given(st.binary(min_size=1, max_size=40))
def test_parse_encode_parse_is_stable(data: bytes) -> None:
    try:
        m = parse_heart_rate_measurement(data)
    except SensorDataError:
        return
    again = parse_heart_rate_measurement(
        encode_heart_rate_measurement(m.bpm, m.rr_ms, m.contact, m.energy_kj)
    )
    assert again == m


@given(st.integers(0, 0xFFFF))
def test_rr_raw_round_trip(raw: int) -> None:
    assert rr_ms_to_raw(rr_raw_to_ms(raw)) == raw


def test_body_sensor_location() -> None:
    assert parse_body_sensor_location(b"\x01") is BodySensorLocation.CHEST
    assert BodySensorLocation.EAR_LOBE.label == "ear lobe"
    with pytest.raises(SensorDataError, match="reserved"):
        parse_body_sensor_location(b"\x07")
    with pytest.raises(SensorDataError, match="exactly 1 byte"):
        parse_body_sensor_location(b"")


def test_battery_level() -> None:
    assert parse_battery_level(bytearray(b"\x57")) == 87
    with pytest.raises(SensorDataError, match="out of range"):
        parse_battery_level(b"\x65")
    with pytest.raises(SensorDataError, match="exactly 1 byte"):
        parse_battery_level(b"\x10\x20")
