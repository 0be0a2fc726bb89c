from datetime import UTC, datetime, timedelta

import pytest

from device.realtime import Credential, CredentialError, parse_credential

SECRET = "ek_live_SECRET_do_not_log_0123456789"


def test_token_credential_parses_iso_string_with_z() -> None:
    cred = parse_credential({"kind": "token", "token": SECRET, "expiresAt": "2030-01-02T03:04:05Z"})
    assert cred.kind == "token"
    assert cred.token == SECRET
    assert cred.expires_at == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_url_credential_accepts_datetime_and_naive_means_utc() -> None:
    cred = parse_credential(
        {"kind": "url", "url": "wss://proxy.example/rt?sig=abc", "expiresAt": datetime(2030, 1, 1)}
    )
    assert cred.url == "wss://proxy.example/rt?sig=abc"
    assert cred.expires_at.tzinfo is UTC


def test_expired_compares_against_now() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    cred = parse_credential({"kind": "token", "token": SECRET, "expiresAt": now.isoformat()})
    assert not cred.expired(now - timedelta(seconds=1))
    assert cred.expired(now)
    assert cred.expires_within(30, now - timedelta(seconds=10))
    assert not cred.expires_within(30, now - timedelta(seconds=60))


def test_repr_and_str_never_show_the_secret() -> None:
    token = parse_credential(
        {"kind": "token", "token": SECRET, "expiresAt": "2030-01-01T00:00:00Z"}
    )
    url = parse_credential(
        {"kind": "url", "url": f"wss://h.example/rt?key={SECRET}", "expiresAt": "2030-01-01"}
    )
    for cred in (token, url, Credential.api_key(SECRET)):
        assert SECRET not in repr(cred)
        assert SECRET not in str(cred)
        assert SECRET not in f"{cred!r} {[cred]}"
    assert "h.example" in repr(url)


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ({"token": "x", "expiresAt": "2030-01-01"}, "credential.kind"),
        ({"kind": "password", "token": "x", "expiresAt": "2030-01-01"}, "credential.kind"),
        ({"kind": "token", "expiresAt": "2030-01-01"}, "credential.token"),
        ({"kind": "url", "token": "x", "expiresAt": "2030-01-01"}, "credential.url"),
        ({"kind": "token", "token": "x"}, "credential.expiresAt"),
        ({"kind": "token", "token": "x", "expiresAt": "tomorrow"}, "credential.expiresAt"),
        ({"kind": "token", "token": "", "expiresAt": "2030-01-01"}, "credential.token"),
        ({"kind": "url", "url": "https://x", "expiresAt": "2030-01-01"}, "credential.url"),
        ("just-a-string", "credential"),
    ],
)
def test_bad_input_names_the_field(value: object, named: str) -> None:
    with pytest.raises(CredentialError, match=named.replace(".", r"\.")) as info:
        parse_credential(value)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)


def test_bad_kind_error_does_not_echo_secret() -> None:
    with pytest.raises(CredentialError) as info:
        parse_credential({"kind": "token", "token": SECRET, "expiresAt": "not a date"})
    assert SECRET not in str(info.value)


def test_credential_is_frozen() -> None:
    cred = Credential.api_key(SECRET)
    with pytest.raises(AttributeError):
        cred.secret = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"kind": "token", "token": "t", "expiresAt": 1e300}, "expiresAt"),
        (
            {"kind": "url", "url": "ws://evil.example.com/rt?k=v", "expiresAt": "2030-01-01"},
            "loopback",
        ),
        ({"kind": "url", "url": "wss://host:99999/rt", "expiresAt": "2030-01-01"}, "valid URL"),
        (
            {"kind": "url", "url": "ws://127.0.0.1.nip.io/rt?k=v", "expiresAt": "2030-01-01"},
            "loopback",
        ),
    ],
)
def test_hostile_credentials_are_refused_with_a_credential_error(
    value: dict[str, object], message: str
) -> None:
    with pytest.raises(CredentialError, match=message) as info:
        parse_credential(value)
    assert "k=v" not in str(info.value)
