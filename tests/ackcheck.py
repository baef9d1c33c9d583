"""Every acknowledgment a test produces goes through the gateway's own validator (and its reader).

Tests call :func:`check_ack` on each 997/999/TA1 they get, from ``gateway ack`` or from the
runtime's outbox; each one is also kept in :data:`PRODUCED`, which ``test_verdict`` runs through
``gateway validate`` once more at the end of the session's tests that use it.
"""

from __future__ import annotations

import re

from gateway.resources import load_catalog
from gateway.x12.ack.read import FunctionalAck, TA1Ack, read_acks
from gateway.x12.validate.export import file_lines
from gateway.x12.validate.validator import Validator

PRODUCED: list[bytes] = []


def check_ack(data: bytes) -> list[FunctionalAck | TA1Ack]:
    """Assert ``data`` is one valid acknowledgment interchange; returns what it says."""
    report = Validator(load_catalog()).validate(data)
    assert report.valid, "\n".join(file_lines("ack", report)) + "\n" + data.decode("latin-1")
    assert len(report.interchanges) == 1
    for s in report.sets():
        assert s.header.set_id in ("997", "999"), s.header.set_id
    PRODUCED.append(data)
    return list(read_acks(data))


def split_interchanges(text: str) -> list[bytes]:
    """``gateway ack`` output (one interchange after another) as one bytes object per interchange."""
    return [p.encode() for p in re.split(r"(?m)^(?=ISA)", text) if p.strip()]
