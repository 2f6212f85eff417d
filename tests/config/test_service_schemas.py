"""Each service's tables live only in its own schema, and the router keeps services apart."""
import pytest
from django.apps import apps
from django.db import connections

from config.db_routers import ServiceRouter

SERVICES = ("tournament", "scores", "sagas", "leaderboard")


def tables_by_schema() -> dict[str, set[str]]:
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
        )
        found: dict[str, set[str]] = {}
        for schema, table in cursor.fetchall():
            found.setdefault(schema, set()).add(table)
    return found


@pytest.mark.django_db(databases=["default"])
@pytest.mark.parametrize("service", SERVICES)
def test_service_tables_exist_only_in_the_service_schema(service):
    # given the migrated databases
    found = tables_by_schema()
    # when we look up where each of the service's model tables lives
    tables = {model._meta.db_table for model in apps.get_app_config(service).get_models()}
    # then every one is in the service's schema and nowhere else
    for table in tables:
        schemas = {schema for schema, names in found.items() if table in names}
        assert schemas == {service}, f"{table} found in {schemas}"


@pytest.mark.django_db(databases=["default"])
def test_framework_tables_stay_in_the_default_schema():
    found = tables_by_schema()
    assert {"auth_user", "django_celery_results_taskresult", "django_celery_beat_periodictask"} <= found["public"]
    for service in SERVICES:
        assert not {t for t in found.get(service, set()) if t.startswith(("auth_", "django_celery"))}


def test_router_refuses_a_relation_between_two_services():
    tournament_model = apps.get_app_config("tournament").get_model("outboxmessage")
    scores_model = apps.get_app_config("scores").get_model("outboxmessage")
    router = ServiceRouter()
    assert router.allow_relation(tournament_model(), tournament_model()) is True
    assert router.allow_relation(tournament_model(), scores_model()) is False


def test_router_migrates_each_app_only_on_its_alias():
    router = ServiceRouter()
    assert router.allow_migrate("scores", "scores") is True
    assert router.allow_migrate("default", "scores") is False
    assert router.allow_migrate("tournament", "scores") is False
    assert router.allow_migrate("default", "auth") is True
    assert router.allow_migrate("sagas", "auth") is False


def test_each_service_alias_reads_and_writes_its_own_database():
    router = ServiceRouter()
    for service in SERVICES:
        for model in apps.get_app_config(service).get_models():
            assert router.db_for_write(model) == service
            assert router.db_for_read(model) == service
