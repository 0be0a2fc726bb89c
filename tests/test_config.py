from pathlib import Path

import pytest

from device.cli import main
from device.config import Config, load_config, parse_config
from device.realtime import ConfigError


def test_empty_config_gives_documented_defaults() -> None:
    c = parse_config("")
    assert c == Config()
    assert (c.buttons.connect, c.buttons.mute, c.leds.status, c.leds.mute) == (17, 27, 22, 23)
    assert c.model.provider == "openai" and c.realtime_model().name == "gpt-realtime"
    assert c.audio.rate == 48000 and c.audio.period_ms == 20
    assert c.control.socket == "/run/voice-device/control.sock"
    assert c.behaviour.autoconnect is False
    assert c.session_config().voice == "marin"


def test_full_example_parses() -> None:
    c = parse_config(
        """
        [model]
        provider = "xai"
        url = "ws://127.0.0.1:8765/v1/realtime"
        instructions = "Be brief."
        turn_detection = "semantic_vad"
        [credential]
        source = "url"
        url = "https://backend.example/realtime/credential"
        [audio]
        capture = "plughw:CARD=Device"
        rate = 44100
        format = "S32_LE"
        channels = 2
        [buttons]
        mode = "push_to_talk"
        [leds]
        status_rgb = [5, 6, 13]
        status = 12
        [behaviour]
        autoconnect = true
        """
    )
    assert c.realtime_model().provider == "xai"
    assert c.realtime_model().name == "grok-voice-latest"
    assert c.session_config().voice == "eve"
    assert c.session_config().turn_detection is None  # push-to-talk turns server VAD off
    assert c.api_key_env() == "XAI_API_KEY"
    assert c.leds.status_rgb == [5, 6, 13]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[audio]\nrate = "fast"', 'audio.rate: expected integer, got "fast"'),
        ("[audio]\nrate = 22050", "audio.rate: expected one of"),
        ("[audio]\nrat = 48000", "audio.rat: unknown key"),
        ("[sound]\nrate = 48000", "sound: unknown section"),
        ("[behaviour]\nautoconnect = 1", "behaviour.autoconnect: expected boolean, got 1"),
        ('[buttons]\nmode = "ptt"', 'buttons.mode: expected one of "toggle", "push_to_talk"'),
        (
            "[buttons]\nconnect = 23",
            "GPIO23 is assigned to both the connect button and the mute LED "
            "(buttons.connect = 23, leds.mute = 23)",
        ),
        ("[leds]\nmute = 40", "leds.mute: BCM pin must be 0..27"),
        ('[model]\nprovider = "anthropic"', "model.provider"),
        ('[model]\nurl = "ws://api.example.com/x"', "model.url"),
        ('[credential]\nsource = "url"\nurl = "http://example.com"', "credential.url"),
        # Look-alikes of loopback hosts are remote: no plain http or ws to them.
        ('[credential]\nsource = "url"\nurl = "http://localhost.evil.example/"', "credential.url"),
        ('[credential]\nsource = "url"\nurl = "http://127.0.0.1@evil.example/"', "credential.url"),
        ('[model]\nurl = "ws://127.0.0.1.nip.io/v1/realtime"', "model.url"),
        ('[control]\nmode = "rw"', "control.mode"),
        ("[audio]\nperiod_ms = 500", "audio.period_ms"),
        ("audio = 3", "audio: expected a table"),
        ("[audio\n", "not valid TOML"),
    ],
)
def test_bad_config_names_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert message in str(info.value)


def test_missing_explicit_file_is_an_error_but_missing_default_is_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")
    monkeypatch.setattr("device.config.DEFAULT_PATH", tmp_path / "absent.toml")
    assert load_config() == Config()


def test_config_check_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.toml"
    good.write_text("[audio]\nrate = 44100\n")
    bad = tmp_path / "bad.toml"
    bad.write_text('[audio]\nrate = "fast"\n')
    assert main(["config", "check", str(good)]) == 0
    assert main(["config", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "audio.rate" in err and str(bad) in err


def test_config_check_warns_when_the_microphone_could_never_be_heard(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deaf = tmp_path / "deaf.toml"
    deaf.write_text('[model]\nturn_detection = "none"\n')
    assert main(["config", "check", str(deaf)]) == 0  # valid: a text-only kiosk may want it
    assert "microphone is never sent" in capsys.readouterr().err
    ptt = tmp_path / "ptt.toml"
    ptt.write_text('[model]\nturn_detection = "none"\n[buttons]\nmode = "push_to_talk"\n')
    assert main(["config", "check", str(ptt)]) == 0
    assert "warning" not in capsys.readouterr().err


def test_false_means_a_part_is_not_fitted_and_frees_its_pin() -> None:
    config = parse_config("[leds]\nactivity = false\n[buttons]\nmute = false\nconnect = 25\n")
    assert config.leds.activity is None and config.buttons.mute is None
    assert config.buttons.connect == 25  # pin 25 was the activity LED's default
    with pytest.raises(ConfigError, match=r"buttons\.connect: expected integer, got true"):
        parse_config("[buttons]\nconnect = true\n")


# ---------------------------------------------------------------- `config check` == `run`

#: Each value `run` could not use, and the key the error must name.
RANGE_MATRIX = [
    ("[audio]\nplayback_rate = 1099511627776", "audio.playback_rate"),
    ("[audio]\ncapture_rate = 12345", "audio.capture_rate"),
    ("[audio]\nmax_buffer_ms = 1000000000000000", "audio.max_buffer_ms"),
    ("[audio]\nstart_threshold_ms = -5", "audio.start_threshold_ms"),
    ('[control]\nmode = "0777"', "control.mode"),
    ('[control]\nmode = "0664"', "control.mode"),
    ("[control]\nmax_clients = 0", "control.max_clients"),
    ("[control]\nmax_clients = -1", "control.max_clients"),
    ("[credential]\ntimeout_s = nan", "credential.timeout_s"),
    ("[credential]\ntimeout_s = inf", "credential.timeout_s"),
    ("[credential]\ntimeout_s = -1", "credential.timeout_s"),
    ("[credential]\ntimeout_s = 0", "credential.timeout_s"),
    ("[model]\nvad_threshold = nan", "model.vad_threshold"),
    ("[model]\nvad_threshold = 1.5", "model.vad_threshold"),
    ("[model]\nsilence_duration_ms = -1", "model.silence_duration_ms"),
    ("[buttons]\nbounce_ms = -3", "buttons.bounce_ms"),
    ("[buttons]\nlong_press_s = -inf", "buttons.long_press_s"),
    ('[model]\nprovider = "xai"\nturn_detection = "semantic_vad"', "model.turn_detection"),
    ('[model]\nprovider = "openai"\nvoice = "eve"', "model.voice"),
]


@pytest.mark.parametrize(("text", "key"), RANGE_MATRIX, ids=[k for _, k in RANGE_MATRIX])
def test_config_check_refuses_what_run_could_not_use(
    text: str, key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text + "\n")
    assert main(["config", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: {key}: " in err


def test_config_check_reports_every_error_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[audio]\nrate = "fast"\nstart_threshold_ms = -5\nplayback_rate = 1099511627776\n'
        '[control]\nmode = "0777"\nmax_clients = 0\n[credential]\ntimeout_s = nan\n'
        "[model]\nvad_threshold = nan\n[sound]\nx = 1\n"
        '[mqtt]\nhost = "broker"\nport = 70000\nkeepalive = "30"\ndevice_id = "all"\n'
    )
    assert main(["config", "check", str(path)]) == 2
    err = capsys.readouterr().err
    keys = [
        "audio.rate",
        "audio.start_threshold_ms",
        "audio.playback_rate",
        "control.mode",
        "control.max_clients",
        "credential.timeout_s",
        "model.vad_threshold",
        "sound",
        "mqtt.port",
        "mqtt.keepalive",
        "mqtt.device_id",
    ]
    for key in keys:
        assert f"{path}: {key}" in err, key
    assert f"{len(keys)} errors" in err


def test_the_edges_of_each_range_are_accepted() -> None:
    c = parse_config(
        "[audio]\nplayback_rate = 24000\ncapture_rate = 16000\nstart_threshold_ms = 0\n"
        'max_buffer_ms = 300000\n[control]\nmode = "0600"\nmax_clients = 1\n'
        "[credential]\ntimeout_s = 0.5\n[model]\nvad_threshold = 0.0\n"
    )
    assert c.audio.playback_rate == 24000 and c.control.max_clients == 1


# ---------------------------------------------------------------- [mqtt]


def test_mqtt_is_off_by_default_and_checked_with_everything_else(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert not parse_config("").mqtt.enabled
    assert not parse_config('[mqtt]\nhost = ""\nport = 8883\n').mqtt.enabled
    on = parse_config('[mqtt]\nhost = "broker.lan"\ntls = true\ndevice_id = "kiosk01"\n').mqtt
    assert on.enabled and on.where == "mqtts://broker.lan:8883" and on.prefix.endswith("kiosk01")
    path = tmp_path / "config.toml"
    path.write_text('[audio]\nrate = "fast"\n[mqtt]\nhost = "broker.lan"\nport = "1883"\n')
    assert main(["config", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: audio.rate" in err and f"{path}: mqtt.port: expected int" in err
    assert "2 errors" in err
    path.write_text('[mqtt]\nhost = "broker.lan"\npassword = "hunter2"\n')
    assert main(["config", "check", str(path)]) == 2
    assert "mqtt.password: unknown key" in capsys.readouterr().err


def test_an_enabled_mqtt_without_a_device_id_derives_one_from_the_machine() -> None:
    derived = parse_config('[mqtt]\nhost = "broker.lan"\n').mqtt.device_id
    assert derived and derived == parse_config('[mqtt]\nhost = "b"\n').mqtt.device_id
    assert derived not in Path("/etc/machine-id").read_text()


# ---------------------------------------------------------------- [wake]


def test_wake_is_off_by_default_and_checked_with_everything_else(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert not parse_config("").wake.enabled
    on = parse_config('[wake]\nmodel = "okay_nabu"\npreroll_ms = 200\nmax_hold_s = 8\n').wake
    assert on.enabled and on.preroll_ms == 200 and on.max_hold_s == 8.0
    path = tmp_path / "config.toml"
    path.write_text('[audio]\nrate = "fast"\n[wake]\nmodel = "okay_nabo"\nrefractory_s = "2"\n')
    assert main(["config", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: audio.rate" in err
    assert f"{path}: wake.refractory_s: expected number" in err
    assert f'{path}: wake.model: unknown model "okay_nabo"' in err and "okay_nabu" in err
    path.write_text("[wake]\nmax_hold_s = 0\n")
    assert main(["config", "check", str(path)]) == 2
    assert "wake.max_hold_s: expected more than 0" in capsys.readouterr().err
    path.write_text(f'[wake]\nmodel = "{tmp_path / "missing.json"}"\n')
    assert main(["config", "check", str(path)]) == 2
    assert "wake.model: model file not found" in capsys.readouterr().err


def test_the_config_template_documents_every_wake_key_with_its_default() -> None:
    template = (Path(__file__).resolve().parents[1] / "config" / "config.toml").read_text()
    block = template.split("\n[wake]\n", 1)[1]
    defaults = []
    for key in ("model", "refractory_s", "preroll_ms", "max_hold_s"):
        first = next(line for line in block.splitlines() if line.startswith(f"#{key} = "))
        defaults.append(first[1:])
    assert parse_config("[wake]\n" + "\n".join(defaults)).wake == parse_config("").wake
