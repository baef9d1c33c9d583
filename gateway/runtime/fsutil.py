"""Small file operations the runtime needs (moves that never overwrite).

Durable writes (temporary name, sync, rename) are :class:`gateway.store.durable.SyncGroup`'s, which
publishes a whole batch's files with one sync.
"""

from __future__ import annotations

from pathlib import Path


def unique_target(folder: Path, name: str) -> Path:
    """``folder/name``, or ``folder/name.N`` when taken (moves never overwrite)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    n = 1
    while target.exists():
        target = folder / f"{name}.{n}"
        n += 1
    return target
