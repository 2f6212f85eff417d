"""Match results by choreography, end to end: API → Match Engine outbox → relay → Score Engine → leaderboard.

Real PostgreSQL, Redis, a Celery worker for the service queues (the relay)
and the events consumer for the partition queues; nothing is called in-process.
"""
import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import connections
from rest_framework.test import APIClient

from leaderboard.selectors import leaderboard_get
from scores.ledger import ledger_load
from tests.factories import tournament_given
from tests.support.waiting import wait_until

DATABASES = ["default", "tournament", "scores", "leaderboard", "sagas"]
DEADLINE = 30.0


@pytest.fixture
def api(celery_worker, events_worker) -> APIClient:
    client = APIClient()
    client.force_authenticate(get_user_model().objects.create_user("clerk"))
    return client


def standings(tournament_id: str) -> list[tuple]:
    board = leaderboard_get(tournament_id=tournament_id)
    return [(row["player_id"], row["points"], row["wins"], row["draws"], row["losses"]) for row in board.standings] \
        if board else []


def record(api: APIClient, tournament_id: str, player_a: str, player_b: str, score_a: int, score_b: int) -> dict:
    response = api.post(f"/api/tournaments/{tournament_id}/matches/", {
        "player_a": player_a, "player_b": player_b, "score_a": score_a, "score_b": score_b}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


@pytest.mark.django_db(transaction=True, databases=DATABASES)
def test_results_recorded_through_the_api_reach_the_leaderboard_in_rank_order_with_ties(api):
    tournament_id = tournament_given(players=["ann", "bob", "cat", "dan"])
    record(api, tournament_id, "ann", "bob", 2, 0)  # ann 3
    record(api, tournament_id, "cat", "dan", 1, 1)  # cat 1, dan 1
    record(api, tournament_id, "dan", "bob", 1, 1)  # dan 2, bob 1
    record(api, tournament_id, "cat", "bob", 3, 3)  # cat 2 like dan, same wins and difference: the id decides

    expected = [("ann", 3, 1, 0, 0), ("cat", 2, 0, 2, 0), ("dan", 2, 0, 2, 0), ("bob", 2, 0, 2, 1)]
    wait_until(lambda: standings(tournament_id) == expected, timeout=DEADLINE,
               message=f"leaderboard {expected} (last seen {standings(tournament_id)})")
    board = api.get(f"/api/tournaments/{tournament_id}/leaderboard/").json()
    assert [row["rank"] for row in board["standings"]] == [1, 2, 3, 4]
    assert board["status"] == "ACTIVE"
    assert board["last_event"]["position"] > 0 and board["lag_ms"] >= 0


@pytest.mark.django_db(transaction=True, databases=DATABASES)
def test_two_concurrent_corrections_with_one_if_match_leave_only_the_winners_points(api):
    tournament_id = tournament_given(players=["ann", "bob"])
    match = record(api, tournament_id, "ann", "bob", 1, 1)
    start, responses = threading.Barrier(2), {}

    def correct(name: str, score_a: int, score_b: int) -> None:
        client = APIClient()
        client.force_authenticate(get_user_model().objects.get(username="clerk"))
        start.wait()
        try:
            responses[name] = client.patch(f"/api/tournaments/{tournament_id}/matches/{match['id']}/",
                                           {"score_a": score_a, "score_b": score_b}, format="json",
                                           headers={"If-Match": '"1"'})
        finally:
            connections.close_all()

    threads = [threading.Thread(target=correct, args=("ann wins", 3, 0)),
               threading.Thread(target=correct, args=("bob wins", 0, 3))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(response.status_code for response in responses.values()) == [200, 412]
    winner = next(name for name, response in responses.items() if response.status_code == 200)
    expected = {"ann": 3, "bob": 0} if winner == "ann wins" else {"ann": 0, "bob": 3}

    def ledgers() -> dict[str, int]:
        return {player: ledger_load(tournament_id=tournament_id, player_id=player).points for player in expected}

    wait_until(lambda: ledgers() == expected, timeout=DEADLINE, message=f"ledgers {expected} ({ledgers()})")
    wait_until(lambda: {row[0]: row[1] for row in standings(tournament_id)} == expected
               and sum(row[2] for row in standings(tournament_id)) == 1,
               timeout=DEADLINE, message=f"standings {expected} ({standings(tournament_id)})")
