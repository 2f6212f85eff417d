"""A beat scheduler that refuses to run twice: the database scheduler behind a lock.

The lock is a PostgreSQL session advisory lock held on a connection of its
own, so it is released the moment the holding beat process dies (no expiry to
tune). A second beat waits in standby and takes over when the lock frees.
"""
import logging

import psycopg
from django.db import connections
from django_celery_beat.schedulers import DatabaseScheduler

logger = logging.getLogger(__name__)

# Any constant shared by every beat process of this deployment.
BEAT_LOCK_KEY = 0x7A6B_0001
STANDBY_POLL_SECONDS = 2.0


class BeatLock:
    """A session-level advisory lock on a dedicated connection to the `default` database."""

    def __init__(self, alias: str = "default", key: int = BEAT_LOCK_KEY) -> None:
        self.alias = alias
        self.key = key
        self._conn: psycopg.Connection | None = None

    def _connect(self) -> psycopg.Connection:
        return connections[self.alias].direct_connection()

    def acquire(self) -> bool:
        """Return True while this process holds the lock, taking it if it is free."""
        try:
            if self._conn is not None and not self._conn.closed:
                self._conn.execute("SELECT 1")
                return True
            self._conn = self._connect()
            held = self._conn.execute("SELECT pg_try_advisory_lock(%s)", [self.key]).fetchone()[0]
        except psycopg.Error:
            logger.exception("beat lock: database unreachable, standing by")
            self.release()
            return False
        if not held:
            self.release()
        return bool(held)

    def release(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class SingletonDatabaseScheduler(DatabaseScheduler):
    """django-celery-beat's scheduler (entries editable in the admin), one process at a time."""

    def __init__(self, *args, **kwargs) -> None:
        self.beat_lock = BeatLock()
        self._was_leader = False
        super().__init__(*args, **kwargs)

    def tick(self, *args, **kwargs) -> float:
        if not self.beat_lock.acquire():
            if self._was_leader:
                logger.warning("beat lock lost; standing by")
                self._was_leader = False
            return STANDBY_POLL_SECONDS
        if not self._was_leader:
            logger.info("beat lock acquired; this beat schedules")
            self._was_leader = True
        return super().tick(*args, **kwargs)

    def close(self) -> None:
        self.beat_lock.release()
        super().close()
