"""Work on many patients at once (the sweep's chunks) without Python's cyclic garbage
collector running over it.

A chunk's load builds a few hundred thousand small objects (doses, diary days, results) that
live until the chunk is reconciled. Each of them counts towards the collector's thresholds,
so loading one chunk ran about three full collections, each walking every object the
process holds: half of the load's CPU and a quarter of the evaluation's (issue 18, 1,000
patients a chunk with a year each). These objects hold no reference cycles (tuples,
frozen dataclasses, dicts of them), so reference counting frees them as it always does;
the collector is only paused for the length of the batch and resumes where it was (a cycle
made inside the block waits for its next run: the memory of one batch at most).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["paused_gc"]


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector inside the block (nested blocks: only the
    outermost resumes it; a collector already disabled by the caller stays disabled)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
