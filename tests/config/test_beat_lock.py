"""Two beat processes never schedule at once: the advisory lock admits one."""
import pytest

from config.beat import BeatLock


@pytest.mark.django_db(databases=["default"])
def test_only_one_beat_holds_the_lock_and_the_standby_takes_over_when_it_goes():
    first, second = BeatLock(key=4242), BeatLock(key=4242)
    try:
        # given one beat holding the lock
        assert first.acquire() is True
        # then a second one stands by, and the holder keeps it
        assert second.acquire() is False
        assert first.acquire() is True
        # when the holder goes away (its connection closes, as when the process dies)
        first.release()
        # then the standby takes over
        assert second.acquire() is True
    finally:
        first.release()
        second.release()
