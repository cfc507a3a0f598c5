"""flowrt's workers keep one Redis client per kombu channel (tasks/transport.py), not one per
command: the same messages arrive, from many threads at once, and a channel whose pool is
replaced (a reconnect) builds its client anew on the new pool."""

from __future__ import annotations

import threading

import pytest
from kombu import Connection
from kombu.transport.redis import Channel

import config
from tasks.steps import create_app
from tasks.transport import reuse_redis_clients

pytestmark = pytest.mark.redis


def test_a_flowrt_app_installs_the_fix(flowrt_env, redis_url) -> None:
    flowrt_env(FLOWRT_BROKER_URL=redis_url)
    create_app(config.load())
    assert getattr(Channel, "_flowrt_reuses_clients", False)


def test_one_channel_sends_every_command_through_one_client(redis_url) -> None:
    reuse_redis_clients()
    with Connection(redis_url) as connection:
        channel = connection.default_channel
        with channel.conn_or_acquire() as first, channel.conn_or_acquire() as second:
            assert first is second
        assert channel.client is not first  # the consumer loop's own client stays apart


def test_messages_published_from_many_threads_at_once_all_arrive(redis_url) -> None:
    reuse_redis_clients()
    threads, each = 8, 50
    with Connection(redis_url) as connection:
        queue = connection.SimpleQueue("flowrt-test-transport")
        channel = connection.default_channel

        def publish(number: int) -> None:
            producer = connection.Producer(channel=channel)
            for i in range(each):
                producer.publish({"n": number, "i": i}, routing_key="flowrt-test-transport")

        workers = [threading.Thread(target=publish, args=(n,)) for n in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        got = set()
        for _ in range(threads * each):
            message = queue.get(timeout=5)
            got.add((message.payload["n"], message.payload["i"]))
            message.ack()
        queue.close()
    assert got == {(n, i) for n in range(threads) for i in range(each)}


def test_a_channel_whose_pool_is_replaced_gets_a_client_on_the_new_pool(redis_url) -> None:
    reuse_redis_clients()
    with Connection(redis_url) as connection:
        channel = connection.default_channel
        with channel.conn_or_acquire() as before:
            assert before.ping()
        channel._pool = None  # what a reconnect does: the next use opens a new pool
        with channel.conn_or_acquire() as after:
            assert after is not before
            assert after.connection_pool is channel.pool is not before.connection_pool
            assert after.ping()
