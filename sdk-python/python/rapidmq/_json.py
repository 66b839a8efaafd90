"""JSON helpers (conformance scenario C28, ``json-helpers``): :func:`json_message` writes a value
as a :class:`Message`; ``ReceivedMessage.json()`` and ``QueueMessage.json()`` (native methods)
read one back through :func:`_decode`.

The JSON is compact UTF-8 (``separators=(",", ":")``, ``ensure_ascii=False``), the same bytes
every SDK writes for the same value, and the message carries ``content-type: application/json``.
Reading does not look at that header: any message whose value is JSON decodes.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import functools
import json
import typing
from typing import Any, Dict, Mapping, NoReturn, Optional, Type, TypeVar

from ._native import CONTENT_TYPE_HEADER, JSON_CONTENT_TYPE
from .errors import InvalidArgumentError
from .message import Headers, Message, Payload

T = TypeVar("T")

try:  # ``X | None`` annotations (Python 3.10+)
    from types import UnionType as _UnionType  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python 3.9
    _UnionType = None


def json_message(
    obj: Any,
    *,
    key: Optional[Payload] = None,
    headers: Optional[Headers] = None,
    timestamp_ms: Optional[int] = None,
    delay: Optional[float] = None,
    deliver_at_ms: Optional[int] = None,
    ttl: Optional[float] = None,
    priority: Optional[int] = None,
) -> Message:
    """A :class:`Message` whose value is ``obj`` as compact UTF-8 JSON, with the header
    ``content-type: application/json`` after the ``headers`` given. Pass it wherever a
    ``Message`` goes: ``Producer.send``, ``try_send``, ``Client.request``, ``Client.reply``,
    ``publish_batch`` and their asyncio forms.

    ``obj`` is anything ``json.dumps`` takes; dataclass instances, at any depth, are written as
    ``dataclasses.asdict`` makes them. The other arguments are those of ``Producer.send``.

    >>> producer.send(rapidmq.json_message(Order(id=7, name="café"), key="customer-7"))

    Raises:
        InvalidArgumentError: ``obj`` cannot be written as JSON (an object of another type, a
            circular reference, NaN or an infinity); chained from the ``TypeError`` or
            ``ValueError`` of ``json``.
    """
    if headers is None:
        pairs = []
    elif isinstance(headers, Mapping):
        pairs = list(headers.items())
    else:
        pairs = list(headers)
    pairs.append((CONTENT_TYPE_HEADER, JSON_CONTENT_TYPE))
    return Message(
        _encode(obj),
        key=key,
        headers=tuple(pairs),
        timestamp_ms=timestamp_ms,
        delay=delay,
        deliver_at_ms=deliver_at_ms,
        ttl=ttl,
        priority=priority,
    )


def _encode(obj: Any) -> bytes:
    try:
        text = json.dumps(
            obj,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,  # NaN and Infinity are not JSON: no other SDK could read them
            default=_dataclass_as_dict,
        )
    except (TypeError, ValueError) as err:
        raise InvalidArgumentError(f"the value cannot be written as JSON: {err}") from err
    return text.encode()


def _dataclass_as_dict(obj: Any) -> Dict[str, Any]:
    """``json.dumps``'s ``default``: a dataclass instance as a dict, anything else refused."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def _not_json(constant: str) -> NoReturn:
    raise ValueError(f"{constant} is not JSON")


def _decode(value: bytes, cls: Optional[Type[T]] = None) -> Any:
    """``ReceivedMessage.json(cls)``: the value parsed, or the dataclass ``cls`` built from it.

    The value must be UTF-8 JSON; the top-level keys of an object become ``cls``'s fields (keys
    it has no field for are ignored; fields typed as dataclasses, or lists, tuples, dicts or
    Optionals of them, are built the same way).
    """
    if cls is not None and not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"json() builds a dataclass; {cls!r} is not one")
    try:
        obj = json.loads(value.decode("utf-8"), parse_constant=_not_json)
    except ValueError as err:  # json.JSONDecodeError, UnicodeDecodeError, NaN
        raise InvalidArgumentError(f"the message value is not JSON: {err}") from err
    if cls is None:
        return obj
    try:
        return _build(cls, obj)
    except (TypeError, ValueError) as err:
        raise InvalidArgumentError(
            f"cannot build {cls.__qualname__} from the message's JSON: {err}"
        ) from err


@functools.lru_cache(maxsize=256)
def _field_types(cls: type) -> Mapping[str, Any]:
    """The resolved annotations of a dataclass; none when they do not resolve (a forward
    reference to a local class), and its fields then take the parsed values as they are."""
    try:
        return typing.get_type_hints(cls)
    except Exception:  # NameError, TypeError: annotations this interpreter cannot evaluate
        return {}


def _build(tp: Any, value: Any) -> Any:
    """``value`` (parsed JSON) as the annotated type ``tp``: dataclasses are built, containers
    of them converted; anything else is returned as it is."""
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise TypeError(f"{tp.__qualname__} is built from a JSON object, not {_kind(value)}")
        types = _field_types(tp)
        fields = {
            f.name: _build(types.get(f.name, Any), value[f.name])
            for f in dataclasses.fields(tp)
            if f.init and f.name in value
        }
        return tp(**fields)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union or (_UnionType is not None and origin is _UnionType):
        if value is None:
            return None
        others = [a for a in args if a is not type(None)]
        return _build(others[0], value) if len(others) == 1 else value
    if not isinstance(value, (list, dict)):
        return value
    if isinstance(value, list):
        if origin is tuple:
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(_build(args[0], v) for v in value)
            if len(args) == len(value):
                return tuple(_build(a, v) for a, v in zip(args, value))
            return tuple(value)
        if origin in (list, collections.abc.Sequence, collections.abc.MutableSequence) and args:
            return [_build(args[0], v) for v in value]
        return value
    if origin in (dict, collections.abc.Mapping, collections.abc.MutableMapping) and len(args) == 2:
        return {k: _build(args[1], v) for k, v in value.items()}
    return value


def _kind(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )
