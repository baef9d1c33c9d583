"""`--log-format json`: every line one JSON object with the same keys, whatever the logger passes."""

from __future__ import annotations

import json
import logging

from gateway.cli.logs import STANDARD_KEYS, JsonLines


def record(name: str, message: str, level: int = logging.INFO, **extra: object) -> logging.LogRecord:
    item = logging.LogRecord(name, level, __file__, 1, message, (), None)
    for key, value in extra.items():
        setattr(item, key, value)
    return item


def test_every_line_has_the_standard_keys_and_an_event() -> None:
    fmt = JsonLines()
    plain = json.loads(fmt.format(record("gateway.run", "worker w1 watching inbox")))
    assert plain["event"] == "run" and plain["level"] == "info" and plain["message"] == "worker w1 watching inbox"
    assert all(plain[k] is None for k in STANDARD_KEYS) and plain["time"].endswith("+00:00")
    fields = {"file_id": 7, "file": "a.edi", "status": "processed", "partner": "medsupply", "correlation_id": "c-1"}
    line = json.loads(fmt.format(record("gateway.files", "file 7 a.edi: processed", gateway=fields)))
    assert (line["event"], line["file_id"], line["partner"], line["correlation_id"]) == (
        "file.processed", 7, "medsupply", "c-1")  # fmt: skip
    named = {"event": "delivery.dead_letter", "document_id": 3, "delivery_id": 9, "destination": "ap"}
    line = json.loads(fmt.format(record("gateway.deliveries", "dead", logging.ERROR, gateway=named)))
    assert (line["event"], line["document_id"], line["destination"], line["level"]) == (
        "delivery.dead_letter", 3, "ap", "error")  # fmt: skip


def test_a_traceback_stays_on_its_line() -> None:
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        import sys

        item = logging.LogRecord("gateway.run", logging.ERROR, __file__, 1, "internal error", (), sys.exc_info())
    text = JsonLines().format(item)
    assert "\n" not in text and "ValueError: boom" in json.loads(text)["traceback"]
