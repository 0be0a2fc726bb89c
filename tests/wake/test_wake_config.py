"""The [wake] section's validation: bad values are refused with the key named."""

from __future__ import annotations

import pytest

from device.realtime.errors import ConfigError
from device.wake.cli import check_wake
from device.wake.config import WakeSection, validate_wake


def test_defaults_are_off_and_valid() -> None:
    section = WakeSection()
    assert (section.model, section.refractory_s, section.preroll_ms, section.max_hold_s) == (
        "",
        2.0,
        0,
        5.0,
    )
    assert not section.enabled
    validate_wake(section)
    assert check_wake(section) == (True, "wake word off ([wake] model is empty)")


@pytest.mark.parametrize("model", ["okay_nabu", "hey_jarvis", "hey_mycroft", "alexa"])
def test_builtin_models_validate_and_load(model: str) -> None:
    validate_wake(WakeSection(model=model))
    ok, line = check_wake(WakeSection(model=model))
    assert ok and f"wake word model {model} (" in line


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (WakeSection(refractory_s=-1.0), r"^wake\.refractory_s: expected 0\.\.60 seconds, got -1"),
        (WakeSection(refractory_s=61.0), r"^wake\.refractory_s: "),
        (WakeSection(preroll_ms=-10), r"^wake\.preroll_ms: expected 0\.\.2000 ms, got -10"),
        (WakeSection(preroll_ms=5000), r"^wake\.preroll_ms: "),
        (WakeSection(max_hold_s=0.0), r"^wake\.max_hold_s: expected more than 0"),
        (WakeSection(max_hold_s=31.0), r"^wake\.max_hold_s: "),
        (WakeSection(model="jarvis"), r"^wake\.model: unknown model \"jarvis\" \(built-in: "),
        (WakeSection(model="/nonexistent/m.json"), r"^wake\.model: model file not found"),
    ],
)
def test_bad_values_name_the_key(section: WakeSection, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate_wake(section)


def test_doctor_reports_a_bad_model_with_a_fix() -> None:
    ok, line = check_wake(WakeSection(model="jarvis"))
    assert not ok
    assert line.startswith('wake.model: unknown model "jarvis"') and "fix:" in line
