"""Completing a tournament while results arrive: the row lock lets no result commit after the completion."""
import threading

import pytest
from django.db import connections, transaction

from tests.factories import tournament_given
from tests.support.waiting import wait_until
from tournament.models import Match, Tournament, TournamentStatus
from tournament.services import TournamentNotActive, match_record, tournament_complete

DATABASES = ["tournament", "scores"]


def waiting_on_a_lock() -> bool:
    with connections["tournament"].cursor() as cursor:
        # The activity view is read once per transaction unless the snapshot is cleared.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                       " AND wait_event_type = 'Lock'")
        return cursor.fetchone()[0] > 0


def in_thread(target, outcome: dict) -> threading.Thread:
    def run() -> None:
        try:
            outcome["value"] = target()
        except Exception as exc:  # the outcome is asserted by the test
            outcome["error"] = exc
        finally:
            connections.close_all()
    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True, databases=DATABASES)
def test_a_result_arriving_during_completion_waits_then_is_refused():
    tournament_id = tournament_given(players=["ann", "bob"])
    outcome: dict = {}
    with transaction.atomic(using="tournament"):
        # given a completion in flight: its FOR UPDATE lock held, status changed, not yet committed
        Tournament.objects.select_for_update().get(id=tournament_id)
        Tournament.objects.filter(id=tournament_id).update(status=TournamentStatus.COMPLETED)
        # when a result arrives meanwhile
        thread = in_thread(lambda: match_record(tournament_id=tournament_id, player_a="ann", player_b="bob",
                                                score_a=1, score_b=0), outcome)
        wait_until(waiting_on_a_lock, timeout=10, message="the result waiting on the tournament row")
    thread.join(timeout=10)
    # then, once the completion commits, the result re-reads the row and is refused
    assert isinstance(outcome.get("error"), TournamentNotActive), outcome
    assert not Match.objects.filter(tournament_id=tournament_id).exists()


@pytest.mark.django_db(transaction=True, databases=DATABASES)
def test_completion_waits_for_a_result_in_flight_which_counts():
    tournament_id = tournament_given(players=["ann", "bob"])
    outcome: dict = {}
    with transaction.atomic(using="tournament"):
        # given a result in flight: it holds the shared lock match_record takes and has written its match
        with connections["tournament"].cursor() as cursor:
            cursor.execute("SELECT 1 FROM tournament_tournament WHERE id = %s FOR SHARE", [tournament_id])
        Match.objects.create(tournament_id=tournament_id, player_a="ann", player_b="bob", score_a=1, score_b=0)
        # when the tournament is completed meanwhile
        thread = in_thread(lambda: tournament_complete(tournament_id=tournament_id), outcome)
        wait_until(waiting_on_a_lock, timeout=10, message="the completion waiting on the tournament row")
        assert "value" not in outcome
    thread.join(timeout=10)
    # then it completes after the result committed
    assert outcome["value"].status == TournamentStatus.COMPLETED, outcome
    assert Match.objects.filter(tournament_id=tournament_id).count() == 1
