"""The Redis transport (`config.broker`): one client per channel, through which messages still travel."""
import uuid

from celery import current_app
from kombu import Queue

from config.broker import Transport


def test_a_channel_reuses_one_redis_client_and_builds_a_new_one_for_a_new_pool(broker):
    with current_app.connection_for_write() as connection:
        assert isinstance(connection.transport, Transport)
        channel = connection.default_channel
        client = channel._create_client()
        assert channel._create_client() is client
        # a reconnection replaces the channel's pool: a client of the old pool must not outlive it
        channel._pool = None
        renewed = channel._create_client()
        assert renewed is not client and renewed.connection_pool is channel.pool


def test_messages_published_and_acknowledged_through_the_cached_client_leave_nothing_behind(broker):
    queue = Queue(f"test-broker-{uuid.uuid4().hex[:8]}")
    with current_app.connection_for_write() as connection:
        with connection.Producer() as producer:
            for n in range(3):
                producer.publish({"n": n}, routing_key=queue.name, declare=[queue], serializer="json")
        bound = queue(connection.default_channel)
        received = []
        for _ in range(3):
            message = bound.get(no_ack=False)
            received.append(message.payload["n"])
            message.ack()
        assert received == [0, 1, 2]
        assert bound.get() is None
        assert not [raw for raw in broker.hvals("unacked") if queue.name.encode() in raw]  # every ack landed
    broker.delete(queue.name)
