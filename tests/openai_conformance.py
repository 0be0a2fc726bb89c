"""Validate wire JSON against openai-python's GA realtime types, strictly.

Pydantic ignores the SDK's discriminator and silently accepts unknown keys, so the union is
rebuilt with ``Field(discriminator="type")`` and every model in the parsed tree is walked for
``model_extra`` (keys the schema does not know — a misspelled field would hide there).
"""

from __future__ import annotations

import typing
from typing import Annotated, Any, Union

import pydantic
from openai.types.realtime import RealtimeClientEvent, RealtimeServerEvent


def _strict_union(union: Any) -> pydantic.TypeAdapter[Any]:
    if typing.get_origin(union) is Annotated:
        union = typing.get_args(union)[0]
    members = typing.get_args(union)
    tagged: Any = Annotated[Union[tuple(members)], pydantic.Field(discriminator="type")]  # noqa: UP007
    return pydantic.TypeAdapter(tagged)


CLIENT = _strict_union(RealtimeClientEvent)
SERVER = _strict_union(RealtimeServerEvent)


def unknown_keys(model: Any, path: str = "$") -> list[str]:
    found: list[str] = []
    if isinstance(model, pydantic.BaseModel):
        for key in model.model_extra or {}:
            found.append(f"{path}.{key}")
        for name in type(model).model_fields:
            found += unknown_keys(getattr(model, name), f"{path}.{name}")
    elif isinstance(model, list | tuple):
        for i, item in enumerate(model):
            found += unknown_keys(item, f"{path}[{i}]")
    elif isinstance(model, dict):
        for key, item in model.items():
            found += unknown_keys(item, f"{path}.{key}")
    return found


def validate_client(obj: dict[str, Any]) -> None:
    model = CLIENT.validate_python(obj)
    extra = unknown_keys(model)
    assert not extra, f"{obj['type']}: keys unknown to the GA schema: {extra}"


def validate_server(obj: dict[str, Any]) -> None:
    model = SERVER.validate_python(obj)
    extra = unknown_keys(model)
    assert not extra, f"{obj['type']}: keys unknown to the GA schema: {extra}"
