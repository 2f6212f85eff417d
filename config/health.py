"""`GET /healthz`: is every database alias and the broker reachable?"""
from django.conf import settings
from django.db import connections
from django.http import HttpRequest, JsonResponse
from kombu import Connection

from sagas.relay import outbox_figures

PROBE_TIMEOUT_SECONDS = 2


def database_status(alias: str) -> str:
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any failure means "down"; the reason is reported
        connections[alias].close()
        return f"down: {exc.__class__.__name__}: {exc}".strip()
    return "ok"


def broker_status() -> str:
    try:
        with Connection(settings.CELERY_BROKER_URL, connect_timeout=PROBE_TIMEOUT_SECONDS,
                        transport_options={"socket_timeout": PROBE_TIMEOUT_SECONDS}) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=PROBE_TIMEOUT_SECONDS)
            # Redis connects lazily; a round trip proves the server answers.
            conn.default_channel.client.ping()
    except Exception as exc:  # any failure means "down"; the reason is reported
        return f"down: {exc.__class__.__name__}: {exc}".strip()
    return "ok"


def healthz(request: HttpRequest) -> JsonResponse:
    """Report each database alias and the broker; 503 when any is down."""
    checks = {f"database:{alias}": database_status(alias) for alias in connections}
    checks["broker"] = broker_status()
    healthy = all(status == "ok" for status in checks.values())
    body = {"status": "ok" if healthy else "down", "checks": checks, "outboxes": outbox_status()}
    return JsonResponse(body, status=200 if healthy else 503)


def outbox_status() -> list[dict] | str:
    """Report each outbox's backlog, dead rows and oldest pending age (figures, not a pass/fail check)."""
    try:
        return outbox_figures()
    except Exception as exc:  # a database down is already reported above
        return f"unavailable: {exc.__class__.__name__}"
