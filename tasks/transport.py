"""One Redis client per kombu channel, not one per command: a cost fix for kombu 5.7.

kombu's Redis channel builds a new `redis.Redis` for each command it sends outside its
consumer loop (`Channel.conn_or_acquire`): a publish, the binding lookup before it, and the
unacked-index writes of every delivery and ack. With redis-py 8 each of those objects costs
about 0.1 ms of CPU to build (it copies its table of response callbacks), several times per
task. The client is only a handle on the channel's connection pool, and redis-py clients are
safe to share between threads (each command takes a connection from the pool), so one per
channel and pool does the same work. A channel whose pool is replaced (a reconnect) gets a
new client with it.
"""

from __future__ import annotations

from typing import Any

from kombu.transport.redis import Channel

_PATCHED = "_flowrt_reuses_clients"


def reuse_redis_clients() -> None:
    """Patch kombu's Redis `Channel` once so that it keeps one synchronous client per pool."""
    if getattr(Channel, _PATCHED, False):
        return
    build = Channel._create_client

    def _create_client(self: Any, asynchronous: bool = False) -> Any:
        if asynchronous:  # the consumer loop's own client, built once per channel already
            return build(self, True)
        pool = self.pool
        client = self.__dict__.get("_flowrt_client")
        if client is None or client.connection_pool is not pool:
            client = self._flowrt_client = build(self, False)
        return client

    Channel._create_client = _create_client  # type: ignore[method-assign]
    setattr(Channel, _PATCHED, True)
