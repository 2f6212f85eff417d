"""Moving one service to another database takes an environment variable, no code change."""
import os
import subprocess
import sys
from pathlib import Path

import psycopg

from tests.support.servers import drop_database, scratch_database, server_conninfo

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120)


def test_scores_moves_to_a_second_database_by_environment_alone(django_db_setup):
    # given every alias on one database except the Score Engine, moved by one variable
    main_name, main_url = scratch_database("split_main")
    scores_name, scores_url = scratch_database("split_scores")
    env = {"DATABASE_URL": main_url, "SCORES_DATABASE_URL": scores_url, "DJANGO_SETTINGS_MODULE": "config.settings.base"}
    try:
        # when every alias is migrated
        result = manage("migrate_all", "--noinput", "-v", "0", env=env)
        assert result.returncode == 0, result.stderr
        # then the scores tables are in the second database only
        query = "SELECT table_schema FROM information_schema.tables WHERE table_name = %s"
        with psycopg.connect(**server_conninfo(scores_name)) as conn:
            assert conn.execute(query, ["scores_inboxmessage"]).fetchall() == [("scores",)]
        with psycopg.connect(**server_conninfo(main_name)) as conn:
            assert conn.execute(query, ["scores_inboxmessage"]).fetchall() == []
            assert conn.execute(query, ["tournament_inboxmessage"]).fetchall() == [("tournament",)]
        # and the running code writes there
        write = manage("shell", "-c", "from scores.models import InboxMessage; import uuid; "
                       "InboxMessage.objects.create(consumer='split', message_id=uuid.uuid4(), type='t')", env=env)
        assert write.returncode == 0, write.stderr
        with psycopg.connect(**server_conninfo(scores_name)) as conn:
            assert conn.execute("SELECT count(*) FROM scores.scores_inboxmessage").fetchone() == (1,)
    finally:
        drop_database(main_name)
        drop_database(scores_name)
