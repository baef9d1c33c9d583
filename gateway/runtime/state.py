"""The running service's state, for ``gateway status`` and the observers: :class:`ServiceView` (what they
read from the service), :class:`StateFile` (written every few seconds under ``run/``) and
:func:`read_states`. Apart from :mod:`gateway.runtime.observe` so that ``gateway run`` and ``gateway
status`` load ``prometheus_client`` and the HTTP server only when ``--metrics-port`` asks for them.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ServiceView", "StateFile", "read_states"]

log = logging.getLogger("gateway.run")


@dataclass
class ServiceView:
    """What the observers read from the running service (it only ever writes these)."""

    worker: str
    beats: dict[str, float] = field(default_factory=dict)  # step → wall time of its last success
    paused: Callable[[], list[str]] = list
    stale_seconds: float = 300.0
    busy: Callable[[], float | None] = lambda: None  # seconds since a long round last showed progress
    waiting: Callable[[], int] = lambda: 0  # files seen in the inbox, not yet taken (being written, or held)
    channels: Callable[[], dict[str, dict[str, Any]]] = dict  # SFTP partners' states (sftp_pull.ChannelStates)
    writes: Callable[[], dict[str, tuple[int, float, float]]] = dict  # Database.write_totals of this process

    def loop_age(self, now: float) -> float | None:
        """Seconds since the main loop last completed a round, or a round in hand (a long batch) last made
        progress, whichever is later (None before its first round)."""
        beat = self.beats.get("loop")
        if beat is None:
            return None
        age = max(0.0, now - beat)
        busy = self.busy()
        return age if busy is None else min(age, max(0.0, busy))


class StateFile:
    """The service's live state for ``gateway status``, rewritten every ``every`` seconds from a thread
    (temp file, then rename) and removed when the service stops."""

    def __init__(self, folder: Path, view: ServiceView, every: float = 2.0, extra: dict[str, Any] | None = None):
        self.path = folder / f"service-{socket.gethostname()}-{os.getpid()}.json"
        self.view = view
        self.every = every
        self.extra = dict(extra or {})
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="service-state", daemon=True)

    def start(self) -> StateFile:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._done.set()
        self._thread.join(timeout=5)
        self.path.unlink(missing_ok=True)

    def write(self) -> None:
        """Write the state now (errors are logged: ``gateway status`` then shows an older one)."""
        state = {
            "worker": self.view.worker,
            "pid": os.getpid(),
            "written_at": time.time(),
            "beats": dict(self.view.beats),
            "paused": self.view.paused(),
            "stale_seconds": self.view.stale_seconds,
            **self.extra,
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.tmp")
            tmp.write_text(json.dumps(state), "utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:
            log.error("cannot write %s for `gateway status`: %s", self.path, exc)

    def _run(self) -> None:
        while True:
            self.write()
            if self._done.wait(self.every):
                return


def read_states(folder: Path) -> list[dict[str, Any]]:
    """The state files of the services running on this deployment's ``run`` folder (``gateway status``);
    each with ``age`` (seconds since written). An unreadable one is listed with its ``error`` (never
    alive), not skipped: the operator sees that a service's state is missing."""
    out: list[dict[str, Any]] = []
    for path in sorted(folder.glob("service-*.json")) if folder.is_dir() else []:
        try:
            state = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            out.append({"worker": path.stem, "error": f"state file {path} unreadable: {exc}", "age": 1e9})
            continue
        if isinstance(state, dict):
            state["age"] = max(0.0, time.time() - float(state.get("written_at", 0)))
            out.append(state)
    return out
