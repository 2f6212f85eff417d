"""The create-tournament saga on real workers: completes, compensates, survives retries and duplicates."""
import pytest

from sagas.orchestrator import step_message_id
from scores.ledger import LedgerStatus, ledger_load
from scores.models import InboxMessage as ScoresInbox
from scores.models import LedgerEvent
from tests.support.sagas import SAGA_DATABASES
from tests.support.waiting import wait_until
from tournament.models import OutboxMessage, Tournament

pytestmark = pytest.mark.django_db(transaction=True, databases=SAGA_DATABASES)

A, C = "ACTION", "COMPENSATION"


def ledger_states(tournament_id, players) -> list[str]:
    return [ledger_load(tournament_id=str(tournament_id), player_id=p).status for p in players]


def test_a_saga_with_eligible_players_activates_the_tournament_and_opens_every_ledger(sagas):
    players = sagas.players("ann", "bob", "cid")
    # when
    run = sagas.start_tournament(players)
    # then the tournament answers at once, PENDING, and ends ACTIVE with an open ledger per player
    assert Tournament.objects.using("tournament").get(id=run.tournament_id).status in ("PENDING", "ACTIVE")
    saga = sagas.wait_terminal(run.saga_id)
    assert saga.state == "COMPLETED" and saga.current_step == 2
    assert sagas.timeline(run.saga_id) == [("create_pending", A, "SUCCEEDED"), ("open_ledgers", A, "SUCCEEDED"),
                                           ("activate", A, "SUCCEEDED")]
    tournament = Tournament.objects.using("tournament").get(id=run.tournament_id)
    assert (tournament.status, tournament.version, tournament.saga_id) == ("ACTIVE", 2, saga.id)
    assert ledger_states(run.tournament_id, players) == [LedgerStatus.OPEN] * 3
    # and each change of the tournament published exactly one event carrying its version
    assert list(OutboxMessage.objects.using("tournament").filter(partition_key=str(run.tournament_id))
                .values_list("type", "aggregate_version")) == [
        ("tournament.TournamentCreated", 1), ("tournament.TournamentActivated", 2)]


@pytest.mark.parametrize("problem", ["suspended", "unknown"])
def test_an_ineligible_player_cancels_the_tournament_naming_the_player_and_leaves_no_open_ledger(sagas, problem):
    ann, bob = sagas.players("ann", "bob", suspended=("bob",) if problem == "suspended" else ())
    if problem == "unknown":
        bob = "nobody-" + ann
    # when
    run = sagas.start_tournament([ann, bob])
    # then
    saga = sagas.wait_terminal(run.saga_id)
    assert saga.state == "COMPENSATED"
    assert sagas.timeline(run.saga_id) == [("create_pending", A, "SUCCEEDED"), ("open_ledgers", A, "FAILED"),
                                           ("open_ledgers", C, "SUCCEEDED"), ("create_pending", C, "SUCCEEDED")]
    tournament = Tournament.objects.using("tournament").get(id=run.tournament_id)
    assert tournament.status == "CANCELLED" and bob in tournament.cancel_reason
    assert problem in tournament.cancel_reason
    assert not LedgerEvent.objects.using("scores").filter(tournament_id=run.tournament_id).exists()
    assert list(OutboxMessage.objects.using("tournament").filter(partition_key=str(run.tournament_id))
                .values_list("type", "aggregate_version")) == [
        ("tournament.TournamentCreated", 1), ("tournament.TournamentCancelled", 2)]


def test_a_transient_failure_of_step_two_is_retried_and_the_saga_completes(sagas):
    players = sagas.players("ann", "bob")
    sagas.fail("open_ledgers", fault="transient", times=2)
    # when
    run = sagas.start_tournament(players)
    # then
    assert sagas.wait_terminal(run.saga_id).state == "COMPLETED"
    assert sagas.timeline(run.saga_id) == [
        ("create_pending", A, "SUCCEEDED"), ("open_ledgers", A, "FAILED"), ("open_ledgers", A, "FAILED"),
        ("open_ledgers", A, "SUCCEEDED"), ("activate", A, "SUCCEEDED")]
    assert [t["fault"] for t in sagas.trips()] == ["transient", "transient"]
    assert ledger_states(run.tournament_id, players) == [LedgerStatus.OPEN] * 2


def test_a_transient_failure_that_never_clears_compensates_after_the_retries(sagas, settings):
    players = sagas.players("ann", "bob")
    sagas.fail("open_ledgers", fault="transient", times=1000)
    # when
    run = sagas.start_tournament(players)
    # then: the first attempt and every retry failed, then the saga compensated
    saga = sagas.wait_terminal(run.saga_id)
    assert saga.state == "COMPENSATED" and "OperationalError" in saga.error
    assert sagas.timeline(run.saga_id) == [
        ("create_pending", A, "SUCCEEDED"), *[("open_ledgers", A, "FAILED")] * (settings.SAGAS_STEP_MAX_RETRIES + 1),
        ("open_ledgers", C, "SUCCEEDED"), ("create_pending", C, "SUCCEEDED")]
    assert Tournament.objects.using("tournament").get(id=run.tournament_id).status == "CANCELLED"
    assert not LedgerEvent.objects.using("scores").filter(tournament_id=run.tournament_id).exists()


def test_a_refused_activation_undoes_the_ledgers_then_the_tournament(sagas):
    players = sagas.players("ann", "bob")
    sagas.fail("activate", fault="refuse")
    # when
    run = sagas.start_tournament(players)
    # then: compensations ran in reverse order of the completed steps
    assert sagas.wait_terminal(run.saga_id).state == "COMPENSATED"
    assert sagas.effects(run.saga_id) == [("create_pending", A), ("open_ledgers", A),
                                          ("open_ledgers", C), ("create_pending", C)]
    assert ledger_states(run.tournament_id, players) == [LedgerStatus.CLOSED] * 2
    assert Tournament.objects.using("tournament").get(id=run.tournament_id).status == "CANCELLED"


def test_a_step_message_delivered_again_after_the_saga_finished_changes_nothing(sagas):
    players = sagas.players("ann", "bob")
    run = sagas.start_tournament(players)
    assert sagas.wait_terminal(run.saga_id).state == "COMPLETED"
    events_before = LedgerEvent.objects.using("scores").filter(tournament_id=run.tournament_id).count()
    # when step 2's and step 1's messages arrive again
    sagas.redeliver(run.saga_id, "open_ledgers")
    sagas.redeliver(run.saga_id, "create_pending")
    # then both are consumed, recorded as ignored, and change nothing
    wait_until(lambda: sorted(sagas.timeline(run.saga_id)[3:]) == [("create_pending", A, "SKIPPED"),
                                                                   ("open_ledgers", A, "SKIPPED")],
               message="both duplicates consumed (on two queues, in either order)")
    assert LedgerEvent.objects.using("scores").filter(tournament_id=run.tournament_id).count() == events_before
    assert Tournament.objects.using("tournament").get(id=run.tournament_id).version == 2


def test_a_step_message_delivered_twice_while_it_runs_applies_its_effect_once(sagas):
    players = sagas.players("ann", "bob")
    sagas.fail("open_ledgers", fault="hang", seconds=1.0)
    run = sagas.start_tournament(players)
    wait_until(lambda: sagas.trips(), message="step 2 running")
    # when the same step 2 message is delivered again while the first is still running
    sagas.redeliver(run.saga_id, "open_ledgers")
    # then the effect happens once, one delivery moves the saga on, the other is skipped
    assert sagas.wait_terminal(run.saga_id).state == "COMPLETED"
    wait_until(lambda: sorted(t for t in sagas.timeline(run.saga_id) if t[0] == "open_ledgers") == [
        ("open_ledgers", A, "SKIPPED"), ("open_ledgers", A, "SUCCEEDED")], message="both deliveries finished")
    assert sagas.effects(run.saga_id) == [("create_pending", A), ("open_ledgers", A), ("activate", A)]
    assert LedgerEvent.objects.using("scores").filter(tournament_id=run.tournament_id).count() == 2
    assert ScoresInbox.objects.using("scores").filter(
        message_id=step_message_id(run.saga_id, 1, A)).count() == 1
