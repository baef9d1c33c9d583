"""Sending our purchase orders: a canonical purchase order rendered as the partner's X12 850, numbered
from the partner's persisted sequence, archived, and recorded as an outbound interchange together with
its deliveries (one transaction), then delivered like everything else that leaves.

One code path for ``gateway send`` and the send folder (:mod:`gateway.runtime.sendfolder`). Every order
is rendered once with a placeholder number before any number is drawn, so a file with one bad order
draws nothing. An ``origin`` (the send folder's file and its digest) makes recording idempotent: an
order already recorded under it (a crash after recording, before the file was moved away) is found and
not numbered again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from gateway.canonical import PurchaseOrder
from gateway.outbound import OutboundMap, RenderError, render_850
from gateway.outbound.library import OutboundLibrary
from gateway.outbound_loader import load_outbound
from gateway.partners.profile import Profile
from gateway.planning import Router, default_outbound_router
from gateway.store import Archive
from gateway.store.search import keys_of
from gateway.store.store import Store
from gateway.workspace import Workspace

__all__ = ["CHECK_NUMBER", "ControlCounter", "OrderSender", "SentOrder"]

CHECK_NUMBER = 999_999_999
"""The placeholder control number of the trial render (never drawn: the sequence wraps before it)."""


class ControlCounter:
    """Control numbers for one interchange: ISA13 and GS06 are ``number`` (as the runtime's acks), ST02
    counts from 1 inside the group."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.sets = 0

    def __call__(self, kind: str) -> int:
        if kind == "set":
            self.sets += 1
            return self.sets
        return self.number


@dataclass(frozen=True, slots=True)
class SentOrder:
    """One purchase order recorded for sending: its 850's bytes, the outbound row, its deliveries."""

    po_number: str
    data: bytes
    outbound_id: int
    control_number: str
    delivery_ids: tuple[int, ...]
    earlier: bool = False  # recorded by an earlier attempt (found by its origin), not numbered again
    unrouted: str | None = None  # why no outbound rule matched it (recorded ``unrouted``, delivered nowhere)


class OrderSender:
    """Renders, numbers, archives and records purchase orders for one deployment's partners."""

    def __init__(
        self,
        workspace: Workspace,
        store: Store | None,
        archive: Archive,
        *,
        clock: Callable[[], datetime] = datetime.now,
        router: Router = default_outbound_router,
    ) -> None:
        """``store`` None: only :meth:`render` and :meth:`problems` (a test interchange numbered by hand).
        ``router``: where each 850 goes (the outbound rules; default: ``partner-outbox``)."""
        self.workspace = workspace
        self.store = store
        self.archive = archive
        self.clock = clock
        self.router = router
        self._library: OutboundLibrary | None = None

    def outbound_map(self, profile: Profile) -> OutboundMap:
        """The partner's 850 map. Raises MapLoadError (the outbound maps have problems) or ConfigError
        (the partner has no usable 850 map)."""
        if self._library is None:
            ws = self.workspace
            self._library = load_outbound(ws.root, ws.catalog, partners=ws.partners, profile_files=ws.profile_files)
        return self._library.for_partner(profile, "850")

    def render(self, profile: Profile, order: PurchaseOrder, number: int, when: datetime) -> bytes:
        """The order as ``profile``'s 850 numbered ``number``. Raises RenderError listing every problem."""
        return render_850(
            order,
            profile,
            self.outbound_map(profile),
            control_numbers=ControlCounter(number),
            when=when,
            xrefs=self.workspace.xrefs.get(profile.id),
        )

    def problems(self, profile: Profile, orders: Sequence[PurchaseOrder], name: str) -> list[str]:
        """Every problem writing ``orders`` for ``profile`` (``name: PO n: field: [code] message``), found by
        a trial render under a placeholder number; empty when all can be written."""
        found: list[str] = []
        when = self.clock()
        for order in orders:
            try:
                self.render(profile, order, CHECK_NUMBER, when)
            except RenderError as exc:
                found.extend(
                    f"{name}: PO {order.po_number}: {e.location.path or e.location.describe()}: [{e.code}] {e.message}"
                    for e in exc.errors
                )
        return found

    def record(
        self,
        profile: Profile,
        orders: Sequence[PurchaseOrder],
        *,
        command: str,
        deliver: bool,
        worker: str | None,
        origin: str | None = None,
    ) -> list[SentOrder]:
        """Each order numbered from the partner's sequence, rendered, archived and recorded; with ``deliver``,
        routed by the outbound rules (partner, ``850``, test, predicates over the order) and recorded with
        its deliveries and the decision (no rule matching: ``unrouted``, kept for an operator). With
        ``origin``, an order already recorded under it is returned as it was (``earlier``), not numbered
        again. Call :meth:`problems` first: a RenderError here leaves the orders before it recorded."""
        if self.store is None:
            raise ValueError("OrderSender.record needs a store")
        sent: list[SentOrder] = []
        when = self.clock()
        for n, order in enumerate(orders, 1):
            reason = f"gateway {command}: PO {order.po_number}"
            if origin is not None:
                reason += f" ({origin}, order {n} of {len(orders)})"
                found = self.store.list_outbound(partner_id=profile.id, kind="850", reason=reason, limit=1)
                if found:
                    row = found[0]
                    sent.append(self._sent(profile.id, order, row.id, row.control_number, row.sha256, True, row.route))
                    continue
            routes: list[tuple[str, str | None]] = []
            decision: dict[str, Any] | None = None
            if deliver:
                test = bool(order.provenance.test)
                routes, decision = self.router(profile.id, "850", test, partial(order.model_dump, mode="json"))
            number = self.store.next_interchange_number(profile.id)
            data = self.render(profile, order, number, when)
            sha = self.archive.put(data)
            row = self.store.add_outbound(
                profile.id,
                "850",
                sha,
                control_number=f"{number:09d}",
                group_control_number=str(number),
                reason=reason,
                expected_ack="pending",
                deliver_to=routes,
                worker=worker,
                keys=keys_of(order.model_dump(mode="json")),
                route=decision,
            )
            sent.append(self._sent(profile.id, order, row.id, row.control_number, sha, False, decision, data))
        return sent

    def _sent(
        self,
        partner: str,
        order: PurchaseOrder,
        outbound_id: int,
        control: str | None,
        sha: str,
        earlier: bool,
        route: dict[str, Any] | None,
        data: bytes | None = None,
    ) -> SentOrder:
        assert self.store is not None
        # Our own 850 is the chain's order: indexed for reconciliation (again, harmlessly, after a restart).
        self.store.index_sent_order(partner, order.po_number, order.model_dump_json(), outbound_id)
        deliveries = self.store.list_deliveries(outbound_id=outbound_id, limit=100)
        return SentOrder(
            po_number=order.po_number,
            data=data if data is not None else self.archive.read(sha),
            outbound_id=outbound_id,
            control_number=control or "",
            delivery_ids=tuple(sorted(d.id for d in deliveries)),
            earlier=earlier,
            unrouted=str(route.get("reason", "")) or "no rule matches it" if route and route.get("unrouted") else None,
        )
