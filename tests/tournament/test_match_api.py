"""Recording and correcting results through the API: rules, ETags, optimistic concurrency, the saga's semantic lock."""
import threading

import pytest
from django.db import connections
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from tests.factories import tournament_given
from tests.support.delivery import pump
from scores.ledger import ledger_load
from tournament.models import Match, OutboxMessage, Tournament, TournamentStatus

DATABASES = ["default", "tournament", "scores", "leaderboard"]


@pytest.fixture
def api(django_user_model) -> APIClient:
    client = APIClient()
    client.force_authenticate(django_user_model.objects.create_user("clerk"))
    return client


def record(api: APIClient, tournament_id: str, **body):
    return api.post(f"/api/tournaments/{tournament_id}/matches/",
                    {"player_a": "ann", "player_b": "bob", "score_a": 2, "score_b": 1, **body}, format="json")


def correct(api: APIClient, tournament_id: str, match_id: str, if_match: str | None, **body):
    headers = {"If-Match": if_match} if if_match is not None else {}
    return api.patch(f"/api/tournaments/{tournament_id}/matches/{match_id}/", body, format="json", headers=headers)


@pytest.mark.django_db(databases=DATABASES)
def test_recording_a_result_returns_the_match_with_its_version_as_etag_and_publishes_match_recorded(api):
    tournament_id = tournament_given(players=["ann", "bob"])

    response = record(api, tournament_id)

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["player_a"], body["score_a"], body["score_b"], body["version"]) == ("ann", 2, 1, 1)
    assert response.headers["ETag"] == '"1"'
    event = OutboxMessage.objects.get(type="tournament.MatchRecorded", partition_key=body["id"])
    assert (event.aggregate_type, event.aggregate_version) == ("tournament.Match", 1)
    assert event.payload == {"tournament_id": tournament_id, "match_id": body["id"], "player_a": "ann",
                             "player_b": "bob", "score_a": 2, "score_b": 1}


@pytest.mark.django_db(databases=DATABASES)
@pytest.mark.parametrize("body, fragment", [
    ({"player_b": "ann"}, "two different players"),
    ({"player_b": "zed"}, "not participants of this tournament: zed"),
    ({"score_a": -1}, "score_a"),
    ({"score_b": "two"}, "score_b"),
    ({"score_a": None}, "score_a"),
])
def test_a_bad_result_is_a_400_and_records_nothing(api, body, fragment):
    tournament_id = tournament_given(players=["ann", "bob"])

    response = record(api, tournament_id, **body)

    assert response.status_code == 400
    assert fragment in str(response.json())
    assert not Match.objects.filter(tournament_id=tournament_id).exists()


@pytest.mark.django_db(databases=DATABASES)
@pytest.mark.parametrize("status", [TournamentStatus.PENDING, TournamentStatus.CANCELLED, TournamentStatus.COMPLETED])
def test_a_result_for_a_tournament_that_is_not_active_is_a_409_and_emits_nothing(api, status):
    tournament_id = tournament_given(players=["ann", "bob"], status=TournamentStatus.PENDING)
    Tournament.objects.filter(id=tournament_id).update(status=status)
    events_before = OutboxMessage.objects.count()

    response = record(api, tournament_id)

    assert response.status_code == 409
    assert status in response.json()["detail"]
    assert OutboxMessage.objects.count() == events_before
    assert not Match.objects.filter(tournament_id=tournament_id).exists()


@pytest.mark.django_db(databases=DATABASES)
def test_an_unknown_tournament_is_a_404(api):
    assert record(api, "5d3f0c4e-0000-4000-8000-000000000000").status_code == 404
    assert record(api, "not-a-uuid").status_code == 404


@pytest.mark.django_db(databases=DATABASES)
def test_a_correction_needs_the_current_version_in_if_match(api):
    tournament_id = tournament_given(players=["ann", "bob"])
    match_id = record(api, tournament_id).json()["id"]

    missing = correct(api, tournament_id, match_id, None, score_a=0, score_b=0)
    malformed = correct(api, tournament_id, match_id, "*", score_a=0, score_b=0)
    stale = correct(api, tournament_id, match_id, '"7"', score_a=0, score_b=0)
    fresh = correct(api, tournament_id, match_id, '"1"', score_a=0, score_b=3)

    assert (missing.status_code, malformed.status_code, stale.status_code) == (428, 400, 412)
    assert fresh.status_code == 200, fresh.json()
    assert (fresh.json()["score_a"], fresh.json()["score_b"], fresh.json()["version"]) == (0, 3, 2)
    assert fresh.headers["ETag"] == '"2"'
    assert correct(api, tournament_id, match_id, '"1"', score_a=5, score_b=5).status_code == 412
    event = OutboxMessage.objects.get(type="tournament.MatchCorrected", partition_key=match_id)
    assert event.aggregate_version == 2
    assert (event.payload["previous_score_a"], event.payload["previous_score_b"]) == (2, 1)
    assert (event.payload["score_a"], event.payload["score_b"]) == (0, 3)


@pytest.mark.django_db(databases=DATABASES)
def test_completing_a_tournament_bumps_its_version_publishes_the_event_and_refuses_later_results(api):
    tournament_id = tournament_given(players=["ann", "bob"])
    match_id = record(api, tournament_id).json()["id"]

    response = api.post(f"/api/tournaments/{tournament_id}/complete/")

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["version"]) == ("COMPLETED", 3)
    event = OutboxMessage.objects.get(type="tournament.TournamentCompleted", partition_key=tournament_id)
    assert (event.aggregate_type, event.aggregate_version) == ("tournament.Tournament", 3)
    assert record(api, tournament_id).status_code == 409
    assert correct(api, tournament_id, match_id, '"1"', score_a=0, score_b=0).status_code == 409
    assert api.post(f"/api/tournaments/{tournament_id}/complete/").status_code == 409


@pytest.mark.django_db(databases=DATABASES)
def test_the_results_api_needs_an_authenticated_user():
    tournament_id = tournament_given(players=["ann", "bob"])
    assert record(APIClient(), tournament_id).status_code in (401, 403)


@pytest.mark.django_db(transaction=True, databases=DATABASES)
def test_of_two_concurrent_corrections_with_the_same_if_match_one_wins_and_the_points_follow_it():
    get_user_model().objects.create_user("clerk")
    tournament_id = tournament_given(players=["ann", "bob"])
    clients = []
    for _ in range(2):
        client = APIClient()
        client.force_authenticate(get_user_model().objects.get(username="clerk"))
        clients.append(client)
    match_id = record(clients[0], tournament_id, score_a=1, score_b=1).json()["id"]
    start = threading.Barrier(2)
    responses = {}

    def correct_to(index: int, score_a: int, score_b: int) -> None:
        start.wait()
        try:
            responses[index] = correct(clients[index], tournament_id, match_id, '"1"', score_a=score_a,
                                       score_b=score_b)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=correct_to, args=(0, 3, 0)), threading.Thread(target=correct_to, args=(1, 0, 3))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(response.status_code for response in responses.values()) == [200, 412]
    winner = next(response.json() for response in responses.values() if response.status_code == 200)
    assert Match.objects.get(id=match_id).version == 2
    assert OutboxMessage.objects.filter(partition_key=match_id).count() == 2
    pump(tournament_id=tournament_id)
    expected = {"ann": 3, "bob": 0} if winner["score_a"] > winner["score_b"] else {"ann": 0, "bob": 3}
    assert {player: ledger_load(tournament_id=tournament_id, player_id=player).points
            for player in ("ann", "bob")} == expected


@pytest.mark.django_db(databases=DATABASES)
def test_reading_a_match_gives_its_current_version_as_etag(api):
    tournament_id = tournament_given(players=["ann", "bob"])
    match_id = record(api, tournament_id).json()["id"]
    correct(api, tournament_id, match_id, '"1"', score_a=0, score_b=0)

    response = api.get(f"/api/tournaments/{tournament_id}/matches/{match_id}/")

    assert (response.status_code, response.headers["ETag"], response.json()["version"]) == (200, '"2"', 2)
    other_tournament = tournament_given(players=["ann", "bob"])
    assert api.get(f"/api/tournaments/{other_tournament}/matches/{match_id}/").status_code == 404
