"""Glue between the ``map/*`` and ``cache/*`` handlers and the maps domain.

Contract: :func:`map_store` returns the daemon's one :class:`MapStore` (created on first use in
``ctx.services["maps"]`` with an :class:`HttpFetcher` on the daemon's settings);
:func:`map_progress` adapts the domain's ``progress(message, done, total)`` callbacks to
``$/progress`` begin/report/end, starting only once the work has lasted a second (short
requests send nothing) and checking for cancellation at every report;
:func:`export_nifti` writes an array as a ``.nii.gz`` in the shared cache, atomically, once per
key, so ``map/fetch`` can answer with a path that MATLAB or R open directly.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nibabel as nib
import numpy as np
import numpy.typing as npt

from siibrad.maps.store import MapStore, Progress
from siibrad.store.fetch import HttpFetcher

if TYPE_CHECKING:
    from siibrad.methods import MethodContext

PROGRESS_AFTER_S = 1.0
"""Work shorter than this sends no ``$/progress`` at all."""
_REPORT_EVERY_S = 0.2
_CREATE_LOCK = threading.Lock()


def map_store(ctx: MethodContext) -> MapStore:
    """The daemon-wide MapStore (one per process, shared by all clients)."""
    store = ctx.services.get("maps")
    if store is None:
        with _CREATE_LOCK:
            store = ctx.services.get("maps")
            if store is None:
                store = MapStore(ctx.settings, HttpFetcher(ctx.settings), ctx.catalog)
                ctx.services["maps"] = store
    assert isinstance(store, MapStore)
    return store


@contextmanager
def map_progress(ctx: MethodContext, title: str) -> Iterator[Progress]:
    """A domain progress callback that becomes ``$/progress`` after one second of work."""
    started = time.monotonic()
    state = {"begun": False, "last": 0.0}

    def report(message: str, done: int, total: int | None) -> None:
        ctx.check_cancelled()
        now = time.monotonic()
        if now - started < PROGRESS_AFTER_S:
            return
        percentage = int(100 * done / total) if total else None
        if not state["begun"]:
            state["begun"] = True
            ctx.progress("begin", title=title, message=message, percentage=percentage)
        elif now - float(state["last"]) >= _REPORT_EVERY_S or (total and done >= total):
            ctx.progress("report", message=message, percentage=percentage)
        else:
            return
        state["last"] = now

    try:
        yield report
    finally:
        if state["begun"]:
            ctx.progress("end", message="done")


def export_nifti(
    folder: Path, key: str, array: np.ndarray[Any, Any], affine: npt.NDArray[np.float64]
) -> Path:
    """The path of ``array`` as NIfTI under ``folder``, written once per ``key``."""
    name = hashlib.sha256(key.encode()).hexdigest()[:32] + ".nii.gz"
    target = folder / name
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    image = nib.Nifti1Image(np.asarray(array), np.asarray(affine, dtype=np.float64))  # type: ignore[no-untyped-call]
    fd, tmp = tempfile.mkstemp(prefix=".export-", suffix=".nii.gz", dir=folder)
    os.close(fd)
    try:
        nib.save(image, tmp)
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target
