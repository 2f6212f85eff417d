"""Events through real relays, Redis partition queues and a real consumer worker."""
import uuid

import pytest
from celery import current_app

from leaderboard.models import DeadLetter, ParkedMessage
from sagas import relay
from sagas.inbox import DELIVER_TASK, dead_letter_replay
from sagas.messaging_models import DeadLetterStatus, OutboxStatus
from sagas.models import DeadLetter as BackboneDeadLetter
from sagas.partitions import partition_for, partition_queue
from tests.support.event_probe import PROBE_CONSUMER, applied_versions, cure, probe_rows
from tests.support.waiting import wait_until
from tournament.models import OutboxMessage

pytestmark = pytest.mark.django_db(transaction=True, databases=["tournament", "scores", "leaderboard", "sagas"])


def key_on_partition(partition: int, prefix: str) -> str:
    return next(key for n in range(1000) if partition_for(key := f"{prefix}-{n}-{uuid.uuid4().hex[:6]}") == partition)


def test_a_poison_message_is_dead_lettered_with_its_error_and_its_partition_keeps_flowing(
        events_worker, probe_effects):
    poisoned = key_on_partition(1, "poisoned")
    healthy = key_on_partition(1, "healthy")
    # given garbage on the partition queue, then a poison event ahead of healthy events on the same partition
    current_app.send_task(DELIVER_TASK, args=[[{"not": "an envelope"}]], queue=partition_queue(1))
    probe_rows(OutboxMessage, poisoned, [1], value="poison pill")
    probe_rows(OutboxMessage, poisoned, [2])
    probe_rows(OutboxMessage, healthy, [1, 2])
    # when the relay sends them all
    assert relay.relay_outbox(OutboxMessage).sent == 4
    # then the healthy aggregate's events are applied behind the poison
    wait_until(lambda: applied_versions(healthy) == [1, 2], message="healthy events applied")
    # the poison is a dead letter of the consumer, with its error; its successor waits, parked
    letter = wait_until(lambda: DeadLetter.objects.filter(aggregate_id=poisoned).first(), message="dead letter")
    assert (letter.consumer, letter.aggregate_version, letter.status) == (PROBE_CONSUMER, 1, DeadLetterStatus.DEAD)
    assert "cannot apply 'poison pill'" in letter.error
    assert ParkedMessage.objects.filter(aggregate_id=poisoned, aggregate_version=2).exists()
    assert applied_versions(poisoned) == []
    # the garbage is a backbone dead letter
    assert BackboneDeadLetter.objects.filter(reason="undecodable", body={"not": "an envelope"}).exists()
    # when the operator fixes the cause and replays the dead letter, the aggregate catches up in order
    cure("poison pill")
    assert dead_letter_replay(app_label="leaderboard", ids=[letter.id]) == 1
    wait_until(lambda: applied_versions(poisoned) == [1, 2], message="replayed and successor applied")
    assert DeadLetter.objects.get(id=letter.id).status == DeadLetterStatus.REPLAYED


def test_a_gap_past_its_deadline_is_fetched_again_from_the_producer(celery_worker, events_worker, probe_effects):
    aggregate = f"gap-{uuid.uuid4()}"
    rows = probe_rows(OutboxMessage, aggregate, [1, 2, 3])
    # given version 2 counted as sent but lost on the way (the broker lost it)
    OutboxMessage.objects.filter(id=rows[1].id).update(status=OutboxStatus.SENT)
    assert relay.relay_outbox(OutboxMessage).sent == 2
    # then the consumer applies version 1 and parks version 3
    wait_until(lambda: ParkedMessage.objects.filter(aggregate_id=aggregate, aggregate_version=3).exists(),
               message="version 3 parked")
    assert applied_versions(aggregate) == [1]
    # and after the gap deadline (1 s for this worker) it asks the producer, which sends version 2 again
    wait_until(lambda: applied_versions(aggregate) == [1, 2, 3], timeout=30, message="gap closed by re-fetch")
    assert not ParkedMessage.objects.filter(aggregate_id=aggregate).exists()
