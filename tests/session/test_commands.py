"""Therapist commands: parsing from text and validation."""

from __future__ import annotations

import pytest

from exposure_ctrl.errors import ConfigError
from exposure_ctrl.session.commands import CommandKind, TherapistCommand, parse_command


@pytest.mark.parametrize(
    "line, kind, extra",
    [
        ("pause", CommandKind.PAUSE, {}),
        ("resume", CommandKind.RESUME, {}),
        ("up", CommandKind.STEP_UP, {}),
        ("step-down size", CommandKind.STEP_DOWN, {"parameter": "size"}),
        ("stop", CommandKind.SAFE, {}),
        ("suds 45", CommandKind.SUDS, {"value": 45}),
        ("note patient reports dizziness", CommandKind.NOTE, {"text": "patient reports dizziness"}),
        ("  ACCEPT ", CommandKind.ACCEPT, {}),
        ("confirm", CommandKind.CONFIRM_BASELINE, {}),
    ],
)
def test_parse(line, kind, extra):
    cmd = parse_command(line, who="dr-x")
    assert cmd.kind is kind and cmd.who == "dr-x"
    for k, v in extra.items():
        assert getattr(cmd, k) == v


@pytest.mark.parametrize(
    "line, message",
    [
        ("", r"empty command"),
        ("pase", r"unknown command 'pase' \(did you mean 'pause'\?\)"),
        ("suds lots", r"SUDS needs a number from 0 to 100, found 'lots'"),
        ("suds 101", r"SUDS is a whole number from 0 to 100, found 101"),
        ("note   ", r"a note needs some text"),
        ("pause now", r"'pause' takes no argument, found 'now'"),
    ],
)
def test_bad_commands_say_what_is_wrong(line, message):
    with pytest.raises(ConfigError, match=message):
        parse_command(line)


def test_a_command_needs_who():
    with pytest.raises(ConfigError, match="who"):
        TherapistCommand(CommandKind.PAUSE, who="")
    assert TherapistCommand(CommandKind.SUDS, value=30).describe() == "suds 30"
