"""The tournaments API: 202 and a Location that answers at once, validation, idempotency, concurrency."""
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections
from rest_framework.test import APIClient

from sagas.models import RUNNING_STATES, Saga
from scores.ledger import LedgerStatus, ledger_load
from tests.support.api import token_client
from tests.support.sagas import SAGA_DATABASES
from tests.support.waiting import wait_until
from tournament.models import Tournament

pytestmark = pytest.mark.django_db(transaction=True, databases=SAGA_DATABASES)


def create(client: APIClient, name: str, participants: list[str], key: str | None = None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post("/api/tournaments/", {"name": name, "participants": participants}, format="json", **headers)


def in_thread(function):
    """Run `function` on a thread's own database connections, closing them afterwards."""
    def run(*args):
        try:
            return function(*args)
        finally:
            connections.close_all()
    return run


def test_a_created_tournament_answers_at_its_location_at_once_then_becomes_active(api_client, sagas):
    players = sagas.players("ann", "bob")
    # when
    response = create(api_client, "Spring open", players)
    # then
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["status"] == "PENDING" and set(body) == {"id", "status", "saga_id"}
    assert response["Location"].endswith(f"/api/tournaments/{body['id']}/")
    first_read = api_client.get(response["Location"])
    assert first_read.status_code == 200 and first_read.json()["status"] in ("PENDING", "ACTIVE")
    assert first_read.json()["participants"] == players
    assert sagas.wait_terminal(body["saga_id"]).state == "COMPLETED"
    final = api_client.get(response["Location"]).json()
    assert (final["status"], final["version"], final["saga_id"], final["cancel_reason"]) == (
        "ACTIVE", 2, body["saga_id"], "")


@pytest.mark.parametrize(("body", "field", "message"), [
    ({"name": "", "participants": ["a", "b"]}, "name", "blank"),
    ({"name": "x" * 201, "participants": ["a", "b"]}, "name", "200"),
    ({"name": "Cup", "participants": ["a"]}, "participants", "2"),
    ({"name": "Cup", "participants": [f"p{i}" for i in range(257)]}, "participants", "256"),
    ({"name": "Cup", "participants": ["a", "b", "a"]}, "participants", "repeated: a"),
    ({"name": "Cup"}, "participants", "required"),
    ({"name": "Cup", "participants": "a,b"}, "participants", "list"),
])
def test_an_invalid_tournament_is_a_400_with_a_clear_message_and_starts_nothing(api_client, body, field, message):
    response = api_client.post("/api/tournaments/", body, format="json")
    assert response.status_code == 400
    assert message in " ".join(response.json()["errors"][field])
    assert not Saga.objects.using("sagas").exists() and not Tournament.objects.using("tournament").exists()


def test_the_same_idempotency_key_and_body_returns_the_same_tournament_and_another_body_conflicts(
        api_client, sagas):
    players = sagas.players("ann", "bob")
    key = uuid.uuid4().hex
    first = create(api_client, "Cup", players, key)
    again = create(api_client, "Cup", players, key)
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json() == first.json() and again["Location"] == first["Location"]
    other = create(api_client, "Another cup", players, key)
    assert other.status_code == 409 and "Idempotency-Key" in other.json()["detail"]
    assert Saga.objects.using("sagas").count() == 1 and Tournament.objects.using("tournament").count() == 1
    # the key belongs to its user: another user's identical key starts its own tournament
    assert create(token_client(staff=False), "Cup", players, key).json()["id"] != first.json()["id"]


def test_the_same_idempotency_key_sent_ten_times_at_once_starts_one_saga(sagas):
    players = sagas.players("ann", "bob")
    client_ = token_client(staff=False)
    key = uuid.uuid4().hex
    # when ten requests race with one key
    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(in_thread(lambda _: create(client_, "Race cup", players, key)), range(10)))
    # then every one is accepted with the same tournament, which answers at once, and one saga runs
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["id"] for r in responses}) == 1
    assert client_.get(responses[0]["Location"]).status_code == 200
    assert Saga.objects.using("sagas").count() == 1
    assert sagas.wait_terminal(responses[0].json()["saga_id"]).state == "COMPLETED"
    assert Tournament.objects.using("tournament").count() == 1


def test_fifty_concurrent_sagas_end_in_the_right_state_and_keep_the_ledger_invariant(sagas):
    eligible = sagas.players(*[f"p{i}" for i in range(12)])
    suspended = sagas.players("s1", "s2", suspended=("s1", "s2"))
    plans = []
    for i in range(50):
        roster = [eligible[i % 12], eligible[(i + 1) % 12], eligible[(i + 5) % 12]]
        if i % 5 == 0:
            roster.append(suspended[i % 2])
        plans.append((f"Concurrent {i}", roster))
    client_ = token_client(staff=False)
    # when fifty tournaments are requested at once
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(in_thread(lambda plan: create(client_, *plan)), plans))
    assert {r.status_code for r in responses} == {202}
    ids = [r.json()["id"] for r in responses]
    # then every saga ends, each in the state its roster calls for
    wait_until(lambda: not Saga.objects.using("sagas").filter(state__in=RUNNING_STATES).exists(), timeout=90,
               message="all fifty sagas terminal")
    tournaments = {str(t.id): t for t in Tournament.objects.using("tournament").prefetch_related("participants")}
    for (name, roster), tournament_id in zip(plans, ids, strict=True):
        expected = "CANCELLED" if set(roster) & set(suspended) else "ACTIVE"
        assert tournaments[tournament_id].status == expected, name
    assert Saga.objects.using("sagas").filter(state="COMPLETED").count() == 40
    assert Saga.objects.using("sagas").filter(state="COMPENSATED").count() == 10
    # and the invariant: ACTIVE has an open ledger per participant, CANCELLED has none open
    for tournament in tournaments.values():
        states = {ledger_load(tournament_id=str(tournament.id), player_id=p.player_id).status
                  for p in tournament.participants.all()}
        if tournament.status == "ACTIVE":
            assert states == {LedgerStatus.OPEN}, tournament.name
        else:
            assert LedgerStatus.OPEN not in states, tournament.name


def test_the_list_is_paginated_and_filters_by_status(api_client, sagas):
    ann, bob, sus = sagas.players("ann", "bob", "sus", suspended=("sus",))
    active = create(api_client, "Will run", [ann, bob]).json()
    cancelled = create(api_client, "Will stop", [ann, sus]).json()
    for saga_id in (active["saga_id"], cancelled["saga_id"]):
        sagas.wait_terminal(saga_id)
    listing = api_client.get("/api/tournaments/").json()
    assert listing["count"] == 2 and [t["id"] for t in listing["results"]] == [cancelled["id"], active["id"]]
    only_active = api_client.get("/api/tournaments/?status=ACTIVE").json()
    assert [t["id"] for t in only_active["results"]] == [active["id"]]
    cancelled_row = api_client.get("/api/tournaments/?status=CANCELLED").json()["results"][0]
    assert sus in cancelled_row["cancel_reason"]
    assert api_client.get("/api/tournaments/?status=LOST").status_code == 400


def test_an_unknown_tournament_is_a_json_404_and_anonymous_callers_are_refused(api_client):
    missing = api_client.get(f"/api/tournaments/{uuid.uuid4()}/")
    assert missing.status_code == 404 and missing.json()["detail"]
    assert APIClient().get("/api/tournaments/").status_code == 401
