"""Moving one service to another database takes an environment variable, no code change."""
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from django.db import connections

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def server_conninfo(dbname: str) -> dict:
    settings_dict = connections["default"].settings_dict
    return {
        "host": settings_dict["HOST"] or None, "port": settings_dict["PORT"] or None,
        "user": settings_dict["USER"] or None, "password": settings_dict["PASSWORD"] or None, "dbname": dbname,
    }


def url_for(dbname: str) -> str:
    settings_dict = connections["default"].settings_dict
    auth = settings_dict["USER"] + (f":{settings_dict['PASSWORD']}" if settings_dict["PASSWORD"] else "")
    return f"postgres://{auth}@{settings_dict['HOST']}:{settings_dict['PORT']}/{dbname}"


@pytest.fixture
def second_database():
    name = "scores_split_test"
    with psycopg.connect(**server_conninfo("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield name
    with psycopg.connect(**server_conninfo("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120)


def test_scores_moves_to_a_second_database_by_environment_alone(second_database):
    # given every alias on one database except Score Engine, moved by one variable
    main_name = "split_main_test"
    with psycopg.connect(**server_conninfo("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{main_name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{main_name}"')
    env = {"DATABASE_URL": url_for(main_name), "SCORES_DATABASE_URL": url_for(second_database),
           "DJANGO_SETTINGS_MODULE": "config.settings.base"}
    try:
        # when every alias is migrated
        result = manage("migrate_all", "--noinput", "-v", "0", env=env)
        assert result.returncode == 0, result.stderr
        # then the scores tables are in the second database only
        query = "SELECT table_schema FROM information_schema.tables WHERE table_name = 'scores_outboxmessage'"
        with psycopg.connect(**server_conninfo(second_database)) as conn:
            assert conn.execute(query).fetchall() == [("scores",)]
        with psycopg.connect(**server_conninfo(main_name)) as conn:
            assert conn.execute(query).fetchall() == []
            assert conn.execute(query.replace("scores_", "tournament_")).fetchall() == [("tournament",)]
        # and the running code writes there
        write = manage("shell", "-c", "from scores.models import InboxMessage; import uuid; "
                       "InboxMessage.objects.create(consumer='split', message_id=uuid.uuid4(), type='t')", env=env)
        assert write.returncode == 0, write.stderr
        with psycopg.connect(**server_conninfo(second_database)) as conn:
            assert conn.execute("SELECT count(*) FROM scores.scores_inboxmessage").fetchone() == (1,)
    finally:
        with psycopg.connect(**server_conninfo("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{main_name}" WITH (FORCE)')
