"""The store layer: configuration sources, fetching with mirrors, the per-user disk cache.

Nothing here knows about atlases or sockets; it imports only ``siibrad.errors`` and
``siibrad.settings``. Modules, one role each:

- ``fetch``: the ``Fetcher`` protocol and ``HttpFetcher`` (mirrors → cache → HTTP), contract B;
- ``download``: one HTTP download (timeouts, retries, size cap, sha256, token policy);
- ``retry``: backoff with jitter and ``Retry-After`` parsing;
- ``mirrors``: ``PREFIX=TARGET`` rules from ``SIIBRAD_MIRRORS`` / ``SIIBRAD_MIRRORS_FILE``;
- ``cache``: the diskcache index, per-URL locks, verification, eviction, ``cache_status``;
- ``archive``: safe zip/tar extraction;
- ``configuration``: ``open_configuration`` → ``ConfigurationSource``, contract C.
"""
