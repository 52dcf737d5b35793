"""The cache every process shares: Redis, so that limits hold across web processes.

A per-process cache (Django's default LocMemCache) would let each web process count
wrong join codes on its own: two processes, twice the guesses.
"""

from __future__ import annotations

from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import ImproperlyConfigured


class PrefixedRedisCache(RedisCache):
    """Django's Redis cache whose clear() removes only its own keys.

    The same Redis holds Celery's queue and the channel layer: the stock clear()
    (FLUSHDB) would drop queued drafts and every socket's groups with the cache.
    """

    def __init__(self, server: str, params: dict):
        super().__init__(server, params)
        if not self.key_prefix:
            raise ImproperlyConfigured("PrefixedRedisCache needs a KEY_PREFIX: clear() removes the keys under it.")

    def clear(self) -> bool:
        client = self._cache.get_client(None, write=True)
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{self.key_prefix}:*", count=500):
            batch.append(key)
            if len(batch) >= 500:
                client.delete(*batch)
                batch = []
        if batch:
            client.delete(*batch)
        return True
