"""The Score Engine consuming match results: win 3, draw 1, loss 0; corrections; duplicates and reordering."""
import threading
import uuid

import pytest
from django.db import connections
from django.utils import timezone

from sagas.inbox import deliver_batch
from sagas.messages import Envelope
from scores.handlers import MATCH_RESULTS_CONSUMER
from scores.ledger import ledger_events, ledger_load
from scores.models import DeadLetter
from scores.services import LedgerNotOpen, ledger_score_matches
from tests.factories import tournament_given

DATABASES = ["tournament", "scores"]


def match_event(tournament_id: str, match_id: str, version: int, score_a: int, score_b: int,
                player_a: str = "ann", player_b: str = "bob") -> Envelope:
    kind = "MatchRecorded" if version == 1 else "MatchCorrected"
    return Envelope(message_id=str(uuid.uuid4()), type=f"tournament.{kind}", schema_version=1,
                    aggregate_type="tournament.Match", aggregate_id=match_id, aggregate_version=version,
                    correlation_id="", causation_id="", occurred_at=timezone.now().isoformat(),
                    payload={"tournament_id": tournament_id, "match_id": match_id, "player_a": player_a,
                             "player_b": player_b, "score_a": score_a, "score_b": score_b})


def points(tournament_id: str, *players: str) -> dict[str, int]:
    return {player: ledger_load(tournament_id=tournament_id, player_id=player).points for player in players}


@pytest.mark.django_db(databases=DATABASES)
def test_a_win_gives_three_points_a_draw_one_and_a_loss_none():
    tournament_id = tournament_given(players=["ann", "bob", "cat"])

    ledger_score_matches(envelopes=[match_event(tournament_id, str(uuid.uuid4()), 1, 2, 0)])
    ledger_score_matches(envelopes=[match_event(tournament_id, str(uuid.uuid4()), 1, 1, 1, player_b="cat")])

    assert points(tournament_id, "ann", "bob", "cat") == {"ann": 4, "bob": 0, "cat": 1}
    reasons = [event.payload["reason"] for event in ledger_events(tournament_id=tournament_id, player_id="ann")[1:]]
    assert reasons == ["win", "draw"]


@pytest.mark.django_db(databases=DATABASES)
def test_a_correction_revokes_the_old_points_and_awards_the_new():
    tournament_id, match_id = tournament_given(players=["ann", "bob"]), str(uuid.uuid4())
    ledger_score_matches(envelopes=[match_event(tournament_id, match_id, 1, 2, 0)])

    ledger_score_matches(envelopes=[match_event(tournament_id, match_id, 2, 0, 2)])

    assert points(tournament_id, "ann", "bob") == {"ann": 0, "bob": 3}
    ann = [(event.type, event.payload["points"]) for event in ledger_events(tournament_id=tournament_id,
                                                                             player_id="ann")[1:]]
    assert ann == [("scores.PointsAwarded", 3), ("scores.PointsRevoked", 3), ("scores.PointsAwarded", 0)]


@pytest.mark.django_db(databases=DATABASES)
def test_a_repeated_or_older_version_of_a_match_changes_nothing():
    tournament_id, match_id = tournament_given(players=["ann", "bob"]), str(uuid.uuid4())
    recorded, corrected = match_event(tournament_id, match_id, 1, 2, 0), match_event(tournament_id, match_id, 2, 1, 1)

    applied = [ledger_score_matches(envelopes=[envelope]) for envelope in (corrected, recorded, corrected, recorded)]

    assert applied == [1, 0, 0, 0]
    assert points(tournament_id, "ann", "bob") == {"ann": 1, "bob": 1}
    assert ledger_load(tournament_id=tournament_id, player_id="ann").version == 2


@pytest.mark.django_db(databases=DATABASES)
def test_points_for_a_player_without_an_open_ledger_are_refused_and_nothing_is_written():
    tournament_id = tournament_given(players=["ann", "bob"])

    with pytest.raises(LedgerNotOpen):
        ledger_score_matches(envelopes=[match_event(tournament_id, str(uuid.uuid4()), 1, 2, 0, player_b="zed")])

    assert ledger_load(tournament_id=tournament_id, player_id="ann").version == 1


@pytest.mark.django_db(transaction=True, databases=DATABASES)
def test_concurrent_results_of_one_player_conflict_on_the_stream_version_and_retry_until_all_count():
    opponents = [f"p{n}" for n in range(6)]
    tournament_id = tournament_given(players=["ann", *opponents])
    start = threading.Barrier(len(opponents))
    errors = []

    def score(opponent: str) -> None:
        start.wait()
        try:
            ledger_score_matches(envelopes=[match_event(tournament_id, str(uuid.uuid4()), 1, 1, 0, player_b=opponent)])
        except Exception as exc:  # reported below: a lost result must fail the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=score, args=(opponent,)) for opponent in opponents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    ann = ledger_load(tournament_id=tournament_id, player_id="ann")
    assert (ann.points, ann.version) == (3 * len(opponents), 1 + len(opponents))
    assert [event.version for event in ledger_events(tournament_id=tournament_id, player_id="ann")] == list(
        range(1, len(opponents) + 2))


@pytest.mark.django_db(databases=DATABASES)
def test_a_batch_with_an_unscorable_result_dead_letters_it_alone_and_scores_the_others():
    tournament_id = tournament_given(players=["ann", "bob"])
    good = [match_event(tournament_id, str(uuid.uuid4()), 1, 2, 0) for _ in range(2)]
    stranger = match_event(tournament_id, str(uuid.uuid4()), 1, 1, 0, player_b="zed")  # zed has no ledger

    # when the consumer gets the three in one batch, the stranger in the middle
    counts = deliver_batch([good[0].to_dict(), stranger.to_dict(), good[1].to_dict()],
                           only_consumer=MATCH_RESULTS_CONSUMER)

    # then the batch handler's failure made the framework apply them one by one: two scored, one dead
    assert counts == {"applied": 2, "dead": 1}
    assert points(tournament_id, "ann", "bob") == {"ann": 6, "bob": 0}
    dead = DeadLetter.objects.get(consumer=MATCH_RESULTS_CONSUMER, message_id=stranger.message_id)
    assert "LedgerNotOpen" in dead.error and "zed" in dead.error
