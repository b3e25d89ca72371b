"""Garbage-collector policy while the long-lived catalogue is built.

A load creates about 100,000 objects that live as long as the catalogue and contain no
reference cycles. Letting the cyclic collector run meanwhile only rescans them again and again
(a third of the load time); letting it see them afterwards costs one pause of tens of
milliseconds on the first request that allocates. So collection is paused while building
(``paused``), and the finished objects are moved out of the collector's generations
(``settle``: ``gc.freeze``). Frozen objects are still freed by reference counting when the
catalogue is dropped; only cyclic garbage that existed at the freeze would stay.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """No cyclic collection inside the block; nested blocks leave it to the outermost."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def settle() -> None:
    """Move everything built so far out of the collector's way (``gc.freeze``)."""
    gc.freeze()
