"""`/healthz` reports every database alias and the broker, and a stopped broker as a 503."""

import pytest
from django.db import connections
from django.test import Client

from config.embedded_services import EmbeddedRedis
from tests.support.servers import free_port
from tests.support.waiting import wait_until


@pytest.mark.django_db(databases=list(connections))
def test_healthz_is_green_when_everything_answers(client: Client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {f"database:{alias}" for alias in connections} | {"broker"}


@pytest.fixture
def private_redis(tmp_path):
    redis = EmbeddedRedis(data_dir=tmp_path, port=free_port())
    redis.start()
    yield redis
    redis.stop()


@pytest.mark.django_db(databases=list(connections))
def test_healthz_reports_a_stopped_broker_as_down_and_recovers(client: Client, settings, private_redis):
    # given the service pointed at a broker that is up
    settings.CELERY_BROKER_URL = private_redis.url
    assert client.get("/healthz").status_code == 200
    # when the broker stops
    private_redis.stop()
    response = client.get("/healthz")
    # then health is a 503 naming the broker, the databases still ok
    assert response.status_code == 503
    assert response.json()["checks"]["broker"].startswith("down")
    assert response.json()["checks"]["database:default"] == "ok"
    # and when it is back, health recovers
    private_redis.start()
    wait_until(lambda: client.get("/healthz").status_code == 200, message="health back to 200")
