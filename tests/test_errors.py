"""The exception tree mixes in the built-ins callers expect, and its docstring is the truth."""

from __future__ import annotations

import inspect

from exposure_ctrl import errors


def test_builtins_are_mixed_in():
    assert issubclass(errors.ConfigError, ValueError)
    assert issubclass(errors.ScenarioError, errors.ConfigError)
    assert issubclass(errors.SensorDataError, ValueError)
    assert issubclass(errors.SensorTimeout, TimeoutError)
    assert issubclass(errors.HeadsetLost, TimeoutError)
    r = errors.SensorUnavailable("no adapter", errors.SensorUnavailableReason.NO_BLUETOOTH)
    assert r.reason is errors.SensorUnavailableReason.NO_BLUETOOTH


def test_every_exception_class_is_drawn_in_the_module_docstring():
    doc = errors.__doc__ or ""
    classes = [
        name for name, obj in vars(errors).items()
        if inspect.isclass(obj) and issubclass(obj, errors.ExposureCtrlError)
    ]
    assert classes, "no exception classes found"
    missing = [c for c in classes if c not in doc]
    assert not missing, f"add {missing} to the tree in errors.py's docstring"
