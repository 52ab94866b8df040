"""Typed reads of vendor JSON fields, shared by the vendor adapters.

Every helper raises :class:`OutputShapeError` naming the place (``where``) and the field it
expected. Messages are built only from those constants, never from the payload, so an
error can be logged without echoing a user's content.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

from llama_mapper.adapters.base import OutputShapeError
from llama_mapper.adapters.generic import checked_label
from llama_mapper.adapters.scales import convert_output, finite_number

JsonObject = Mapping[str, object]
MAX_OFFSET_DIGITS = 19


def has_key(value: object, *keys: str) -> bool:
    """``value`` is a JSON object with one of ``keys``: how adapters recognize their shape."""
    return isinstance(value, Mapping) and any(key in value for key in keys)


def records(output: object, *keys: str) -> list[object] | None:
    """The records of a scanner report: one record with one of ``keys``, or a list of them
    (``[]`` for a clean scan); ``None`` for anything else, so that plain labels and
    ``[{label, score}]`` fall through to the generic forms. Secret scanners write their
    findings as an array, or one object per line that the caller sends as an array."""
    if has_key(output, *keys):
        return [output]
    if not isinstance(output, list):
        return None
    if output and not any(has_key(item, *keys) for item in output):
        return None
    return output


def as_object(value: object, where: str) -> JsonObject:
    """``value`` as a JSON object, or an error saying ``where`` needed one."""
    if not isinstance(value, Mapping):
        raise OutputShapeError(f"{where} must be an object")
    # JSON keys are strings; a non-string key is caught where it is used as a label.
    return cast(JsonObject, value)


def as_list(value: object, where: str) -> list[object]:
    """``value`` as a JSON array."""
    if not isinstance(value, list):
        raise OutputShapeError(f"{where} must be an array")
    return value


def required(obj: JsonObject, key: str, where: str) -> object:
    """The value of a field that must be present and not null."""
    value = obj.get(key)
    if value is None:
        raise OutputShapeError(f"{where} needs the field '{key}'")
    return value


def object_field(obj: JsonObject, key: str, where: str) -> JsonObject:
    return as_object(required(obj, key, where), f"{where}.{key}")


def list_field(obj: JsonObject, key: str, where: str) -> list[object]:
    return as_list(required(obj, key, where), f"{where}.{key}")


def optional_list(obj: JsonObject, key: str, where: str) -> list[object]:
    """An array that vendors omit when it would be empty (absent or null reads as ``[]``)."""
    value = obj.get(key)
    return [] if value is None else as_list(value, f"{where}.{key}")


def optional_object(obj: JsonObject, key: str, where: str) -> JsonObject | None:
    value = obj.get(key)
    return None if value is None else as_object(value, f"{where}.{key}")


def str_field(obj: JsonObject, key: str, where: str) -> str:
    value = required(obj, key, where)
    if not isinstance(value, str):
        raise OutputShapeError(f"{where}.{key} must be a string")
    return value


def label_field(obj: JsonObject, key: str, where: str) -> str:
    """A field holding a vendor label (short, non-empty string)."""
    return checked_label(str_field(obj, key, where))


def bool_field(obj: JsonObject, key: str, where: str) -> bool:
    value = required(obj, key, where)
    if not isinstance(value, bool):
        raise OutputShapeError(f"{where}.{key} must be true or false")
    return value


def optional_bool(obj: JsonObject, key: str, where: str) -> bool | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise OutputShapeError(f"{where}.{key} must be true or false")
    return value


def number(value: object, where: str) -> float:
    """A finite JSON number (bools are not numbers)."""
    try:
        return finite_number(value, where)
    except ValueError as exc:
        raise OutputShapeError(str(exc)) from None


scaled = convert_output


def offset(value: object, where: str) -> int | None:
    """A character offset: a non-negative integer, or absent.

    Decimal strings are accepted because proto3 JSON writes int64 fields as strings.
    """
    return None if value is None else _offset(value, where)


def _offset(value: object, where: str) -> int:
    if (
        isinstance(value, str)
        and 0 < len(value) <= MAX_OFFSET_DIGITS
        and value.isascii()
        and value.isdecimal()
    ):
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise OutputShapeError(f"{where} must be a non-negative integer")
    return value


def offset_field(obj: JsonObject, key: str, where: str) -> int:
    """A required offset or length."""
    return _offset(required(obj, key, where), f"{where}.{key}")


def span(obj: JsonObject, where: str, start: str = "start", end: str = "end") -> tuple[int, int]:
    """A required ``[start, end)`` pair of offsets."""
    begin = offset_field(obj, start, where)
    finish = offset_field(obj, end, where)
    if finish < begin:
        raise OutputShapeError(f"{where}.{end} must not be before {start}")
    return begin, finish
