"""Patient codes (pseudonyms only) and the record enums."""

from __future__ import annotations

import logging
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exposure_ctrl.errors import ConfigError, PatientCodeError
from exposure_ctrl.store import Outcome, Trigger, validate_patient_code


@pytest.mark.parametrize("code", ["P-0042", "p01", "S12_a", "0001", "x9", "A1-B2-C3"])
def test_pseudonymous_codes_are_accepted(code: str) -> None:
    assert validate_patient_code(code) == code


@pytest.mark.parametrize(
    "code, match",
    [
        ("Jane Doe", "contains a space"),
        ("jane doe", "contains a space"),
        ("P 42", "contains a space"),
        ("Jane_Doe", "looks like a person's name"),
        ("Jane-Doe", "looks like a person's name"),
        ("JaneDoe", "looks like a person's name"),
        ("Mary_Ann_Smith", "looks like a person's name"),
        ("", "malformed"),
        ("x", "malformed"),
        ("-P42", "malformed"),
        ("P42;DROP", "malformed"),
        ("jane@example.org", "malformed"),
        ("A" * 33, "malformed"),
        ("Zoë1", "malformed"),
    ],
)
def test_names_and_malformed_codes_are_refused(code: str, match: str) -> None:
    with pytest.raises(PatientCodeError, match=match) as err:
        validate_patient_code(code)
    assert isinstance(err.value, ConfigError)  # the CLI turns it into exit status 2
    assert "P-0042" in str(err.value)  # the message shows what to use instead


def test_a_code_without_digits_is_accepted_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="exposure_ctrl.store.records"):
        assert validate_patient_code("otter") == "otter"
    assert "no digit" in caplog.text


@given(st.text(min_size=1, max_size=40))
def test_any_text_with_whitespace_is_refused(text: str) -> None:
    code = text[: len(text) // 2] + " " + text[len(text) // 2 :]
    with pytest.raises(PatientCodeError):
        validate_patient_code(code)


@given(
    st.text(alphabet=string.digits, min_size=1, max_size=4),
    st.text(alphabet=string.ascii_uppercase + string.digits + "_-", min_size=1, max_size=20),
)
def test_codes_with_digits_and_no_capitalised_words_pass(head: str, tail: str) -> None:
    code = head + tail
    assert validate_patient_code(code) == code


def test_enums_name_their_allowed_values() -> None:
    with pytest.raises(ValueError, match="completed, therapist_ended, aborted_by_patient, safety"):
        Outcome.parse("crashed", "outcome")
    assert Trigger.parse("shield", "trigger") is Trigger.SHIELD
    assert str(Trigger.POLICY) == "policy"
