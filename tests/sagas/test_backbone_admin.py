"""Operators see every service's backbone tables and figures, and repair dead rows from the admin."""
import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db import connections
from django.urls import reverse

from sagas.messaging_models import AbstractDeadLetter, AbstractInboxMessage, AbstractOutboxMessage, OutboxStatus
from tests.support.event_probe import probe_rows
from tournament.models import OutboxMessage

pytestmark = pytest.mark.django_db(transaction=True, databases=list(connections))


@pytest.fixture
def staff_client(client):
    user = get_user_model().objects.create_superuser("operator", "op@example.com", "pw")
    client.force_login(user)
    return client


def test_every_outbox_inbox_and_dead_letter_table_is_listed(staff_client):
    bases = (AbstractOutboxMessage, AbstractInboxMessage, AbstractDeadLetter)
    registered = [model for model in admin.site._registry if issubclass(model, bases)]
    labels = {(model._meta.app_label, model.__name__) for model in registered}
    assert {("tournament", "OutboxMessage"), ("scores", "OutboxMessage"), ("leaderboard", "DeadLetter"),
            ("scores", "InboxMessage"), ("sagas", "DeadLetter")} <= labels
    for model in registered:
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        assert staff_client.get(url).status_code == 200, url


def test_the_outbox_list_shows_its_backlog_and_requeues_dead_rows(staff_client):
    rows = probe_rows(OutboxMessage, "stuck", [1, 2])
    OutboxMessage.objects.filter(id=rows[0].id).update(status=OutboxStatus.DEAD, attempts=5, last_error="boom")
    url = reverse("admin:tournament_outboxmessage_changelist")
    assert "1 pending" in staff_client.get(url).content.decode()
    response = staff_client.post(url, {"action": "requeue", "_selected_action": [rows[0].id, rows[1].id]})
    assert response.status_code == 302
    assert list(OutboxMessage.objects.order_by("id").values_list("status", "attempts")) == [
        (OutboxStatus.PENDING, 0), (OutboxStatus.PENDING, 0)]


def test_healthz_reports_each_outbox_backlog(client):
    probe_rows(OutboxMessage, "waiting", [1])
    figures = {figure["service"]: figure for figure in client.get("/healthz").json()["outboxes"]}
    assert figures["tournament"]["pending"] == 1 and figures["tournament"]["dead"] == 0
    assert figures["tournament"]["oldest_pending_age_seconds"] >= 0
    assert {"tournament", "scores", "sagas"} <= set(figures)
