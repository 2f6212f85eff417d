"""Match results by choreography under a hostile network: any order, duplicates, and a rebuild, give one answer.

Property: for a random sequence of results and corrections, delivering the
events (Match Engine to Score Engine, both to the leaderboard) shuffled,
duplicated and in runs of random length (the consumers' batches) yields the
same ledgers and standings as in-order delivery one event at a time, the
same standings as `rebuild_leaderboard`, and the standings a plain recount of
the final results gives.
"""
import random

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leaderboard.projections import leaderboard_rebuild
from leaderboard.selectors import leaderboard_get
from scores.ledger import ledger_load
from scores.models import OutboxMessage as ScoresOutbox
from tests.factories import tournament_given
from tests.support.delivery import (
    deliver_to_leaderboard,
    deliver_to_scores,
    outbox_envelopes,
    shuffled_with_duplicates,
)
from tournament.models import Match
from tournament.models import OutboxMessage as TournamentOutbox
from tournament.services import match_correct, match_record

DATABASES = ["tournament", "scores", "leaderboard"]
PLAYERS = ["ann", "bob", "cat", "dan"]
score = st.integers(min_value=0, max_value=4)
record = st.tuples(st.just("record"), st.permutations(PLAYERS).map(lambda p: p[:2]), score, score)
correct = st.tuples(st.just("correct"), st.integers(min_value=0, max_value=20), score, score)


def play(tournament_id: str, operations: list[tuple]) -> None:
    matches = []
    for kind, target, score_a, score_b in operations:
        if kind == "record":
            matches.append(match_record(tournament_id=tournament_id, player_a=target[0], player_b=target[1],
                                        score_a=score_a, score_b=score_b))
        elif matches:
            match = matches[target % len(matches)]
            matches[target % len(matches)] = match_correct(tournament_id=tournament_id, match_id=match.id,
                                                           expected_version=match.version, score_a=score_a,
                                                           score_b=score_b)


def recount(tournament_id: str) -> dict[str, tuple[int, int, int, int, int, int]]:
    """Return what the standings must say, counted from the final results alone: points, w, d, l, for, against."""
    lines = {player: [0, 0, 0, 0, 0, 0] for player in PLAYERS}
    for match in Match.objects.filter(tournament_id=tournament_id):
        for me, mine, theirs in ((match.player_a, match.score_a, match.score_b),
                                 (match.player_b, match.score_b, match.score_a)):
            outcome = 1 if mine > theirs else 2 if mine == theirs else 3
            lines[me][0] += {1: 3, 2: 1, 3: 0}[outcome]
            lines[me][outcome] += 1
            lines[me][4] += mine
            lines[me][5] += theirs
    return {player: tuple(line) for player, line in lines.items()}


def observed(tournament_id: str) -> tuple[dict, list[dict]]:
    ledgers = {}
    for player in PLAYERS:
        state = ledger_load(tournament_id=tournament_id, player_id=player)
        ledgers[player] = (state.status, state.points)
    return ledgers, leaderboard_get(tournament_id=tournament_id).standings


def deliver(tournament_id: str, rng: random.Random | None, duplicates: int) -> tuple[dict, list[dict]]:
    """Deliver the Match Engine's events to the Score Engine, then everything to the leaderboard."""
    arrange = (lambda events: shuffled_with_duplicates(events, rng, duplicates)) if rng else list
    match_engine = [e for e in outbox_envelopes(TournamentOutbox) if e.payload["tournament_id"] == tournament_id]
    deliver_to_scores(arrange(match_engine), rng)
    score_engine = outbox_envelopes(ScoresOutbox, partition_key__startswith=f"{tournament_id}/")
    deliver_to_leaderboard(arrange(match_engine + score_engine), rng)
    return observed(tournament_id)


@pytest.mark.django_db(databases=DATABASES)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations=st.lists(st.one_of(record, correct), min_size=1, max_size=10),
       seed=st.integers(min_value=0, max_value=2**32 - 1), duplicates=st.integers(min_value=0, max_value=8))
def test_shuffled_duplicated_delivery_gives_the_same_ledgers_and_standings_as_in_order_delivery_and_rebuild(
        operations, seed, duplicates):
    tournament_id = tournament_given(players=PLAYERS)
    play(tournament_id, operations)

    # In order, then undone: the consumers' effects live in the scores and leaderboard schemas only.
    savepoints = {alias: transaction.savepoint(using=alias) for alias in ("scores", "leaderboard")}
    in_order = deliver(tournament_id, rng=None, duplicates=0)
    for alias, savepoint in savepoints.items():
        transaction.savepoint_rollback(savepoint, using=alias)
    hostile = deliver(tournament_id, rng=random.Random(seed), duplicates=duplicates)
    leaderboard_rebuild(tournament_id=tournament_id)
    rebuilt = observed(tournament_id)

    assert hostile == in_order
    assert rebuilt == in_order
    expected = recount(tournament_id)
    ledgers, standings = in_order
    assert ledgers == {player: ("OPEN", expected[player][0]) for player in PLAYERS}
    assert {row["player_id"]: (row["points"], row["wins"], row["draws"], row["losses"], row["score_for"],
                               row["score_against"]) for row in standings} == expected
