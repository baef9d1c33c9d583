"""The garbage collector's settings while a command streams a file (the command line's edge).

Why: reading a big file allocates millions of short-lived lists, tuples and dicts (segments, scopes,
map values, models). CPython's cyclic collector runs every 700 of them and, every so often, walks the
whole heap, which after start-up holds the definitions, the compiled maps and pydantic's schemas
(about 100,000 objects). Measured on `translate --json` of a 5 MB ship-notice file, the collector
took about 0.45 s of CPU, 10-12 % of the process. Start-up objects live as long as the process, so
they are frozen out of the collector's walks, and young objects are collected every 20,000 instead of
every 700 (almost all of them are freed by reference counting long before that): about 0.07 s left.
Nothing is disabled, cycles are still collected, and the settings are put back when the command ends.

``gateway run`` runs its whole loop this way: every batch allocates the same short-lived objects
(segments, canonical models, rows, SQLAlchemy parameters), and without it the collector walked the
start-up heap over and over (see docs/performance.md, "Delivery").
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 20_000
"""Allocations between two collections of the youngest generation while streaming (CPython's: 700)."""


@contextmanager
def streaming_heap(young: int = YOUNG_THRESHOLD) -> Iterator[None]:
    """Within the block: what exists now is left out of the collector's walks, and the youngest
    generation is collected every ``young`` allocations; both are undone on the way out."""
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(young, before[0]), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


__all__ = ["YOUNG_THRESHOLD", "streaming_heap"]
