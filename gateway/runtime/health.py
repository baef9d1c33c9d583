"""What the service reports about itself for ``gateway status``: intake problems (a folder that cannot be
written, a file that cannot be read), kept in ``folders.run``, and folders this user cannot write.

Written by the service only when a problem appears, changes or clears, so one broken folder makes one
report, not one per file and rescan. Read by ``gateway status``, which creates nothing.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from datetime import datetime
from pathlib import Path

from gateway.settings import Deployment

log = logging.getLogger("gateway.run")


class IntakeProblems:
    """Intake problems the service reports for ``gateway status``: a JSON file per host in ``folders.run``
    (``intake-<host>.json``), rewritten only when a problem appears, changes or clears, so a folder that
    cannot be written is reported once, not at every file."""

    def __init__(self, folder: Path, worker: str) -> None:
        self.path = folder / f"intake-{socket.gethostname()}.json"
        self.worker = worker
        self.items: dict[str, dict[str, str]] = {}
        try:
            loaded = json.loads(self.path.read_text("utf-8"))
            self.items = {str(k): dict(v) for k, v in loaded.get("problems", {}).items()}
        except (OSError, ValueError, AttributeError):
            self.items = {}

    def report(self, key: str, message: str, at: datetime) -> None:
        """Set the problem ``key`` (written when new or changed)."""
        known = self.items.get(key)
        if known is not None and known.get("message") == message:
            return
        self.items[key] = {"message": message, "since": at.isoformat(timespec="seconds"), "worker": self.worker}
        self._save()

    def clear(self, key: str) -> None:
        """The problem ``key`` is gone (a file went where it could not)."""
        if self.items.pop(key, None) is not None:
            self._save()

    def _save(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.tmp")
            tmp.write_text(json.dumps({"problems": self.items}, indent=2, ensure_ascii=False), "utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:
            log.error("cannot write %s for `gateway status`: %s", self.path, exc)


def read_problems(folder: Path) -> list[str]:
    """The intake problems the services reported (``gateway status``); reads only."""
    out = []
    for path in sorted(folder.glob("intake-*.json")) if folder.is_dir() else []:
        try:
            items = json.loads(path.read_text("utf-8")).get("problems", {})
        except (OSError, ValueError, AttributeError):
            continue
        for item in items.values():
            out.append(f"{item.get('message')} (since {item.get('since')}, {item.get('worker')})")
    return out


def folder_problems(deployment: Deployment) -> list[tuple[Path, str]]:
    """Folders the service must write but cannot, with what that means (for ``gateway status``);
    creates nothing."""
    out = []
    for name in ("inbox", "outbox", "archive", "quarantine", "processed"):
        folder = deployment.path(name)
        probe = folder
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent  # not created yet: what matters is whether it can be
        if not os.access(probe, os.W_OK | os.X_OK):
            out.append((folder, f"{name} folder {folder} cannot be written by this user: files stay in the inbox"))
    return out
