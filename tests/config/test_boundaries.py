"""Boundaries enforced by code: import contracts and production-grade settings."""
import os
import subprocess
import sys
from pathlib import Path

from django.apps import apps
from django.db import models

BASE_DIR = Path(__file__).resolve().parent.parent.parent
SERVICES = ("tournament", "scores", "sagas", "leaderboard")


def test_import_contracts_hold():
    result = subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache"], cwd=BASE_DIR,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_foreign_key_crosses_a_service_boundary():
    for service in SERVICES:
        for model in apps.get_app_config(service).get_models():
            for field in model._meta.get_fields():
                if isinstance(field, models.ForeignObject | models.ManyToManyField):
                    assert field.related_model._meta.app_label == service, f"{model.__name__}.{field.name}"


def test_deploy_check_is_clean_under_production_settings():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.production",
           "DJANGO_SECRET_KEY": "x" * 64 + "-a-long-random-production-secret", "DJANGO_ALLOWED_HOSTS": "example.com"}
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_settings_refuse_to_start_without_a_secret_key():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SECRET_KEY"}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.production"
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=BASE_DIR, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is required" in result.stderr
