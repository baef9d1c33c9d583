"""Sending an interchange again with new control numbers, linked to the original (``gateway acks
resend``): for a set the partner rejected, or whose acknowledgment never came.

The original's bytes are renumbered (:func:`gateway.x12.renumber.renumber`) with a number drawn from
the partner's persisted sequence (the one every interchange we send draws from, so it is never
reused), archived, recorded as a new outbound interchange owed to the destinations the original was
delivered to, tracked for its own acknowledgment, and linked both ways to the original with a
``retransmit`` event naming who, when and why. A resend may be resent in turn: each link is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from gateway.errors import ConfigError
from gateway.runtime.acks import ALERT_TYPES, AckTracker
from gateway.store import Archive
from gateway.store.rows import OutboundRow
from gateway.store.store import Store
from gateway.x12.renumber import renumber

__all__ = ["Resent", "resend_outbound"]

NOT_RESENT = ("997", "999", "TA1", *ALERT_TYPES)
"""Outbound kinds a resend refuses: acknowledgments answer one interchange (send them again as they
were, with ``gateway retransmit``), alerts are not X12."""


@dataclass(frozen=True, slots=True)
class Resent:
    """The new outbound interchange, its bytes and the deliveries it is owed."""

    original: OutboundRow
    row: OutboundRow
    data: bytes
    delivery_ids: tuple[int, ...]


def resend_outbound(
    store: Store,
    archive: Archive,
    tracker: AckTracker,
    outbound_id: int,
    *,
    actor: str,
    reason: str,
    clock: Callable[[], datetime],
    worker: str,
    destinations: list[str] | None = None,
) -> Resent:
    """Send outbound ``outbound_id`` again under a new ISA13/GS06 (ST02 renumbered), to ``destinations``
    (default: every destination the original was owed to). Raises NotFoundError (no such interchange),
    ConfigError (ACK-002: it cannot be resent; ACK-003: no reason, or nowhere to send it)."""
    if not reason.strip():
        raise ConfigError("a resend needs a reason (--reason): it is kept in the ledger", "ACK-003")
    original = store.get_outbound(outbound_id)
    if original.kind in NOT_RESENT:
        raise ConfigError(
            f"outbound {outbound_id} is a {original.kind}: only documents we sent are resent with new numbers",
            "ACK-002",
        )
    targets = destinations or sorted(
        {d.destination for d in store.list_deliveries(outbound_id=original.id, limit=1000)}
    )
    if not targets:
        raise ConfigError(
            f"outbound {outbound_id} was never owed to a destination: name one (--destination)", "ACK-003"
        )
    data = archive.read(original.sha256)
    number = store.next_interchange_number(original.partner_id)
    fresh = renumber(data, number, clock())
    sha = archive.put(fresh)
    tracked = bool(store.list_owed_acks(outbound_id=original.id, limit=1))
    row = store.add_outbound(
        original.partner_id,
        original.kind,
        sha,
        control_number=f"{number:09d}",
        group_control_number=str(number),
        reason=f"resend of outbound {original.id}: {reason}",
        expected_ack="pending" if tracked or original.expected_ack is not None else None,
        correlation_id=original.correlation_id,
        deliver_to=targets,
        worker=worker,
    )
    if row.expected_ack is not None:
        tracker.track(row, resent_from=original.id)
    store.link_resend(original, row, actor, reason)
    ids = tuple(sorted(d.id for d in store.list_deliveries(outbound_id=row.id, limit=1000)))
    return Resent(original, row, fresh, ids)
