"""`GET /api/players/{id}/ledger/`: the ledger as of now, a past time or a version."""
import uuid

import pytest
from django.db import transaction
from django.utils import timezone
from rest_framework.test import APIClient

from scores.ledger import ledger_append, ledger_load
from scores.messages import PointsAwarded
from tests.factories import tournament_given

DATABASES = ["default", "tournament", "scores"]


@pytest.fixture
def api(django_user_model) -> APIClient:
    client = APIClient()
    client.force_authenticate(django_user_model.objects.create_user("reader"))
    return client


def award(tournament_id: str, player_id: str, points: int) -> None:
    with transaction.atomic(using="scores"):
        ledger_append(state=ledger_load(tournament_id=tournament_id, player_id=player_id),
                      event=PointsAwarded(tournament_id=tournament_id, player_id=player_id, match_id="m",
                                          points=points, reason="win"))


@pytest.mark.django_db(transaction=True, databases=DATABASES)
def test_the_ledger_api_returns_the_state_and_events_now_and_as_of_a_past_time(api):
    tournament_id = tournament_given(players=["ann", "bob"])
    award(tournament_id, "ann", 3)
    between = timezone.now()
    award(tournament_id, "ann", 1)

    now = api.get("/api/players/ann/ledger/", {"tournament": tournament_id})
    then = api.get("/api/players/ann/ledger/", {"tournament": tournament_id, "as_of": between.isoformat()})
    at_version = api.get("/api/players/ann/ledger/", {"tournament": tournament_id, "version": 1})

    assert now.status_code == 200
    body = now.json()
    assert {key: body[key] for key in ("player_id", "tournament_id", "status", "points", "version")} == {
        "player_id": "ann", "tournament_id": tournament_id, "status": "OPEN", "points": 4, "version": 3}
    assert [event["type"] for event in body["events"]] == ["scores.LedgerOpened", "scores.PointsAwarded",
                                                           "scores.PointsAwarded"]
    assert (then.json()["points"], then.json()["version"], len(then.json()["events"])) == (3, 2, 2)
    assert (at_version.json()["points"], at_version.json()["version"]) == (0, 1)


@pytest.mark.django_db(databases=DATABASES)
@pytest.mark.parametrize("query, status", [
    ({}, 400), ({"tournament": "nope"}, 400), ({"tournament": str(uuid.uuid4())}, 404),
    ({"tournament": "TID", "as_of": "yesterday"}, 400), ({"tournament": "TID", "version": 0}, 400),
])
def test_a_bad_ledger_query_is_a_clear_4xx(api, query, status):
    tournament_id = tournament_given(players=["ann", "bob"])
    query = {key: tournament_id if value == "TID" else value for key, value in query.items()}

    response = api.get("/api/players/ann/ledger/", query)

    assert response.status_code == status
    assert response.json()["detail"]
