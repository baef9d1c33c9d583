"""The dashboard's actions, each the same code as its command (so the page and the CLI cannot disagree):

================== ========================= ===============================================
action             on                        the same code as
================== ========================= ===============================================
retransmit         a document id             ``gateway retransmit DOCUMENT_ID``
reprocess          a file id                 ``gateway reprocess FILE_ID``
release            a file id (held)          ``gateway release FILE_ID``
requeue            a file id (failed)        ``gateway requeue FILE_ID``
deadletter-retry   a delivery id             ``gateway deadletters retry ID``
deadletter-discard a delivery id             ``gateway deadletters discard ID``
resolve            an exception id           ``gateway recon resolve ID``
waive              an exception id           ``gateway recon waive ID``
================== ========================= ===============================================

Each records the web user (``web:NAME``) where the command records the OS user, with the reason given.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.cli.bulk_cli import retransmit_document
from gateway.cli.deliveries_cli import put_back
from gateway.cli.recon_cli import settle

__all__ = ["ACTIONS", "Action"]


@dataclass(frozen=True, slots=True)
class Action:
    """One action: what it acts on, how to say what it will do, how to run it."""

    name: str
    title: str
    subject: str  # document, file, delivery or exception
    describe: Callable[[Any, int], str]  # (dashboard, id) → what it will act on; NotFoundError when absent
    run: Callable[[Any, int, str, str], str]  # (dashboard, id, reason, who) → the outcome in words
    back: Callable[[int], str]  # where the outcome is shown by default


def _document(dash: Any, document_id: int) -> str:
    d = dash.store.get_document(document_id)
    key = f" {d.business_key}" if d.business_key else ""
    return f"document {d.id}: {d.doc_type}{key} from {d.partner_id or 'an unknown partner'} ({d.status})"


def _file(dash: Any, file_id: int) -> str:
    f = dash.store.get_file(file_id)
    return f"file {f.id} {f.name} from {f.partner_id or 'an unknown partner'} ({f.status})"


def _delivery(dash: Any, delivery_id: int) -> str:
    d = dash.store.get_delivery(delivery_id)
    what = f"document {d.document_id}" if d.document_id is not None else f"outbound {d.outbound_id}"
    return f"delivery {d.id} of {what} ({d.doc_type}) to {d.destination}: {d.status} after {d.attempts} attempt(s)"


def _exception(dash: Any, exception_id: int) -> str:
    e = dash.store.get_exception(exception_id)
    line = f" line {e.line}" if e.line else ""
    return f"exception {e.id} ({e.status}): {e.kind} on PO {e.po_number}{line} of {e.partner_id}: {e.reason}"


def _retransmit(dash: Any, document_id: int, reason: str, who: str) -> str:
    new = retransmit_document(dash.store, document_id, who, reason)
    if not new:
        return f"document {document_id}: nothing to retransmit (it was never routed to a destination)"
    return f"document {document_id}: {len(new)} new delivery(ies) {', '.join(map(str, new))}, due now"


def _reprocess(dash: Any, file_id: int, reason: str, who: str) -> str:
    done = dash.store.reprocess_files([file_id], who, reason)
    return "; ".join(f"file {parent} reprocessed as file {new} (received: the running gateway translates it)"
                     for parent, new in done)  # fmt: skip


def _put_back(kind: str) -> Callable[[Any, int, str, str], str]:
    def run(dash: Any, file_id: int, reason: str, who: str) -> str:
        row = put_back(dash.store, kind, file_id, reason, who)
        return f"file {file_id} {row.name}: {row.status} -> received (the running gateway processes it again)"

    return run


def _retry(dash: Any, delivery_id: int, reason: str, who: str) -> str:
    done = dash.store.retry_deliveries([delivery_id], who, reason)
    return f"delivery {', '.join(map(str, done))} queued again (due now)"


def _discard(dash: Any, delivery_id: int, reason: str, who: str) -> str:
    done = dash.store.discard_deliveries([delivery_id], who, reason)
    return f"delivery {', '.join(map(str, done))} discarded"


def _settle(status: str) -> Callable[[Any, int, str, str], str]:
    def run(dash: Any, exception_id: int, reason: str, who: str) -> str:
        row, released = settle(dash.deployment, dash.store, exception_id, status, reason, who)
        billing = f"; {released} billing event(s) released" if released else ""
        return f"exception {row.id} {row.status}: {row.kind} on PO {row.po_number} ({row.partner_id}){billing}"

    return run


def _at(path: str) -> Callable[[int], str]:
    return lambda entity_id: path.format(id=entity_id)


ACTIONS: dict[str, Action] = {
    a.name: a
    for a in (
        Action("retransmit", "Retransmit the document", "document", _document, _retransmit, _at("/documents/{id}")),
        Action("reprocess", "Reprocess the file", "file", _file, _reprocess, _at("/files/{id}")),
        Action("release", "Release the held file", "file", _file, _put_back("release"), _at("/files/{id}")),
        Action("requeue", "Requeue the failed file", "file", _file, _put_back("requeue"), _at("/files/{id}")),
        Action("deadletter-retry", "Retry the dead letter", "delivery", _delivery, _retry, _at("/deadletters")),
        Action("deadletter-discard", "Discard the dead letter", "delivery", _delivery, _discard, _at("/deadletters")),
        Action("resolve", "Resolve the exception", "exception", _exception, _settle("resolved"), _at("/recon")),
        Action("waive", "Waive the exception", "exception", _exception, _settle("waived"), _at("/recon")),
    )
}
"""Every action by its name in ``/actions/{name}/{id}``."""
