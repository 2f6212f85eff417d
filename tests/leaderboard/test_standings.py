"""The leaderboard read model: standings from events only, ranking and ties, the API, and rebuild."""
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections
from rest_framework.test import APIClient

from leaderboard.models import ConsumedEvent, MatchView, Standing
from leaderboard.selectors import leaderboard_get
from tests.factories import tournament_given
from tests.support.delivery import pump
from tournament.services import match_correct, match_record

DATABASES = ["default", "tournament", "scores", "leaderboard"]
COLUMNS = ("rank", "player_id", "points", "played", "wins", "draws", "losses", "score_for", "score_against")


def table(tournament_id: str) -> list[tuple]:
    return [tuple(row[column] for column in COLUMNS) for row in leaderboard_get(tournament_id=tournament_id).standings]


def play(tournament_id: str, player_a: str, player_b: str, score_a: int, score_b: int):
    return match_record(tournament_id=tournament_id, player_a=player_a, player_b=player_b, score_a=score_a,
                        score_b=score_b)


@pytest.mark.django_db(databases=DATABASES)
def test_standings_rank_by_points_then_wins_then_score_difference_then_player_id():
    tournament_id = tournament_given(players=["ann", "bob", "cat", "dan", "eve", "fay"])
    play(tournament_id, "ann", "bob", 1, 0)   # ann 3 points, one win
    play(tournament_id, "cat", "dan", 0, 0)   # cat and dan draw: 1 point each
    play(tournament_id, "cat", "eve", 1, 1)   # cat 2 points, two draws
    play(tournament_id, "dan", "fay", 4, 0)   # dan 4 points
    play(tournament_id, "eve", "fay", 0, 0)   # eve 2 points, two draws, difference 0 like cat: player id decides
    play(tournament_id, "bob", "fay", 3, 3)   # fay 2 points, no win either, but difference -4: after cat and eve

    pump(tournament_id=tournament_id)

    assert table(tournament_id) == [
        (1, "dan", 4, 2, 1, 1, 0, 4, 0),
        (2, "ann", 3, 1, 1, 0, 0, 1, 0),
        (3, "cat", 2, 2, 0, 2, 0, 1, 1),
        (4, "eve", 2, 2, 0, 2, 0, 1, 1),
        (5, "fay", 2, 3, 0, 2, 1, 3, 7),
        (6, "bob", 1, 2, 0, 1, 1, 3, 4),
    ]


@pytest.mark.django_db(databases=DATABASES)
def test_wins_break_a_points_tie_before_the_score_difference():
    tournament_id = tournament_given(players=["ann", "bob", "cat", "dan", "eve"])
    play(tournament_id, "ann", "bob", 1, 0)   # ann: 3 points in one win, difference +1
    for opponent in ("bob", "dan", "eve"):    # cat: 3 points in three draws, difference +0
        play(tournament_id, "cat", opponent, 5, 5)
    play(tournament_id, "dan", "eve", 9, 0)   # dan: 3 + 1 points

    pump(tournament_id=tournament_id)

    assert [(row[1], row[2], row[4]) for row in table(tournament_id)][:3] == [("dan", 4, 1), ("ann", 3, 1),
                                                                              ("cat", 3, 0)]


@pytest.mark.django_db(databases=DATABASES)
def test_a_correction_replaces_the_result_in_the_standings():
    tournament_id = tournament_given(players=["ann", "bob"])
    match = play(tournament_id, "ann", "bob", 2, 0)
    match_correct(tournament_id=tournament_id, match_id=match.id, expected_version=1, score_a=0, score_b=1)

    pump(tournament_id=tournament_id)

    assert table(tournament_id) == [(1, "bob", 3, 1, 1, 0, 0, 1, 0), (2, "ann", 0, 1, 0, 0, 1, 0, 1)]


@pytest.mark.django_db(databases=DATABASES)
def test_the_leaderboard_api_returns_standings_status_last_event_and_lag(django_user_model):
    tournament_id = tournament_given(players=["ann", "bob"])
    play(tournament_id, "ann", "bob", 2, 1)
    pump(tournament_id=tournament_id)
    client = APIClient()
    client.force_authenticate(django_user_model.objects.create_user("fan"))

    response = client.get(f"/api/tournaments/{tournament_id}/leaderboard/")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ACTIVE"
    assert body["standings"][0] == {"rank": 1, "player_id": "ann", "points": 3, "played": 1, "wins": 1, "draws": 0,
                                    "losses": 0, "score_for": 2, "score_against": 1}
    last = ConsumedEvent.objects.filter(tournament_id=tournament_id).latest("id")
    assert (body["last_event"]["position"], body["last_event"]["type"]) == (last.id, last.type)
    assert body["lag_ms"] == pytest.approx((last.applied_at - last.occurred_at).total_seconds() * 1000)
    assert client.get("/api/tournaments/5d3f0c4e-0000-4000-8000-000000000000/leaderboard/").status_code == 404
    assert APIClient().get(f"/api/tournaments/{tournament_id}/leaderboard/").status_code in (401, 403)


@pytest.mark.django_db(databases=DATABASES)
def test_rebuild_replays_the_read_models_own_log_into_the_same_standings():
    tournament_id = tournament_given(players=["ann", "bob", "cat"])
    other_id = tournament_given(players=["ann", "bob"])
    match = play(tournament_id, "ann", "bob", 2, 0)
    play(tournament_id, "bob", "cat", 1, 1)
    play(other_id, "bob", "ann", 4, 0)
    match_correct(tournament_id=tournament_id, match_id=match.id, expected_version=1, score_a=1, score_b=1)
    pump(tournament_id=tournament_id)
    pump(tournament_id=other_id)
    before, other_before = table(tournament_id), table(other_id)
    Standing.objects.filter(tournament_id=tournament_id).update(points=99)

    call_command("rebuild_leaderboard", tournament=tournament_id)

    assert table(tournament_id) == before
    assert table(other_id) == other_before
    call_command("rebuild_leaderboard")
    assert (table(tournament_id), table(other_id)) == (before, other_before)


@pytest.mark.django_db(databases=DATABASES)
def test_rebuild_leaves_the_planner_statistics_of_the_tables_it_rewrote_current():
    tournament_id = tournament_given(players=["ann", "bob", "cat"])
    play(tournament_id, "ann", "bob", 2, 0)
    play(tournament_id, "bob", "cat", 1, 1)
    pump(tournament_id=tournament_id)

    call_command("rebuild_leaderboard", tournament=tournament_id)

    # The rows are this test's uncommitted ones: only an ANALYZE inside the rebuild's transaction counts them.
    with connections["leaderboard"].cursor() as cursor:
        for model in (Standing, MatchView):
            cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [model._meta.db_table])
            assert cursor.fetchone()[0] == model.objects.count() > 0


@pytest.mark.django_db(databases=DATABASES)
def test_rebuild_refuses_a_malformed_tournament_id():
    with pytest.raises(CommandError, match="not a tournament id"):
        call_command("rebuild_leaderboard", tournament="nope")
