"""Every published event survives a JSON round trip unchanged."""
import dataclasses
import json

import pytest

from sagas.messages import Event
from scores import messages as scores_messages
from tournament import messages as tournament_messages

SAMPLE_VALUES = {str: "x", int: 3, list[str]: ["ann", "bob"]}


def event_classes() -> list[type[Event]]:
    modules = (tournament_messages, scores_messages)
    return [obj for module in modules for obj in vars(module).values()
            if isinstance(obj, type) and issubclass(obj, Event) and obj is not Event]


@pytest.mark.parametrize("event_class", event_classes(), ids=lambda cls: f"{cls.TYPE}.v{cls.SCHEMA_VERSION}")
def test_event_payload_round_trips_through_json(event_class):
    event = event_class(**{f.name: SAMPLE_VALUES[f.type]
                           for f in dataclasses.fields(event_class)})
    assert event_class.from_payload(json.loads(json.dumps(event.to_payload()))) == event


def test_no_two_event_shapes_share_a_type_and_schema_version():
    # A type string names one event; each of its shapes has its own schema version (read through upcasters).
    shapes = [(cls.TYPE, cls.SCHEMA_VERSION) for cls in event_classes()]
    assert len(shapes) == len(set(shapes))
