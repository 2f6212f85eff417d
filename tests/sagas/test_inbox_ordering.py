"""The inbox applies each event once and in version order, whatever the broker does."""
import uuid
from dataclasses import dataclass

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leaderboard.models import ConsumerPosition, DeadLetter, InboxMessage, ParkedMessage
from sagas.inbox import Outcome, deliver, event_handler
from sagas.messages import Envelope, Event
from tests.support.event_probe import PROBE_CONSUMER, ProbeTicked, applied_versions

pytestmark = pytest.mark.django_db(transaction=True, databases=["leaderboard", "sagas"])


def envelope(aggregate_id: str, version: int, value: str = "tick") -> dict:
    return {"message_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{aggregate_id}/{version}")),
            "type": ProbeTicked.TYPE, "schema_version": 1, "aggregate_type": ProbeTicked.AGGREGATE_TYPE,
            "aggregate_id": aggregate_id, "aggregate_version": version, "correlation_id": "", "causation_id": "",
            "occurred_at": timezone.now().isoformat(), "payload": {"value": value}}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(versions=st.integers(min_value=1, max_value=8), copies=st.lists(st.integers(1, 3), min_size=8, max_size=8),
       seed=st.randoms(use_true_random=False))
def test_shuffled_and_duplicated_delivery_ends_as_in_order_delivery(probe_effects, versions, copies, seed):
    # given every event of an aggregate delivered 1-3 times in a random order
    aggregate = f"agg-{uuid.uuid4()}"
    deliveries = [envelope(aggregate, v) for v in range(1, versions + 1) for _ in range(copies[v - 1])]
    seed.shuffle(deliveries)
    # when the consumer receives them
    for body in deliveries:
        deliver(body)
    # then the effects are exactly those of in-order delivery: each version once, in order
    assert applied_versions(aggregate) == list(range(1, versions + 1))
    assert ConsumerPosition.objects.get(consumer=PROBE_CONSUMER, aggregate_id=aggregate).version == versions
    assert InboxMessage.objects.filter(consumer=PROBE_CONSUMER).count() >= versions
    assert not ParkedMessage.objects.filter(aggregate_id=aggregate).exists()


def test_an_event_ahead_of_a_gap_is_parked_until_the_gap_closes(probe_effects):
    aggregate = f"agg-{uuid.uuid4()}"
    assert deliver(envelope(aggregate, 1)) == [Outcome.APPLIED]
    # when version 3 arrives before version 2
    assert deliver(envelope(aggregate, 3)) == [Outcome.PARKED]
    # then it waits
    assert applied_versions(aggregate) == [1]
    assert ParkedMessage.objects.filter(aggregate_id=aggregate, aggregate_version=3).exists()
    # and version 2 releases it, in order
    assert deliver(envelope(aggregate, 2)) == [Outcome.APPLIED]
    assert applied_versions(aggregate) == [1, 2, 3]
    assert deliver(envelope(aggregate, 3)) == [Outcome.DUPLICATE]


def test_a_handler_error_is_dead_lettered_and_holds_only_its_aggregate(probe_effects):
    poisoned, healthy = f"agg-{uuid.uuid4()}", f"agg-{uuid.uuid4()}"
    # when a handler fails on an event
    assert deliver(envelope(poisoned, 1, "poison pill")) == [Outcome.DEAD]
    # then the error is kept in the consumer's own dead letters
    letter = DeadLetter.objects.get(aggregate_id=poisoned)
    assert letter.consumer == PROBE_CONSUMER and letter.reason == "handler error"
    assert "ProbePoisonError: cannot apply 'poison pill'" in letter.error
    # its aggregate's later versions wait, other aggregates flow
    assert deliver(envelope(poisoned, 2)) == [Outcome.PARKED]
    assert deliver(envelope(healthy, 1)) == [Outcome.APPLIED]
    assert applied_versions(poisoned) == [] and applied_versions(healthy) == [1]


def test_undecodable_and_unknown_messages_become_backbone_dead_letters(probe_effects):
    from sagas.models import DeadLetter as BackboneDeadLetter

    assert deliver({"type": "tournament.ProbeTicked"}) == [Outcome.DEAD]
    unknown = envelope("x", 1) | {"type": "nobody.Knows"}
    assert deliver(unknown) == [Outcome.DEAD]
    reasons = {letter.reason: letter.error for letter in BackboneDeadLetter.objects.all()}
    assert "envelope lacks message_id" in reasons["undecodable"]
    assert "nobody.Knows" in reasons["unknown type"]


def test_two_handlers_for_one_consumer_and_type_are_refused():
    from django.core.exceptions import ImproperlyConfigured

    def another_recorder(envelope):
        """Called at least once."""

    with pytest.raises(ImproperlyConfigured, match="already handles"):
        event_handler(consumer=PROBE_CONSUMER, event_types=[ProbeTicked.TYPE], app_label="leaderboard")(
            another_recorder)


@dataclass(frozen=True)
class ProbeShared(Event):
    TYPE = "tournament.ProbeShared"
    AGGREGATE_TYPE = "tournament.Probe"

    value: str


@event_handler(consumer="probe.shared.scores", event_types=[ProbeShared.TYPE], app_label="scores")
def shared_in_scores(envelope: Envelope) -> None:
    """Fail on poison. Called at least once."""
    if envelope.payload["value"] == "poison":
        raise ValueError("scores refuses poison")


@event_handler(consumer="probe.shared.leaderboard", event_types=[ProbeShared.TYPE], app_label="leaderboard")
def shared_in_leaderboard(envelope: Envelope) -> None:
    """Accept everything. Called at least once."""


@pytest.mark.django_db(transaction=True, databases=["scores", "leaderboard", "sagas"])
def test_each_consumer_of_one_event_type_has_its_own_inbox_transaction_and_dead_letters():
    from scores.models import DeadLetter as ScoresDeadLetter
    from scores.models import InboxMessage as ScoresInbox

    # when one event reaches two consumers in two services, and one of them fails on it
    body = envelope("shared-agg", 1, "poison") | {"type": ProbeShared.TYPE}
    assert deliver(body) == [Outcome.DEAD, Outcome.APPLIED]
    # then the failure is the scores consumer's own dead letter, and the read model's effect committed anyway
    assert ScoresDeadLetter.objects.get().consumer == "probe.shared.scores"
    assert not ScoresInbox.objects.exists()
    assert InboxMessage.objects.get().consumer == "probe.shared.leaderboard"
    # and a redelivery is a no-op for the consumer that applied it, a repeat failure for the other
    assert deliver(body) == [Outcome.DEAD, Outcome.DUPLICATE]
    assert ScoresDeadLetter.objects.get().attempts == 2


def test_an_event_type_string_cannot_be_reused_by_another_class():
    with pytest.raises(TypeError, match="already"):
        type("Impostor", (Event,), {"TYPE": ProbeTicked.TYPE, "AGGREGATE_TYPE": "x.Y"})


def test_a_consumer_in_an_app_without_consumer_tables_is_refused_at_registration():
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="lacks ConsumerPosition, ParkedMessage, DeadLetter"):
        event_handler(consumer="probe.nowhere", event_types=[ProbeTicked.TYPE], app_label="tournament")(
            lambda envelope: None)
