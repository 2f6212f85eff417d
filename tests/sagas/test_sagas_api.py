"""The saga log over REST (staff only): a saga with its steps, and retrying a FAILED one."""
import pytest

from sagas.faults import fault_arm
from tests.support.sagas import SAGA_DATABASES
from tournament.models import Tournament

pytestmark = pytest.mark.django_db(transaction=True, databases=SAGA_DATABASES)


def test_a_saga_reads_with_its_steps_and_the_list_filters_by_state(staff_api_client, sagas):
    ann, bob = sagas.players("ann", "bob", suspended=("bob",))
    run = sagas.start_tournament([ann, bob])
    sagas.wait_terminal(run.saga_id)
    # when
    saga = staff_api_client.get(f"/api/sagas/{run.saga_id}/").json()
    # then
    assert (saga["type"], saga["state"], saga["correlation_id"]) == (
        "create_tournament", "COMPENSATED", sagas.correlation_id)
    assert f"player '{bob}' is suspended" in saga["error"]
    assert [(s["name"], s["kind"], s["status"], s["attempts"]) for s in saga["steps"]] == [
        ("create_pending", "ACTION", "SUCCEEDED", 1), ("open_ledgers", "ACTION", "FAILED", 1),
        ("open_ledgers", "COMPENSATION", "SUCCEEDED", 1), ("create_pending", "COMPENSATION", "SUCCEEDED", 1)]
    assert all(s["started_at"] and s["finished_at"] for s in saga["steps"])
    assert "suspended" in saga["steps"][1]["error"]
    listing = staff_api_client.get("/api/sagas/?state=COMPENSATED").json()
    assert [s["id"] for s in listing["results"]] == [str(run.saga_id)] and listing["count"] == 1
    assert staff_api_client.get("/api/sagas/?state=COMPLETED").json()["count"] == 0
    assert staff_api_client.get("/api/sagas/?state=NOPE").status_code == 400


def test_saga_operations_need_staff(api_client, sagas):
    run = sagas.start_tournament(sagas.players("ann", "bob"))
    assert api_client.get("/api/sagas/").status_code == 403
    assert api_client.get(f"/api/sagas/{run.saga_id}/").status_code == 403
    assert api_client.post(f"/api/sagas/{run.saga_id}/retry/").status_code == 403


def test_a_compensation_that_keeps_failing_ends_failed_and_a_retry_finishes_it(staff_api_client, sagas):
    ann, bob = sagas.players("ann", "bob", suspended=("bob",))
    sagas.fail("create_pending", kind="COMPENSATION", fault="error", times=1)
    run = sagas.start_tournament([ann, bob])
    # then the tournament cannot be cancelled: the saga waits for an operator
    failed = sagas.wait_terminal(run.saga_id)
    assert failed.state == "FAILED" and "compensation of create_pending failed" in failed.error
    assert Tournament.objects.using("tournament").get(id=run.tournament_id).status == "PENDING"
    # when an operator retries it (the cause now gone)
    response = staff_api_client.post(f"/api/sagas/{run.saga_id}/retry/")
    assert response.status_code == 202 and response.json()["state"] == "COMPENSATING"
    # then the compensation runs again from where it stopped and completes
    assert sagas.wait_terminal(run.saga_id).state == "COMPENSATED"
    assert Tournament.objects.using("tournament").get(id=run.tournament_id).status == "CANCELLED"
    assert sagas.effects(run.saga_id) == [("create_pending", "ACTION"), ("open_ledgers", "COMPENSATION"),
                                          ("create_pending", "COMPENSATION")]
    again = staff_api_client.post(f"/api/sagas/{run.saga_id}/retry/")
    assert again.status_code == 409 and "FAILED" in again.json()["detail"]


def test_transient_compensation_errors_are_retried_before_the_saga_is_failed(sagas, settings):
    ann, bob = sagas.players("ann", "bob", suspended=("bob",))
    fault_arm(target=sagas.correlation_id, step_name="open_ledgers", kind="COMPENSATION", point="before_effect",
              fault="transient", times=settings.SAGAS_STEP_MAX_RETRIES)
    run = sagas.start_tournament([ann, bob])
    assert sagas.wait_terminal(run.saga_id).state == "COMPENSATED"
    compensations = [t for t in sagas.timeline(run.saga_id) if t[:2] == ("open_ledgers", "COMPENSATION")]
    assert compensations == [("open_ledgers", "COMPENSATION", "FAILED")] * settings.SAGAS_STEP_MAX_RETRIES + [
        ("open_ledgers", "COMPENSATION", "SUCCEEDED")]
