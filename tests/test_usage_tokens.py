"""TokenUsage reads response.usage as openai-python types it (RealtimeResponseUsage)."""

from __future__ import annotations

import pytest
from openai.types.realtime.realtime_response_usage import RealtimeResponseUsage

from device.usage import TokenUsage

FULL = {
    "total_tokens": 1801,
    "input_tokens": 1234,
    "output_tokens": 567,
    "input_token_details": {
        "audio_tokens": 1000,
        "text_tokens": 200,
        "image_tokens": 0,
        "cached_tokens": 34,
        "cached_tokens_details": {"audio_tokens": 30, "text_tokens": 4, "image_tokens": 0},
    },
    "output_token_details": {"audio_tokens": 500, "text_tokens": 67},
}


def test_every_field_of_openai_shape_is_read() -> None:
    u = TokenUsage.from_mapping(FULL)
    assert (u.input_tokens, u.output_tokens, u.total_tokens) == (1234, 567, 1801)
    assert (u.input_audio_tokens, u.input_text_tokens, u.cached_tokens) == (1000, 200, 34)
    assert (u.cached_audio_tokens, u.cached_text_tokens) == (30, 4)
    assert (u.output_audio_tokens, u.output_text_tokens) == (500, 67)


def test_same_figures_from_openai_python_model_and_its_json() -> None:
    model = RealtimeResponseUsage.model_validate(FULL)
    from_json = TokenUsage.from_mapping(model.model_dump(mode="json"))
    assert TokenUsage.from_object(model) == from_json == TokenUsage.from_mapping(FULL)
    # to_mapping is a valid RealtimeResponseUsage again, with the same numbers.
    again = RealtimeResponseUsage.model_validate(from_json.to_mapping())
    assert again.output_token_details is not None
    assert again.output_token_details.audio_tokens == 500
    assert TokenUsage.from_object(again) == from_json


def test_missing_and_null_fields_count_as_zero() -> None:
    u = TokenUsage.from_mapping(
        {"input_tokens": 10, "output_tokens": 5, "input_token_details": None}
    )
    assert u.input_audio_tokens == 0 and u.output_audio_tokens == 0
    assert u.total_tokens == 15  # computed when the provider leaves it out
    assert TokenUsage.from_mapping(None) == TokenUsage()
    assert TokenUsage.from_object(RealtimeResponseUsage()) == TokenUsage()


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"input_tokens": "12"}, "usage.input_tokens"),
        ({"output_tokens": -1}, "usage.output_tokens"),
        ({"output_tokens": True}, "usage.output_tokens"),
        ({"input_token_details": {"audio_tokens": 1.5}}, "usage.input_token_details.audio_tokens"),
        ({"input_token_details": [1]}, "usage.input_token_details"),
        (
            {"input_token_details": {"cached_tokens_details": {"text_tokens": "x"}}},
            "usage.input_token_details.cached_tokens_details.text_tokens",
        ),
    ],
)
def test_bad_counts_are_refused_naming_the_field(data: dict[str, object], named: str) -> None:
    with pytest.raises(ValueError, match=f"^{named}: expected"):
        TokenUsage.from_mapping(data)


def test_sum_adds_every_field() -> None:
    one = TokenUsage.from_mapping(FULL)
    two = one + one
    assert two.to_mapping()["input_token_details"]["cached_tokens_details"]["audio_tokens"] == 60
    assert two.total_tokens == 3602 and two.output_text_tokens == 134
