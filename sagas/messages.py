"""Message contracts shared by every service: the envelope and the base of every event.

A service declares its events in `<service>/messages.py` as frozen dataclasses
of JSON-able fields; other services may import those modules (and nothing
else) to consume them. A type string is never reused for another shape: a new
shape gets a new `SCHEMA_VERSION` and an upcaster on the consuming side.
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import uuid
from datetime import datetime
from typing import Any, ClassVar, Self

# Every event class defined in an imported `messages` module, by type string
# (the sagas app imports each installed app's `messages` at start-up).
EVENT_TYPES: dict[str, type[Event]] = {}


def is_known_event_type(event_type: str) -> bool:
    return event_type in EVENT_TYPES


@dataclasses.dataclass(frozen=True)
class Event:
    """Base of every event: subclasses set the three class-level names."""

    TYPE: ClassVar[str]
    AGGREGATE_TYPE: ClassVar[str]
    SCHEMA_VERSION: ClassVar[int] = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "TYPE" in cls.__dict__:
            known = EVENT_TYPES.get(cls.TYPE)
            if known is not None and (known.__module__, known.__qualname__) != (cls.__module__, cls.__qualname__):
                raise TypeError(f"event type {cls.TYPE!r} is already {known.__module__}.{known.__qualname__}")
            EVENT_TYPES[cls.TYPE] = cls

    def to_payload(self) -> dict[str, Any]:
        # Not dataclasses.asdict: its recursive deep copy was a tenth of an event consumer's CPU (py-spy), and
        # fields are JSON values, so only lists and dicts need copying.
        payload = {}
        for name in _field_names(type(self)):
            value = getattr(self, name)
            payload[name] = copy.deepcopy(value) if isinstance(value, list | dict) else value
        return payload

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Self:
        """Build the event from a payload, ignoring fields this version does not know."""
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in payload.items() if key in names})


@functools.cache
def _field_names(cls: type[Event]) -> tuple[str, ...]:
    return tuple(field.name for field in dataclasses.fields(cls))


class EnvelopeError(ValueError):
    """A message that cannot be decoded into an envelope (a poison message)."""


@dataclasses.dataclass(frozen=True)
class Envelope:
    """What travels on the wire for every command, reply and event."""

    message_id: str
    type: str
    schema_version: int
    aggregate_type: str
    aggregate_id: str
    aggregate_version: int
    correlation_id: str
    causation_id: str
    occurred_at: str
    payload: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Envelope:
        """Decode and validate; raise EnvelopeError on anything malformed."""
        if not isinstance(data, dict):
            raise EnvelopeError(f"an envelope must be an object, got {type(data).__name__}")
        missing = [field.name for field in dataclasses.fields(cls) if field.name not in data]
        if missing:
            raise EnvelopeError(f"envelope lacks {', '.join(missing)}")
        try:
            uuid.UUID(str(data["message_id"]))
            datetime.fromisoformat(str(data["occurred_at"]))
            version = int(data["aggregate_version"])
            schema_version = int(data["schema_version"])
        except (TypeError, ValueError) as exc:
            raise EnvelopeError(f"malformed envelope: {exc}") from exc
        if version < 1 or not isinstance(data["payload"], dict):
            raise EnvelopeError("aggregate_version must be >= 1 and payload an object")
        return cls(
            message_id=str(uuid.UUID(str(data["message_id"]))), type=str(data["type"]), schema_version=schema_version,
            aggregate_type=str(data["aggregate_type"]), aggregate_id=str(data["aggregate_id"]),
            aggregate_version=version, correlation_id=str(data["correlation_id"]),
            causation_id=str(data["causation_id"]), occurred_at=str(data["occurred_at"]), payload=data["payload"],
        )
