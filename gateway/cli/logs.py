"""How ``gateway run`` logs: human-readable lines, or one JSON object per line (``--log-format json``).

Every JSON line has the same keys, so a log pipeline can index them without guessing: ``time`` (UTC,
ISO 8601, milliseconds), ``level``, ``event``, ``message``, ``logger``, ``correlation_id``,
``partner``, ``file_id``, ``document_id`` (null when the line is not about one), plus whatever else
the line carries (``file``, ``status``, ``reason``, ``delivery_id``, ``destination``, ``documents``,
``acks``...) and ``traceback`` for an internal error. ``event`` names what happened: ``file.received``,
``file.processed``, ``file.failed``, ``delivery.retry``, ``delivery.dead_letter``...; a line without a
named event gets its logger's (``gateway.run`` → ``run``).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

__all__ = ["FORMATS", "JsonLines", "configure_logging"]

FORMATS = ("text", "json")
STANDARD_KEYS = ("correlation_id", "partner", "file_id", "document_id")


class JsonLines(logging.Formatter):
    """One JSON object per log record (see the module docstring for its keys)."""

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "gateway", None)
        fields = dict(fields) if isinstance(fields, dict) else {}
        event = fields.pop("event", None)
        if event is None:
            status = fields.get("status")
            event = f"file.{status}" if status and "file_id" in fields else record.name.removeprefix("gateway.")
        item: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "event": event,
            "message": record.getMessage(),
            "logger": record.name,
        }
        item.update(dict.fromkeys(STANDARD_KEYS))
        item.update(fields)
        if record.exc_info:
            item["traceback"] = self.formatException(record.exc_info)
        return json.dumps(item, default=str, ensure_ascii=False)


def configure_logging(verbose: int, log_format: str) -> None:
    """The root logger to stderr, as text or JSON lines; ``-v`` info, ``-vv`` debug (per-file lines: info)."""
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonLines())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING - 10 * min(verbose, 2))
    logging.getLogger("gateway.files").setLevel(logging.DEBUG if verbose >= 2 else logging.INFO)
    logging.getLogger("alembic").setLevel(logging.INFO if verbose >= 2 else logging.WARNING)  # its set-up chatter
