"""Retention: purging old files' archived bytes and ledger detail, with an audit row for each.

:meth:`RetentionOps.purge` runs in one write transaction, so what the holds (:mod:`gateway.store.holds`)
see is what it purges: it picks the files received before the cutoff (and older than their partner's
retention policy), refuses every one a hold matches, and for the rest clears the ledger detail (the
file's recorded results, its sets' error lists, its documents' canonical JSON, its deliveries'
responses) while keeping the lineage rows, statuses and events, and writes a ``purges`` row per file:
hash, size, name, partner, dates, counts, who and why. A blob leaves the archive only with the last
file that uses it (and never while an outbound interchange or a dead letter's payload is that blob).

Concurrency with a running gateway: the transaction locks the chosen files (SQLite: the write lock)
and, per blob, the advisory lock a reprocess takes (:func:`~gateway.store.bulk.blob_lock`), so a
reprocess either finished before (its new file is ``received``: a hold keeps the blob) or starts after
(it sees the purge and refuses). Blobs are moved aside inside the transaction and deleted after the
commit; if the transaction fails they are put back. A dry run goes through the same steps and
changes nothing, so its counts are the real run's.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, exists, func, select, update

from gateway.store.archive import Archive
from gateway.store.base import EVENT_INSERT, StoreBase, to_json
from gateway.store.bulk import blob_lock
from gateway.store.errors import ArchiveError, StoreValueError
from gateway.store.holds import HOLDS
from gateway.store.schema import deliveries, delivery_attempts, documents, files, outbound, purges, transaction_sets
from gateway.store.statuses import EntityKind, EventAction

__all__ = ["PurgeReport", "PurgedFile", "RetentionOps"]

_TRASH = "purging"


@dataclass(frozen=True, slots=True)
class PurgedFile:
    """One file a purge removed (or, in a dry run, would remove)."""

    file_id: int
    partner_id: str | None
    name: str
    sha256: str
    size: int
    received_at: datetime
    blob_removed: bool
    counts: dict[str, int]


@dataclass(slots=True)
class PurgeReport:
    """What a purge did: ``purged`` files, ``refused`` file ids by hold name, ``kept_by_policy`` ids (their
    partner keeps files longer than ``--older-than``), the run id of its audit rows."""

    run_id: str
    cutoff: datetime
    dry_run: bool
    purged: list[PurgedFile] = field(default_factory=list)
    refused: dict[str, list[int]] = field(default_factory=dict)
    kept_by_policy: list[int] = field(default_factory=list)

    @property
    def bytes_removed(self) -> int:
        """Archive bytes freed (blobs removed, each counted once)."""
        return sum({p.sha256: p.size for p in self.purged if p.blob_removed}.values())


def _withdraw(archive: Archive, sha: str) -> Path | None:
    """Move the blob ``sha`` aside (same file system: a rename); None when it is not there."""
    source = archive.path(sha)
    trash = archive.root / _TRASH
    trash.mkdir(mode=0o700, exist_ok=True)
    target = trash / sha
    try:
        os.replace(source, target)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ArchiveError(f"cannot move blob {sha} out of {archive.root}: {exc}") from exc
    return target


class RetentionOps(StoreBase):
    """Purging past a retention policy, the audit rows, and what the archive should hold."""

    def purge(
        self,
        archive: Archive,
        *,
        older_than: timedelta,
        label: str,
        keep: Callable[[str | None], timedelta],
        actor: str,
        reason: str,
        partner: str | None = None,
        dry_run: bool = False,
    ) -> PurgeReport:
        """Purge the files received more than ``older_than`` ago (and more than ``keep(partner)`` ago), of
        ``partner`` only if given, that no hold protects. ``label`` is the duration as the operator wrote
        it (kept in the audit rows). With ``dry_run`` nothing changes."""
        if not reason.strip():
            raise StoreValueError("a reason is required")
        now = self._now()
        report = PurgeReport(str(uuid.uuid4()), now - older_than, dry_run)
        moved: list[tuple[Path, Path]] = []
        try:
            with self._db.write("purge past the retention policy") as conn:
                self._purge_on(conn, archive, report, now, keep, partner, label, actor, reason, moved)
        except BaseException:
            for aside, home in moved:  # the ledger still says they are there: put them back
                with contextlib.suppress(OSError):
                    os.replace(aside, home)
            raise
        for aside, _home in moved:
            with contextlib.suppress(FileNotFoundError):
                aside.unlink()
        return report

    def _purge_on(
        self,
        conn: Connection,
        archive: Archive,
        report: PurgeReport,
        now: datetime,
        keep: Callable[[str | None], timedelta],
        partner: str | None,
        label: str,
        actor: str,
        reason: str,
        moved: list[tuple[Path, Path]],
    ) -> None:
        base: list[ColumnElement[bool]] = [
            files.c.received_at < report.cutoff,
            ~exists().where(purges.c.file_id == files.c.id),
        ]
        if partner is not None:
            base.append(files.c.partner_id == partner)
        # FOR NO KEY UPDATE: a reprocess inserting a child file (a key share on its parent) is not blocked,
        # so it can finish while this waits for its blob lock; a retransmit's share lock waits.
        query = select(files).where(and_(*base)).order_by(files.c.id).with_for_update(key_share=True)
        candidates = {int(r["id"]): r for r in conn.execute(query).mappings()}
        report.kept_by_policy = [i for i, r in candidates.items() if r["received_at"] >= now - keep(r["partner_id"])]
        held: set[int] = set()
        for hold in HOLDS:
            ids = sorted(int(i) for i in conn.execute(select(files.c.id).where(and_(*base), hold.clause())).scalars())
            ids = [i for i in ids if i in candidates and i not in report.kept_by_policy]
            if ids:
                report.refused[hold.name] = ids
                held.update(ids)
        chosen = [i for i in candidates if i not in held and i not in report.kept_by_policy]
        if not chosen:
            return
        removable = self._removable_blobs(conn, {candidates[i]["sha256"] for i in chosen}, chosen)
        counts = self._detail_counts(conn, chosen)
        for i in chosen:
            r = candidates[i]
            report.purged.append(
                PurgedFile(
                    i, r["partner_id"], r["name"], r["sha256"], int(r["size"]), r["received_at"],
                    r["sha256"] in removable, counts[i],
                )
            )  # fmt: skip
        if report.dry_run:
            return
        self._clear_detail(conn, chosen)
        conn.execute(
            purges.insert(),
            [
                {
                    "run_id": report.run_id,
                    "file_id": p.file_id,
                    "partner_id": p.partner_id,
                    "sha256": p.sha256,
                    "size": p.size,
                    "name": p.name,
                    "received_at": p.received_at,
                    "blob_removed": p.blob_removed,
                    "counts": to_json(p.counts, "purge counts"),
                    "older_than": label,
                    "actor": actor,
                    "reason": reason,
                    "purged_at": now,
                }
                for p in report.purged
            ],
        )
        # The file's own history says it too (``gateway messages show``): an event with who, when and why.
        events = [
            self.event_row(
                kind=EntityKind.FILE,
                entity_id=p.file_id,
                file_id=p.file_id,
                action=EventAction.STATUS,
                from_status=candidates[p.file_id]["status"],
                to_status=candidates[p.file_id]["status"],
                at=now,
                reason=f"purged (older than {label}): {reason}",
                details={"purge_run": report.run_id, "blob_removed": p.blob_removed, **p.counts},
                correlation_id=candidates[p.file_id]["correlation_id"],
                actor=actor,
            )
            for p in report.purged
        ]
        conn.execute(EVENT_INSERT, events)
        for sha in sorted(removable):
            aside = _withdraw(archive, sha)
            if aside is not None:
                moved.append((aside, archive.path(sha)))

    @staticmethod
    def _removable_blobs(conn: Connection, shas: set[str], chosen: list[int]) -> set[str]:
        """The blobs of ``chosen`` no other file still in the ledger, no outbound row and no dead letter's
        payload uses; each locked against a concurrent reprocess first."""
        removable = set()
        for sha in sorted(shas):
            blob_lock(conn, sha)
            other_file = exists().where(
                files.c.sha256 == sha,
                files.c.id.not_in(chosen),
                ~exists().where(purges.c.file_id == files.c.id),
            )
            used = select(
                other_file
                | exists().where(outbound.c.sha256 == sha)
                | exists().where(deliveries.c.payload_sha256 == sha)
            )
            if not conn.execute(used).scalar():
                removable.add(sha)
        return removable

    @staticmethod
    def _detail_counts(conn: Connection, chosen: list[int]) -> dict[int, dict[str, int]]:
        """Per file: how many documents, sets, deliveries and delivery attempts lose their detail."""
        counts: dict[int, dict[str, int]] = {i: {} for i in chosen}
        per_file = [
            ("documents", documents.c.file_id, documents),
            ("sets", transaction_sets.c.file_id, transaction_sets),
            ("deliveries", deliveries.c.file_id, deliveries),
        ]
        for name, column, table in per_file:
            query = select(column, func.count()).select_from(table).where(column.in_(chosen)).group_by(column)
            found = {int(k): int(n) for k, n in conn.execute(query)}
            for i in chosen:
                counts[i][name] = int(found.get(i, 0))
        query = (
            select(deliveries.c.file_id, func.count())
            .select_from(delivery_attempts.join(deliveries, delivery_attempts.c.delivery_id == deliveries.c.id))
            .where(deliveries.c.file_id.in_(chosen))
            .group_by(deliveries.c.file_id)
        )
        attempts = {int(k): int(n) for k, n in conn.execute(query)}
        for i in chosen:
            counts[i]["attempts"] = int(attempts.get(i, 0))
        return counts

    @staticmethod
    def _clear_detail(conn: Connection, chosen: list[int]) -> None:
        """Clear what the files' rows say about their content; keep the lineage, statuses and events."""
        conn.execute(update(files).where(files.c.id.in_(chosen)).values(results=None, results_at=None))
        conn.execute(update(transaction_sets).where(transaction_sets.c.file_id.in_(chosen)).values(errors="[]"))
        conn.execute(update(documents).where(documents.c.file_id.in_(chosen)).values(canonical="null", warnings=None))
        conn.execute(update(deliveries).where(deliveries.c.file_id.in_(chosen)).values(last_response=None))
        ids = select(deliveries.c.id).where(deliveries.c.file_id.in_(chosen)).scalar_subquery()
        conn.execute(update(delivery_attempts).where(delivery_attempts.c.delivery_id.in_(ids)).values(response=None))

    def list_purges(self, partner: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The audit rows, newest first; ``counts`` decoded."""
        query = select(purges).order_by(purges.c.id.desc()).limit(limit)
        if partner is not None:
            query = query.where(purges.c.partner_id == partner)
        with self._db.read("list purges") as conn:
            return [dict(r) | {"counts": json.loads(r["counts"])} for r in conn.execute(query).mappings()]

    def archive_blobs(self, partner: str | None = None) -> dict[str, list[str]]:
        """Every blob the ledger says the archive holds (files not purged, outbound interchanges, dead
        letters' payloads), each with what refers to it (``file 12``, ``outbound 3``, ``delivery 9``)."""
        refs: dict[str, list[str]] = {}
        file_query = select(files.c.sha256, files.c.id).where(~exists().where(purges.c.file_id == files.c.id))
        out_query = select(outbound.c.sha256, outbound.c.id)
        dl_query = select(deliveries.c.payload_sha256, deliveries.c.id).where(deliveries.c.payload_sha256.is_not(None))
        if partner is not None:
            file_query = file_query.where(files.c.partner_id == partner)
            out_query = out_query.where(outbound.c.partner_id == partner)
            dl_query = dl_query.where(deliveries.c.partner_id == partner)
        with self._db.read("list the archive's blobs") as conn:
            for kind, query in (("file", file_query), ("outbound", out_query), ("delivery", dl_query)):
                for sha, i in conn.execute(query):
                    refs.setdefault(sha, []).append(f"{kind} {i}")
        return refs
