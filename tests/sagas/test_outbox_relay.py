"""The transactional outbox and its relay, against real PostgreSQL, Redis and workers."""
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from celery import current_app
from django.db import OperationalError, connections, transaction
from django.test import override_settings

from sagas import relay
from sagas.messaging_models import OutboxStatus
from sagas.outbox import OutsideTransactionError, outbox_requeue, publish
from sagas.partitions import partition_for
from tests.support.event_probe import ProbeTicked, applied_versions, probe_rows, queued_envelopes
from tests.support.waiting import wait_until
from tournament.messages import TournamentCreated
from scores.models import OutboxMessage as ScoresOutboxMessage
from tournament.models import OutboxMessage, Tournament

BASE_DIR = Path(__file__).resolve().parent.parent.parent
pytestmark = pytest.mark.django_db(transaction=True, databases=["tournament", "scores", "leaderboard", "sagas"])


@pytest.fixture
def scratch_queues(broker, settings):
    """A queue prefix of this test's own (nobody consumes it), emptied afterwards; the relay's queue and its
    kick flag live under it too."""
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    settings.OUTBOX_RELAY_QUEUE = f"{prefix}.relay"
    yield prefix
    for key in broker.keys(f"{prefix}.*"):
        broker.delete(key)


def create_tournament(name: str, *, fail: bool = False) -> None:
    with transaction.atomic(using="tournament"):
        tournament = Tournament.objects.create(name=name)
        publish(TournamentCreated(tournament_id=str(tournament.id), name=name, participants=[]),
                outbox=OutboxMessage, aggregate_id=str(tournament.id), aggregate_version=1)
        if fail:
            raise RuntimeError("the business change fails after publishing")


def test_a_business_change_and_its_outbox_row_commit_or_roll_back_together():
    # when the change commits, so does its event
    create_tournament("kept")
    kept = Tournament.objects.get(name="kept")
    assert OutboxMessage.objects.filter(partition_key=str(kept.id), type=TournamentCreated.TYPE).count() == 1
    # when it rolls back after publishing, neither the change nor the event remains
    with pytest.raises(RuntimeError):
        create_tournament("lost", fail=True)
    assert not Tournament.objects.filter(name="lost").exists()
    assert OutboxMessage.objects.count() == 1


def test_publish_outside_the_service_transaction_is_refused():
    with pytest.raises(OutsideTransactionError):
        publish(TournamentCreated(tournament_id="t", name="n", participants=[]), outbox=OutboxMessage,
                aggregate_id="t", aggregate_version=1)
    assert not OutboxMessage.objects.exists()


def test_the_after_commit_kick_delivers_the_event_to_its_consumer(celery_worker, events_worker, probe_effects):
    # given a committed business change that publishes one event
    aggregate = f"kick-{uuid.uuid4()}"
    with transaction.atomic(using="tournament"):
        publish(ProbeTicked(value="hello"), outbox=OutboxMessage, aggregate_id=aggregate, aggregate_version=1)
    # then, with no beat running, the kick alone relays it and the consumer applies it
    wait_until(lambda: applied_versions(aggregate) == [1], timeout=20, message="event applied")
    assert OutboxMessage.objects.get(partition_key=aggregate).status == OutboxStatus.SENT


def test_a_commit_while_a_kick_is_pending_sends_no_kick_and_the_pending_pass_still_relays_it(broker, settings):
    from sagas.outbox import kick_flag_set
    from sagas.tasks import relay_outbox

    settings.OUTBOX_RELAY_QUEUE = f"test-relay-{uuid.uuid4().hex[:8]}"  # nobody consumes it: we count the kicks
    aggregate = f"coalesced-{uuid.uuid4()}"
    # given one commit, whose kick is sent (no relay pass has begun yet)
    with transaction.atomic(using="tournament"):
        publish(ProbeTicked(value="first"), outbox=OutboxMessage, aggregate_id=aggregate, aggregate_version=1)
    assert broker.llen(settings.OUTBOX_RELAY_QUEUE) == 1
    # when more commits follow before that pass begins, they send no kick of their own
    for version in (2, 3):
        with transaction.atomic(using="tournament"):
            publish(ProbeTicked(value="more"), outbox=OutboxMessage, aggregate_id=aggregate, aggregate_version=version)
    assert broker.llen(settings.OUTBOX_RELAY_QUEUE) == 1
    # then the pending kick's pass relays every one of them
    settings.OUTBOX_MAX_WAITING_BATCHES = 0
    assert relay_outbox() >= 3
    assert set(OutboxMessage.objects.filter(partition_key=aggregate).values_list("status", flat=True)) == {
        OutboxStatus.SENT}
    # and the pass cleared the flag: the next commit kicks again
    with current_app.producer_or_acquire() as producer:
        assert kick_flag_set(producer.channel)
    broker.delete(settings.OUTBOX_RELAY_QUEUE)


def test_back_pressure_holds_a_busy_partitions_rows_and_sends_them_later_as_one_batch(broker, scratch_queues):
    publisher = relay.CeleryPublisher(queue_prefix=scratch_queues)
    key = f"busy-{uuid.uuid4()}"
    queue = f"{scratch_queues}.{partition_for(key)}"
    # given one batch waiting in the partition's queue (its consumer is busy)
    probe_rows(OutboxMessage, key, [1])
    assert relay.relay_outbox(OutboxMessage, publisher=publisher, max_waiting=1).sent == 1
    # when more rows arrive, the relay holds them instead of queueing another small batch
    probe_rows(OutboxMessage, key, [2, 3])
    report = relay.relay_outbox(OutboxMessage, publisher=publisher, max_waiting=1)
    assert (report.sent, report.deferred) == (0, 1)
    assert broker.llen(queue) == 1
    assert OutboxMessage.objects.filter(partition_key=key, status=OutboxStatus.PENDING).count() == 2
    # then once the consumer took the waiting batch, they leave together, as one batch, in order
    broker.rpop(queue)
    assert relay.relay_outbox(OutboxMessage, publisher=publisher, max_waiting=1).sent == 2
    assert broker.llen(queue) == 1
    assert [e["aggregate_version"] for e in queued_envelopes(broker, queue)] == [2, 3]


def test_a_free_partition_takes_one_batch_holding_every_outboxs_rows_on_the_same_pass(broker, scratch_queues):
    publisher = relay.CeleryPublisher(queue_prefix=scratch_queues)
    key = f"shared-{uuid.uuid4()}"
    queue = f"{scratch_queues}.{partition_for(key)}"
    # given rows of two services' outboxes bound for the same partition, whose queue is empty
    probe_rows(OutboxMessage, key, [1])
    probe_rows(ScoresOutboxMessage, key, [1, 2])
    # when one relay pass with back-pressure covers both outboxes
    tournament, scores = relay.relay_services(["tournament", "scores"], publisher=publisher, max_waiting=1)
    # then both outboxes' rows left in one message, which the consumer takes in one task (judged outbox by
    # outbox, the first batch made the partition busy, and the service whose commits kick most often starved
    # the others), each outbox's rows in order
    assert broker.llen(queue) == 1
    assert [e["aggregate_version"] for e in queued_envelopes(broker, queue)] == [1, 1, 2]
    assert (tournament.sent, scores.sent) == (1, 2)
    for outbox in (OutboxMessage, ScoresOutboxMessage):
        assert set(outbox.objects.filter(partition_key=key).values_list("status", flat=True)) == {OutboxStatus.SENT}


def rows_in_both_outboxes(label: str, scratch_queues: str) -> tuple[str, str]:
    """Commit a PENDING row in the Match Engine's outbox and one in the Score Engine's, bound for the same
    partition; return their key and that partition's scratch queue."""
    key = f"{label}-{uuid.uuid4()}"
    probe_rows(OutboxMessage, key, [1])
    probe_rows(ScoresOutboxMessage, key, [1])
    return key, f"{scratch_queues}.{partition_for(key)}"


def test_an_outbox_whose_claim_fails_leaves_the_partitions_batch_to_the_others(broker, scratch_queues, monkeypatch):
    publisher = relay.CeleryPublisher(queue_prefix=scratch_queues)
    key, queue = rows_in_both_outboxes("claim-fails", scratch_queues)
    # given the Match Engine's database failing in the middle of its claim, after the rows were marked SENT
    claim = relay._claim

    def failing(alias, outbox, partition, batch_size):
        claimed = claim(alias, outbox, partition, batch_size)
        if outbox is OutboxMessage:
            raise OperationalError("tournament database gone")
        return claimed

    monkeypatch.setattr(relay, "_claim", failing)
    # when a pass covers both outboxes
    tournament, scores = relay.relay_services(["tournament", "scores"], publisher=publisher, max_waiting=1)
    # then the Score Engine's row still leaves; the Match Engine's stays PENDING, its failure reported
    assert [e["aggregate_type"] for e in queued_envelopes(broker, queue)] == [ProbeTicked.AGGREGATE_TYPE]
    assert ScoresOutboxMessage.objects.get(partition_key=key).status == OutboxStatus.SENT
    assert OutboxMessage.objects.get(partition_key=key).status == OutboxStatus.PENDING
    assert tournament.errors == ["OperationalError: tournament database gone"] and not scores.errors


def test_an_outbox_whose_transaction_cannot_begin_leaves_the_partitions_batch_to_the_others(
        broker, scratch_queues, monkeypatch):
    key, queue = rows_in_both_outboxes("begin-fails", scratch_queues)
    # given the Match Engine's database refusing to begin a transaction
    tournament_db = connections["tournament"]
    set_autocommit = tournament_db.set_autocommit

    def refusing(autocommit, **kwargs):
        if not autocommit:
            raise OperationalError("tournament database gone")
        return set_autocommit(autocommit, **kwargs)

    monkeypatch.setattr(tournament_db, "set_autocommit", refusing)
    # when a pass covers both outboxes
    tournament, scores = relay.relay_services(["tournament", "scores"],
                                              publisher=relay.CeleryPublisher(queue_prefix=scratch_queues))
    # then the Score Engine's row leaves; the Match Engine's stays as it was, its failure reported
    assert [e["aggregate_type"] for e in queued_envelopes(broker, queue)] == [ProbeTicked.AGGREGATE_TYPE]
    assert ScoresOutboxMessage.objects.get(partition_key=key).status == OutboxStatus.SENT
    assert OutboxMessage.objects.values_list("status", "attempts").get(partition_key=key) == (OutboxStatus.PENDING, 0)
    assert tournament.errors == ["OperationalError: tournament database gone"] and scores.sent == 1


def test_an_outbox_whose_commit_fails_after_the_publish_is_sent_again_and_the_others_stay_sent(
        broker, scratch_queues, monkeypatch):
    key, queue = rows_in_both_outboxes("commit-fails", scratch_queues)
    # given the Match Engine's database failing at commit
    tournament_db = connections["tournament"]

    def failing_commit():
        raise OperationalError("tournament database gone at commit")

    monkeypatch.setattr(tournament_db, "commit", failing_commit)
    # when a pass publishes both outboxes' rows in one message
    tournament, scores = relay.relay_services(["tournament", "scores"],
                                              publisher=relay.CeleryPublisher(queue_prefix=scratch_queues))
    monkeypatch.undo()
    assert len(queued_envelopes(broker, queue)) == 2
    # then the Score Engine's row is SENT; the Match Engine's is PENDING again, to go on a later pass (its
    # consumer's inbox absorbs the copy), with no failed publish counted against it
    assert (scores.sent, scores.failed, scores.errors) == (1, 0, [])
    assert ScoresOutboxMessage.objects.get(partition_key=key).status == OutboxStatus.SENT
    assert (tournament.sent, tournament.failed) == (0, 0)
    assert tournament.errors == ["OperationalError: tournament database gone at commit"]
    assert OutboxMessage.objects.values_list("status", "attempts").get(partition_key=key) == (OutboxStatus.PENDING, 0)


def test_a_failed_publish_leaves_every_outboxs_rows_of_the_batch_pending(broker, scratch_queues):
    key, _queue = rows_in_both_outboxes("publish-fails", scratch_queues)

    # given a broker that refuses the batch
    class BrokenPublisher(relay.CeleryPublisher):
        def publish(self, partition, envelopes):
            raise ConnectionError("broker down")

    # when a pass covers both outboxes
    tournament, scores = relay.relay_services(["tournament", "scores"],
                                              publisher=BrokenPublisher(queue_prefix=scratch_queues))
    # then neither outbox marked its row SENT, and each counts the failed attempt
    assert (tournament.failed, scores.failed, tournament.sent, scores.sent) == (1, 1, 0, 0)
    for outbox in (OutboxMessage, ScoresOutboxMessage):
        row = outbox.objects.get(partition_key=key)
        assert (row.status, row.attempts, row.last_error) == (OutboxStatus.PENDING, 1, "ConnectionError: broker down")


def test_a_partition_another_relay_holds_is_reported_and_the_relay_task_schedules_another_pass(
        broker, scratch_queues, settings, monkeypatch):
    from sagas import tasks

    key = f"contended-{uuid.uuid4()}"
    probe_rows(OutboxMessage, key, [1])
    # given another relay holding the row's partition (its lock, taken on a connection of its own)
    holder = connections["tournament"].direct_connection()
    try:
        holder.execute("SELECT pg_advisory_lock(%s, %s)", [relay._lock_key(OutboxMessage), partition_for(key)])
        # when a relay passes, it skips the partition and says so
        report = relay.relay_outbox(OutboxMessage, publisher=relay.CeleryPublisher(queue_prefix=scratch_queues))
        assert (report.sent, report.contended) == (0, 1)
        # and the relay task, finding the same, schedules a later pass (a row that committed after the holder's
        # claim must not wait for the beat tick)
        settings.EVENT_QUEUE_PREFIX = scratch_queues
        monkeypatch.setattr(tasks, "_deferred_pass_due", 0.0)
        assert tasks.relay_outbox() == 0
        assert broker.llen(settings.OUTBOX_RELAY_QUEUE) == 1
    finally:
        holder.close()
    # then once the holder is done, that pass sends the row
    assert tasks.relay_outbox() == 1
    assert OutboxMessage.objects.get(partition_key=key).status == OutboxStatus.SENT


def test_finding_pending_partitions_reads_the_index_even_when_statistics_say_most_rows_are_pending(broker):
    from django.test.utils import CaptureQueriesContext

    # given statistics taken during a backlog (most rows PENDING), and the backlog since sent; all in one
    # transaction, so no relay of the session's workers ever sees those rows pending
    connection = connections["tournament"]
    with transaction.atomic(using="tournament"):
        OutboxMessage.objects.bulk_create([
            OutboxMessage(type=ProbeTicked.TYPE, aggregate_type=ProbeTicked.AGGREGATE_TYPE, partition_key=f"b{n}",
                          partition=partition_for(f"b{n}"), aggregate_version=1, occurred_at="2026-01-01T00:00:00Z",
                          payload={"value": "x" * 200}) for n in range(20_000)])
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {OutboxMessage._meta.db_table}")
        OutboxMessage.objects.update(status=OutboxStatus.SENT)
        probe_rows(OutboxMessage, "fresh", [1])
    # when the relay asks which partitions have pending rows
    with CaptureQueriesContext(connection) as queries:
        assert relay._pending_partitions("tournament", OutboxMessage) == [partition_for("fresh")]
    # then its plan probes the pending rows' index rather than reading the whole table on every pass
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + queries.captured_queries[-1]["sql"])
        plan = "\n".join(line for line, in cursor.fetchall())
    assert "Seq Scan" not in plan and "Index Only Scan using tournament_outbox_pending" in plan, plan


def test_a_full_batch_the_order_guard_holds_entirely_does_not_start_another_pass(broker, scratch_queues):
    from django.test.utils import CaptureQueriesContext

    # given a partition whose oldest pending row waits for a predecessor that has not committed (a gap)
    probe_rows(OutboxMessage, "waiting", [2])
    # when a relay claims batches of one row
    with CaptureQueriesContext(connections["tournament"]) as queries:
        report = relay.relay_outbox(OutboxMessage, publisher=relay.CeleryPublisher(queue_prefix=scratch_queues),
                                    batch_size=1)
    # then it holds the row and stops, instead of claiming and releasing it again until the hold ends
    assert (report.sent, report.held, report.full) == (0, 1, 0)
    assert sum("pg_try_advisory_xact_lock" in query["sql"] for query in queries.captured_queries) == 1


def test_an_outbox_whose_database_fails_is_left_to_the_next_pass_and_the_others_still_go(
        broker, scratch_queues, monkeypatch):
    publisher = relay.CeleryPublisher(queue_prefix=scratch_queues)
    key = f"isolated-{uuid.uuid4()}"
    probe_rows(OutboxMessage, key, [1])
    probe_rows(ScoresOutboxMessage, key, [1])
    # given the Match Engine's database failing under the relay
    pending_partitions = relay._pending_partitions

    def failing(alias, outbox):
        if outbox is OutboxMessage:
            raise OperationalError("tournament database unreachable")
        return pending_partitions(alias, outbox)

    monkeypatch.setattr(relay, "_pending_partitions", failing)
    # when a pass covers both outboxes
    tournament, scores = relay.relay_services(["tournament", "scores"], publisher=publisher, max_waiting=1)
    # then the Score Engine's rows still leave, and the failure is reported for the Match Engine alone
    assert ScoresOutboxMessage.objects.get(partition_key=key).status == OutboxStatus.SENT
    assert OutboxMessage.objects.get(partition_key=key).status == OutboxStatus.PENDING
    assert tournament.errors == ["OperationalError: tournament database unreachable"] and not scores.errors


def test_a_crash_between_publishing_and_marking_sent_republishes_and_the_inbox_absorbs_it(
        events_worker, probe_effects):
    aggregate = f"crash-{uuid.uuid4()}"
    probe_rows(OutboxMessage, aggregate, [1, 2])

    # given a relay that dies after the broker took the batch but before its transaction (rows SENT) commits
    class DyingPublisher(relay.CeleryPublisher):
        def publish(self, partition, envelopes):
            super().publish(partition, envelopes)
            raise SystemError("relay process died")

    report = relay.relay_outbox(OutboxMessage, publisher=DyingPublisher())
    assert report.failed == 2
    assert set(OutboxMessage.objects.values_list("status", flat=True)) == {OutboxStatus.PENDING}
    wait_until(lambda: applied_versions(aggregate) == [1, 2], message="first copy applied")
    # when the next relay pass sends the rows again
    assert relay.relay_outbox(OutboxMessage).sent == 2
    # then the second copy reaches the consumer and changes nothing
    wait_until(lambda: "'duplicate': 2" in events_worker.log(), message="second copy received as a duplicate")
    assert applied_versions(aggregate) == [1, 2]
    assert set(OutboxMessage.objects.values_list("status", flat=True)) == {OutboxStatus.SENT}


def test_three_relays_send_ten_thousand_rows_exactly_once_and_each_key_in_version_order(broker, scratch_queues):
    # given 10,000 pending rows: 500 aggregates with 20 versions each, interleaved
    for version in range(1, 21):
        OutboxMessage.objects.bulk_create([
            OutboxMessage(type=ProbeTicked.TYPE, aggregate_type=ProbeTicked.AGGREGATE_TYPE, partition_key=f"k{key}",
                          partition=partition_for(f"k{key}"), aggregate_version=version,
                          occurred_at="2026-01-01T00:00:00Z", payload={"value": "x"})
            for key in range(500)])
    # when three relay processes drain the outbox at once
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "EVENT_QUEUE_PREFIX": scratch_queues}
    command = [sys.executable, "manage.py", "drain_outbox", "--service", "tournament", "--batch-size", "250"]
    relays = [subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [process.communicate(timeout=120)[0] for process in relays]
    assert all(process.returncode == 0 for process in relays), outputs
    print(*outputs, sep="")
    # then every row was published exactly once
    envelopes = [e for n in range(4) for e in queued_envelopes(broker, f"{scratch_queues}.{n}")]
    assert len(envelopes) == 10_000
    counts = Counter(e["message_id"] for e in envelopes)
    assert max(counts.values()) == 1
    assert set(counts) == {str(m) for m in OutboxMessage.objects.values_list("message_id", flat=True)}
    assert OutboxMessage.objects.filter(status=OutboxStatus.SENT).count() == 10_000
    # and each key's events are queued in version order, on the key's one partition
    per_key = defaultdict(list)
    for n in range(4):
        for e in queued_envelopes(broker, f"{scratch_queues}.{n}"):
            assert partition_for(e["aggregate_id"]) == n
            per_key[e["aggregate_id"]].append(e["aggregate_version"])
    assert all(versions == list(range(1, 21)) for versions in per_key.values())
    assert sum(int(line.split("sent ")[1].split()[0]) for line in outputs for line in line.splitlines()) == 10_000


def test_rows_committed_out_of_id_order_are_sent_later_and_never_ahead_of_their_predecessor(broker, scratch_queues):
    key, other = "late-key", "other-key"
    publisher = relay.CeleryPublisher(queue_prefix=scratch_queues)
    # given a long transaction that holds version 1 of `key` (the lower id) uncommitted
    inserted, release = threading.Event(), threading.Event()

    def long_transaction() -> None:
        try:
            with transaction.atomic(using="tournament"):
                probe_rows(OutboxMessage, key, [1], value="slow")
                inserted.set()
                release.wait(timeout=30)
        finally:
            connections.close_all()

    thread = threading.Thread(target=long_transaction)
    thread.start()
    assert inserted.wait(timeout=10)
    # and later, committed rows: version 2 of the same key and another key's first event
    probe_rows(OutboxMessage, key, [2])
    probe_rows(OutboxMessage, other, [1])
    # when the relay runs, it sends the other key but holds version 2 behind the invisible version 1
    assert relay.relay_outbox(OutboxMessage, publisher=publisher).sent == 1
    assert OutboxMessage.objects.get(partition_key=other).status == OutboxStatus.SENT
    assert OutboxMessage.objects.get(partition_key=key, aggregate_version=2).status == OutboxStatus.PENDING
    # when the long transaction commits, the next pass sends both, version 1 first
    release.set()
    thread.join(timeout=10)
    assert relay.relay_outbox(OutboxMessage, publisher=publisher).sent == 2
    queued = [e for e in queued_envelopes(broker, f"{scratch_queues}.{partition_for(key)}")
              if e["aggregate_id"] == key]
    assert [e["aggregate_version"] for e in queued] == [1, 2]
    assert queued[0]["payload"] == {"value": "slow"}


def test_a_held_row_goes_anyway_once_its_hold_expires(broker, scratch_queues):
    # given version 2 of a key whose version 1 never appears (a producer's gap)
    probe_rows(OutboxMessage, "gappy", [2])
    publisher = relay.CeleryPublisher(queue_prefix=scratch_queues)
    assert relay.relay_outbox(OutboxMessage, publisher=publisher).sent == 0
    # when the hold has expired, it is sent: the consumer's version check takes over
    with override_settings(OUTBOX_ORDER_HOLD_SECONDS=0):
        assert relay.relay_outbox(OutboxMessage, publisher=publisher).sent == 1


class BrokenPublisher:
    def publish(self, partition, envelopes):
        raise ConnectionError("broker unreachable")


def test_a_row_that_keeps_failing_to_publish_becomes_dead_and_can_be_requeued(broker, scratch_queues):
    probe_rows(OutboxMessage, "unlucky", [1])
    with override_settings(OUTBOX_MAX_ATTEMPTS=3):
        for _ in range(3):
            relay.relay_outbox(OutboxMessage, publisher=BrokenPublisher())
    row = OutboxMessage.objects.get()
    assert (row.status, row.attempts) == (OutboxStatus.DEAD, 3)
    assert "broker unreachable" in row.last_error
    figures = {figure["service"]: figure for figure in relay.outbox_figures()}
    assert (figures["tournament"]["dead"], figures["tournament"]["pending"]) == (1, 0)
    # when an operator requeues it, the next pass sends it
    assert outbox_requeue(outbox=OutboxMessage, ids=[row.id]) == 1
    assert relay.relay_outbox(OutboxMessage, publisher=relay.CeleryPublisher(queue_prefix=scratch_queues)).sent == 1
    assert OutboxMessage.objects.get().status == OutboxStatus.SENT


def test_purge_deletes_old_sent_rows_but_keeps_each_aggregates_newest(broker, scratch_queues):
    from datetime import timedelta

    probe_rows(OutboxMessage, "old", [1, 2, 3])
    assert relay.relay_outbox(OutboxMessage, publisher=relay.CeleryPublisher(queue_prefix=scratch_queues)).sent == 3
    assert relay.purge_sent(older_than=timedelta(0))["tournament"] == 2
    assert list(OutboxMessage.objects.values_list("aggregate_version", flat=True)) == [3]


@pytest.mark.parametrize("arguments, error", [
    (["--batch-size", "0"], "must be at least 1"),
    (["--batch-size", "many"], "is not a whole number"),
    (["--service", "nosuch"], "invalid choice: 'nosuch'"),
])
def test_drain_outbox_with_bad_arguments_fails_clearly_with_exit_code_2(arguments, error):
    probe_rows(OutboxMessage, "untouched", [1])
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    result = subprocess.run([sys.executable, "manage.py", "drain_outbox", *arguments], cwd=BASE_DIR, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert error in result.stderr
    assert OutboxMessage.objects.get().status == OutboxStatus.PENDING


def test_a_listening_relay_wakes_on_the_commits_notify(scratch_queues):
    # given a long-running relay that otherwise passes only every 30 s
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "EVENT_QUEUE_PREFIX": scratch_queues}
    listener = subprocess.Popen([sys.executable, "manage.py", "drain_outbox", "--service", "tournament", "--loop",
                                 "--listen", "--interval", "30"], cwd=BASE_DIR, env=env, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        probe_rows(OutboxMessage, "listened", [1])  # sent by its first pass, which starts after LISTEN
        wait_until(lambda: OutboxMessage.objects.get().status == OutboxStatus.SENT, timeout=30, message="first pass")
        # when a transaction publishes with OUTBOX_WAKEUP=notify
        with override_settings(OUTBOX_WAKEUP="notify"), transaction.atomic(using="tournament"):
            publish(ProbeTicked(value="wake"), outbox=OutboxMessage, aggregate_id="listened", aggregate_version=2)
        # then its NOTIFY wakes the relay long before the next 30 s pass
        wait_until(lambda: OutboxMessage.objects.get(aggregate_version=2).status == OutboxStatus.SENT, timeout=10,
                   message="sent on NOTIFY")
    finally:
        os.killpg(listener.pid, signal.SIGTERM)
        listener.wait(timeout=10)


def test_consume_events_with_a_partition_out_of_range_fails_clearly_with_exit_code_2():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    result = subprocess.run([sys.executable, "manage.py", "consume_events", "--partitions", "0,9"], cwd=BASE_DIR,
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "partitions [9] outside 0..3" in result.stderr


def test_consume_events_with_no_process_fails_clearly_with_exit_code_2():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    result = subprocess.run([sys.executable, "manage.py", "consume_events", "--processes", "0"], cwd=BASE_DIR,
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "--processes must be at least 1" in result.stderr


def test_consume_events_splits_the_partitions_and_stops_every_worker_when_one_dies(broker):
    import psutil

    from config.celery import app

    # given consume_events with two workers (queues of their own, so the session's consumers are undisturbed)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "EVENT_QUEUE_PREFIX": "split"}
    command = subprocess.Popen([sys.executable, "manage.py", "consume_events", "--processes", "2",
                                "--loglevel", "WARNING"], cwd=BASE_DIR, env=env, start_new_session=True,
                               stdout=subprocess.PIPE, text=True)
    try:
        workers = wait_until(lambda: [p for p in psutil.Process(command.pid).children()
                                      if "worker" in p.cmdline()] or None, message="workers started")
        wait_until(lambda: len(app.control.ping(timeout=0.5, destination=[
            f"events-{suffix}@{os.uname().nodename}" for suffix in ("0-2", "1-3")])) == 2, timeout=60,
            message="both workers answer")
        # each partition has exactly one owner
        assert sorted(w.cmdline()[w.cmdline().index("-Q") + 1] for w in workers) == ["split.0,split.2",
                                                                                    "split.1,split.3"]
        # when one worker dies
        workers[0].kill()
        # then the command stops the other and exits, so its process manager restarts the whole set
        assert command.wait(timeout=60) != 0
        assert not workers[1].is_running() or workers[1].status() == psutil.STATUS_ZOMBIE
    finally:
        if command.poll() is None:
            os.killpg(command.pid, signal.SIGKILL)
        for worker in psutil.Process().children(recursive=True):
            if "split.0,split.2" in worker.cmdline() or "split.1,split.3" in worker.cmdline():
                worker.kill()


def test_the_beat_tick_alone_relays_rows_nobody_kicked(celery_worker, tmp_path):
    # given a pending row whose kick was lost
    probe_rows(OutboxMessage, "unkicked", [1])
    # when beat runs its schedule (the real `celery beat`, database scheduler behind its lock)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    beat = subprocess.Popen([sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel=INFO",
                             "-s", str(tmp_path / "schedule")], cwd=BASE_DIR, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # then the every-second tick sends it
        wait_until(lambda: OutboxMessage.objects.get().status == OutboxStatus.SENT, timeout=30,
                   message="row sent by the beat tick")
    finally:
        os.killpg(beat.pid, signal.SIGTERM)
        beat.wait(timeout=15)
