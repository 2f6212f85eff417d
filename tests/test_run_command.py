"""The README's run command starts web, worker and beat, answers /healthz, and stops on Ctrl-C."""
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import psutil
import psycopg
import requests
from django.conf import settings
from django.db import connections

from tests.support.waiting import wait_until

BASE_DIR = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fresh_database(name: str) -> str:
    s = connections["default"].settings_dict
    with psycopg.connect(host=s["HOST"], port=s["PORT"], user=s["USER"], password=s["PASSWORD"] or None,
                         dbname="postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST']}:{s['PORT']}/{name}"


def test_make_run_serves_healthz_and_stops_cleanly_on_ctrl_c(django_db_setup):
    # given its own database and broker database, so it shares nothing with the test worker
    port = free_port()
    broker_url = settings.CELERY_BROKER_URL.rsplit("/", 1)[0] + "/15"
    env = {**os.environ, "DATABASE_URL": fresh_database("runcommand_test"), "CELERY_BROKER_URL": broker_url,
           "WEB_BIND": f"127.0.0.1:{port}", "DJANGO_SETTINGS_MODULE": "config.settings.base"}
    started = time.monotonic()
    process = subprocess.Popen(["make", "run"], cwd=BASE_DIR, env=env, start_new_session=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # when it comes up, /healthz turns green
        wait_until(lambda: requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200,
                   timeout=120, interval=0.25, message="healthz green")
        print(f"make run: /healthz green after {time.monotonic() - started:.1f}s")
        children = psutil.Process(process.pid).children(recursive=True)
        assert any("celery" in " ".join(c.cmdline()) and "beat" in c.cmdline() for c in children)
        assert any("celery" in " ".join(c.cmdline()) and "worker" in c.cmdline() for c in children)
    finally:
        # and Ctrl-C (SIGINT to the foreground group) stops every process it started
        os.killpg(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    assert "API token:" in output
    for child in children:
        assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE, child.cmdline()
