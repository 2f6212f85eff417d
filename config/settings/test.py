"""Test settings: the same servers as configured, but a database of their own.

Every alias's database name gets a `_test` suffix; `tests/conftest.py` creates
those databases afresh and migrates them, and the Celery workers the tests
start use these settings too, so test and worker see the same data.
"""
import os

from .base import *  # noqa: F401,F403
from .base import DATABASES

for _config in DATABASES.values():
    if not _config["NAME"].endswith("_test"):
        _config["NAME"] = f"{_config['NAME']}_test"
    _config["TEST"] = {"NAME": _config["NAME"]}
    # Tests open many short-lived connections from several processes.
    _config["CONN_MAX_AGE"] = 0

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Sagas: short deadlines and backoffs so recovery tests take seconds; faults injectable.
SAGAS_STEP_TIMEOUT = float(os.environ.get("SAGAS_STEP_TIMEOUT", "3"))
SAGAS_DEADLINE = float(os.environ.get("SAGAS_DEADLINE", "20"))
SAGAS_RETRY_BACKOFF = float(os.environ.get("SAGAS_RETRY_BACKOFF", "0.05"))
SAGAS_RETRY_BACKOFF_MAX = float(os.environ.get("SAGAS_RETRY_BACKOFF_MAX", "0.5"))
SAGAS_STEP_MAX_RETRIES = int(os.environ.get("SAGAS_STEP_MAX_RETRIES", "3"))
SAGAS_FAULT_INJECTION = True
