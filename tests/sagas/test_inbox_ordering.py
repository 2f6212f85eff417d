"""The inbox applies each event once and in version order, whatever the broker does."""
import logging
import threading
import uuid
from dataclasses import dataclass

import pytest
from django.test import override_settings
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leaderboard.models import ConsumerPosition, DeadLetter, InboxMessage, ParkedMessage
from sagas.inbox import Outcome, deliver, deliver_batch, event_handler
from sagas.messages import Envelope, Event
from tests.support.event_probe import PROBE_CONSUMER, ProbeTicked, applied_versions, cure

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


# BATCHES: one transaction per (consumer, batch), a savepoint per event ----------------------------------------------

@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(versions=st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=3),
       batch_size=st.integers(min_value=1, max_value=6), seed=st.randoms(use_true_random=False))
def test_shuffled_duplicated_batches_end_as_in_order_delivery(probe_effects, versions, batch_size, seed):
    # given several aggregates' events, some twice, shuffled and cut into batches
    aggregates = [f"agg-{uuid.uuid4()}" for _ in versions]
    deliveries = [envelope(a, v) for a, count in zip(aggregates, versions, strict=True) for v in range(1, count + 1)]
    deliveries += [seed.choice(deliveries) for _ in range(len(deliveries) // 2)]
    seed.shuffle(deliveries)
    # when each batch is delivered as one message
    for start in range(0, len(deliveries), batch_size):
        deliver_batch(deliveries[start:start + batch_size])
    # then every aggregate has each version applied once, in order, and nothing is left parked
    for aggregate, count in zip(aggregates, versions, strict=True):
        assert applied_versions(aggregate) == list(range(1, count + 1))
        assert ConsumerPosition.objects.get(consumer=PROBE_CONSUMER, aggregate_id=aggregate).version == count
    assert not ParkedMessage.objects.filter(aggregate_id__in=aggregates).exists()


def test_poison_in_the_middle_of_a_batch_is_dead_lettered_alone_and_holds_its_aggregate(probe_effects):
    poisoned, healthy = f"agg-{uuid.uuid4()}", f"agg-{uuid.uuid4()}"
    batch = [envelope(healthy, 1), envelope(poisoned, 1), envelope(poisoned, 2, "poison pill"),
             envelope(healthy, 2), envelope(poisoned, 3), envelope(healthy, 3)]
    # when one batch carries a poison event between healthy ones
    counts = deliver_batch(batch)
    # then the others committed, in order, and the poison is the consumer's dead letter
    assert counts == {"applied": 4, "dead": 1, "parked": 1}
    assert applied_versions(healthy) == [1, 2, 3] and applied_versions(poisoned) == [1]
    letter = DeadLetter.objects.get(aggregate_id=poisoned)
    assert (letter.aggregate_version, letter.reason) == (2, "handler error")
    assert "cannot apply 'poison pill'" in letter.error
    # its aggregate's successor waits behind it, with no inbox row of the poison or the parked event
    assert list(ParkedMessage.objects.filter(aggregate_id=poisoned).values_list("aggregate_version", flat=True)) == [3]
    assert ConsumerPosition.objects.get(consumer=PROBE_CONSUMER, aggregate_id=poisoned).version == 1
    assert set(InboxMessage.objects.filter(consumer=PROBE_CONSUMER).values_list("message_id", flat=True)) == {
        uuid.UUID(body["message_id"]) for body in batch if body["payload"]["value"] == "tick"} - {
        uuid.UUID(batch[4]["message_id"])}
    # and a redelivery of the whole batch applies nothing twice
    assert deliver_batch(batch) == {"duplicate": 4, "dead": 1, "parked": 1}
    assert applied_versions(healthy) == [1, 2, 3] and applied_versions(poisoned) == [1]
    # once cured, the replayed poison releases its successor
    cure("poison pill")
    assert deliver_batch([batch[2]]) == {"applied": 1}
    assert applied_versions(poisoned) == [1, 2, 3]


@override_settings(INBOX_BATCH_LOCK_TIMEOUT_MS=100)
def test_a_batch_that_meets_another_process_lock_is_applied_event_by_event(probe_effects, caplog):
    from django.db import connections

    blocked, free = f"agg-{uuid.uuid4()}", f"agg-{uuid.uuid4()}"
    deliver(envelope(blocked, 1))
    # given another connection holding the lock of one aggregate's position for longer than the batch waits
    holder = connections["leaderboard"].direct_connection(autocommit=False)
    holder.execute(f"SELECT 1 FROM {ConsumerPosition._meta.db_table} WHERE aggregate_id = %s FOR UPDATE", [blocked])
    release = threading.Timer(0.5, holder.commit)
    release.start()
    try:
        # when a batch touching it arrives
        with caplog.at_level(logging.INFO, logger="sagas.inbox"):
            counts = deliver_batch([envelope(free, 1), envelope(blocked, 2), envelope(free, 2)])
    finally:
        release.join()
        holder.close()
    # then the batch gave up its transaction and applied each event on its own, once the lock was released
    assert "met a lock conflict (LockNotAvailable)" in caplog.text
    assert counts == {"applied": 3}
    assert applied_versions(blocked) == [1, 2] and applied_versions(free) == [1, 2]
