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


@pytest.mark.parametrize("event_class", event_classes(), ids=lambda cls: cls.TYPE)
def test_event_payload_round_trips_through_json(event_class):
    event = event_class(**{f.name: SAMPLE_VALUES[f.type]
                           for f in dataclasses.fields(event_class)})
    assert event_class.from_payload(json.loads(json.dumps(event.to_payload()))) == event


def test_no_two_events_share_a_type_string():
    types = [cls.TYPE for cls in event_classes()]
    assert len(types) == len(set(types))


def test_a_payload_is_a_copy_the_caller_may_change_without_changing_the_event():
    event = tournament_messages.TournamentCreated(tournament_id="t", name="n", participants=["ann", "bob"])
    payload = event.to_payload()
    assert payload == {"tournament_id": "t", "name": "n", "participants": ["ann", "bob"]}
    payload["participants"].append("eve")
    assert event.participants == ["ann", "bob"]
