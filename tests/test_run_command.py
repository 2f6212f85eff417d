"""The README's run command starts web, worker and beat, answers /healthz, and stops on Ctrl-C."""
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import requests

from config.embedded_services import EmbeddedRedis
from tests.support.servers import drop_database, free_port, scratch_database
from tests.support.waiting import wait_until

BASE_DIR = Path(__file__).resolve().parent.parent


def test_make_run_serves_healthz_and_stops_cleanly_on_ctrl_c(django_db_setup, tmp_path):
    # given its own database and its own broker, so it shares nothing with the test worker
    port = free_port()
    broker = EmbeddedRedis(data_dir=tmp_path, port=free_port())
    broker.start()
    database_name, database_url = scratch_database("runcommand")
    env = {**os.environ, "DATABASE_URL": database_url, "CELERY_BROKER_URL": broker.url,
           "WEB_BIND": f"127.0.0.1:{port}", "DJANGO_SETTINGS_MODULE": "config.settings.base"}
    started = time.monotonic()
    process = subprocess.Popen(["make", "run"], cwd=BASE_DIR, env=env, start_new_session=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # when it comes up, /healthz turns green
        wait_until(lambda: requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200,
                   timeout=120, interval=0.25, message="healthz green")
        print(f"make run: /healthz green after {time.monotonic() - started:.1f}s")
        # the events consumers: two workers (one per core), each partition queue owned by exactly one
        # (`consume_events` starts them; /healthz may turn green first)
        def consumed() -> list[str]:
            return sorted({c.cmdline()[c.cmdline().index("-Q") + 1] for c in running()
                           if "worker" in c.cmdline() and any(arg.startswith("events-") for arg in c.cmdline())})

        def running() -> list[psutil.Process]:
            return psutil.Process(process.pid).children(recursive=True)

        wait_until(lambda: consumed() == ["events.0,events.2", "events.1,events.3"], timeout=60,
                   message="event consumers started")
        children = running()
        assert any("celery" in " ".join(c.cmdline()) and "beat" in c.cmdline() for c in children)
        assert any("celery" in " ".join(c.cmdline()) and "worker" in c.cmdline() for c in children)
    finally:
        # and Ctrl-C (SIGINT to the foreground group) stops every process it started
        os.killpg(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=60)
        broker.stop()
        drop_database(database_name)
    assert "API token:" in output
    assert f"http://127.0.0.1:{port}/api/tournaments/" in output  # the URLs it prints are where it serves
    for child in children:
        assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE, child.cmdline()
