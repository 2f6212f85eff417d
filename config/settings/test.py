"""Test settings: the same servers as configured, but a database of their own.

Every alias's database name gets a `_test` suffix; `tests/conftest.py` creates
those databases afresh and migrates them, and the Celery workers the tests
start use these settings too, so test and worker see the same data.
"""
from .base import *  # noqa: F401,F403
from .base import DATABASES

for _config in DATABASES.values():
    if not _config["NAME"].endswith("_test"):
        _config["NAME"] = f"{_config['NAME']}_test"
    _config["TEST"] = {"NAME": _config["NAME"]}
    # Tests open many short-lived connections from several processes.
    _config["CONN_MAX_AGE"] = 0

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
