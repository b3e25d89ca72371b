"""A bounded, thread-safe memo of spec resolutions that remembers failures too.

The daemon lives for days and users repeat the same specs, so resolutions are memoised; an
unbounded dict would grow with every typo ever sent, so this is an LRU with a fixed size.
Failures are memoised as (error class, message, data) and re-raised as *new* exception
objects: raising one stored instance again would grow its traceback on every hit.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar, cast

from siibrad.errors import SiibradError

R = TypeVar("R")

DEFAULT_MEMO_SIZE = 4096


class _Failure:
    __slots__ = ("cls", "data", "message")

    def __init__(self, error: SiibradError) -> None:
        self.cls = type(error)
        self.message = error.message
        self.data = dict(error.data)

    def rebuild(self) -> SiibradError:
        error = self.cls.__new__(self.cls)
        SiibradError.__init__(error, self.message, **self.data)
        return error


class BoundedMemo:
    """``get(key, compute)``: the memoised value of ``compute()``, or its memoised error."""

    def __init__(self, maxsize: int = DEFAULT_MEMO_SIZE) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.maxsize = maxsize
        self._entries: OrderedDict[Hashable, object] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, compute: Callable[[], R]) -> R:
        with self._lock:
            entry: object = self._entries.get(key, _MISSING)
            if entry is not _MISSING:
                self._entries.move_to_end(key)
                self.hits += 1
        if entry is _MISSING:
            try:
                entry = compute()
            except SiibradError as error:
                entry = _Failure(error)
            with self._lock:
                self.misses += 1
                self._entries[key] = entry
                self._entries.move_to_end(key)
                while len(self._entries) > self.maxsize:
                    self._entries.popitem(last=False)
        if isinstance(entry, _Failure):
            raise entry.rebuild()
        return cast(R, entry)

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def stats(self) -> dict[str, Any]:
        return {
            "size": len(self._entries),
            "maxsize": self.maxsize,
            "hits": self.hits,
            "misses": self.misses,
        }


_MISSING: Any = object()
