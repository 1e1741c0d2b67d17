"""Pausing the cyclic garbage collector while many objects that form no cycles are made (a scan, big imports)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Keep the cyclic garbage collector from running while tens of thousands of objects are made.

    A scan makes them by the file (stat results, paths, headers), none in a cycle, and each
    collection walks every object alive (hundreds of thousands once pydicom, or the app, is
    loaded): a quarter of the CPU time of a warm re-scan. Reference counting frees them as ever.
    (`medtl convert` pauses it while importing numpy and pydicom too: ~90 collections, 20-30 ms.)
    On resuming, what was made meanwhile joins the oldest generation without being walked (frozen, then
    unfrozen): left young, it would all be walked by the first collection (10-15 ms after `medtl convert`'s
    imports). Cycles among it are still found, by the next full collection.
    """
    if not gc.isenabled():  # paused by someone else (a scan in another thread): theirs to resume
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.unfreeze()
        gc.enable()
