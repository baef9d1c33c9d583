"""Taking a ready inbox file: claim it, archive its bytes, record it, and only then let it go.

The order is the guarantee (STYLE.md convention 7): the bytes are in the
archive (fsynced) and the ledger row is committed before the file leaves
the inbox. A file is first claimed by renaming it to a hidden name in the
same folder (``.taking.<worker>.<name>``), so two ``gateway run``
processes watching one inbox never both take it. The taker holds an
exclusive ``flock`` on the file from before the rename until it has let
it go, so a claim nobody holds a lock on was left by a dead taker (the
kernel drops the locks of a killed process): such claims are renamed back
(at start-up and periodically), and the ledger's intake check makes the
retake record nothing twice. A live taker's claim is never renamed back,
however long the store keeps it waiting. The inbox must be on a
filesystem where ``flock`` works (local disks; NFSv4).
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from gateway.channels.inbox import Candidate
from gateway.formats.xml import XmlDocumentError, parse_xml
from gateway.partners.profile import PartnerDirectory
from gateway.runtime.fsutil import unique_target
from gateway.store import Archive
from gateway.store.rows import FileRow
from gateway.store.store import Store
from gateway.translate import sniff
from gateway.x12.model import InterchangeStart
from gateway.x12.reader import read_events

CLAIM_PREFIX = ".taking."


@dataclass(slots=True)
class Taken:
    """What intake did with one file."""

    row: FileRow | None
    path: Path
    outcome: str  # received | quarantined | skipped
    reason: str | None = None


def identify(  # noqa: C901 - one decision table, read top to bottom
    data: bytes, folder_partner: str | None, partners: PartnerDirectory
) -> tuple[str, str | None, str | None]:
    """``(format, partner id, quarantine reason)`` from the bytes and the inbox folder."""
    if not data.strip(b" \t\r\n\x00\x1a"):
        return "unknown", folder_partner, "empty file (zero bytes or only whitespace)"
    fmt = sniff(data)
    if folder_partner is not None and partners.get(folder_partner) is None:
        return fmt, None, f"inbox folder {folder_partner!r} is not a known partner"
    if fmt == "x12":
        sender = None
        for ev in read_events(data[:4096]):
            if isinstance(ev, InterchangeStart):
                sender = ev.header
                break
        if sender is None:
            return fmt, folder_partner, "starts like X12 but has no readable ISA header"
        gs_id = None
        profile = partners.by_x12_sender(sender.sender_qualifier, sender.sender_id, gs_id)
        if folder_partner is not None:
            if profile is not None and profile.id != folder_partner:
                return (
                    fmt,
                    folder_partner,
                    f"sender mismatch: file is in inbox/{folder_partner}/ but its ISA names "
                    f"{sender.sender_qualifier}:{sender.sender_id} (partner {profile.id})",
                )
            folder_profile = partners.get(folder_partner)
            if profile is None and folder_profile is not None and folder_profile.x12 is not None:
                return (
                    fmt,
                    folder_partner,
                    f"sender mismatch: file is in inbox/{folder_partner}/ but its ISA names "
                    f"{sender.sender_qualifier}:{sender.sender_id}, not one of {folder_partner}'s ids",
                )
            return fmt, folder_partner, None
        return fmt, profile.id if profile else None, None
    if fmt == "xml":
        if folder_partner is not None:
            return fmt, folder_partner, None
        return fmt, _cxml_partner(data, partners), None
    # Anything else is only a document when a partner folder says it is that partner's CSV.
    if folder_partner is None:
        return "unknown", None, "not X12 or XML, and not in a partner folder (CSV is taken only from inbox/<partner>/)"
    profile = partners.get(folder_partner)
    if profile is None or profile.format != "csv":
        return "unknown", folder_partner, f"not X12 or XML, and partner {folder_partner} does not send CSV"
    try:
        data[:65536].decode("utf-8")
    except UnicodeDecodeError:
        if b"\x00" in data[:65536]:
            return "unknown", folder_partner, "binary content (NUL bytes), not a CSV file"
    return "csv", folder_partner, None


def _cxml_partner(data: bytes, partners: PartnerDirectory) -> str | None:
    """The partner whose cXML From credential the document carries (None when unknown or unreadable)."""
    try:
        root = parse_xml(data)
    except XmlDocumentError:
        return None  # processing reports the located parse error
    for cred in root.iterfind("Header/From/Credential"):
        profile = partners.by_cxml(cred.get("domain", ""), (cred.findtext("Identity") or "").strip())
        if profile is not None:
            return profile.id
    return None


class Intake:
    """Takes files from the inbox into the archive and the ledger."""

    def __init__(
        self,
        store: Store,
        archive: Archive,
        partners: PartnerDirectory,
        *,
        inbox: Path,
        processed: Path,
        quarantine: Path,
        after: str,
        worker: str,
    ) -> None:
        self.store = store
        self.archive = archive
        self.partners = partners
        self.inbox = inbox
        self.processed = processed
        self.quarantine = quarantine
        self.after = after
        self.worker = worker

    def recover_claims(self) -> int:
        """Rename claims left by dead takers back to their names (start-up, and now and then while running)."""
        count = 0
        for claim in list(self.inbox.glob(f"{CLAIM_PREFIX}*")) + list(self.inbox.glob(f"*/{CLAIM_PREFIX}*")):
            try:
                fd = os.open(claim, os.O_RDONLY)
            except FileNotFoundError:
                continue  # let go by its taker meanwhile
            try:
                if not _try_lock(fd):
                    continue  # a live taker holds it
                original = claim.name[len(CLAIM_PREFIX) :].split(".", 1)[1]
                try:
                    os.rename(claim, unique_target(claim.parent, original))
                    count += 1
                except FileNotFoundError:
                    continue
            finally:
                os.close(fd)
        return count

    def _tag(self) -> str:
        return self.worker.replace(".", "_").replace("/", "_")

    def take(self, cand: Candidate, today: date) -> Taken:
        """Claim, archive, record and move one ready file."""
        claim = cand.path.with_name(f"{CLAIM_PREFIX}{self._tag()}.{cand.path.name}")
        try:
            fd = os.open(cand.path, os.O_RDONLY)
        except FileNotFoundError:
            return Taken(None, cand.path, "skipped", "gone (taken by another worker)")
        try:
            # Locked before the rename and until the file is let go: recover_claims leaves it alone.
            if not _try_lock(fd):
                return Taken(None, cand.path, "skipped", "being taken by another worker")
            try:
                os.rename(cand.path, claim)
            except FileNotFoundError:
                return Taken(None, cand.path, "skipped", "gone (taken by another worker)")
            if os.fstat(fd).st_ino != claim.stat().st_ino:  # replaced between our open and rename: not ours
                os.rename(claim, unique_target(cand.path.parent, cand.path.name))
                return Taken(None, cand.path, "skipped", "replaced while being taken")
            try:
                return self._take_claimed(cand, claim, today)
            except Exception:
                # Not taken (the store or the archive failed): put it back where the retry will look for it.
                if claim.exists():
                    os.rename(claim, unique_target(cand.path.parent, cand.path.name))
                raise
        finally:
            os.close(fd)

    def _take_claimed(self, cand: Candidate, claim: Path, today: date) -> Taken:
        data = claim.read_bytes()
        sha = self.archive.put(data)
        fmt, partner, reason = identify(data, cand.partner, self.partners)
        rel = cand.path.relative_to(self.inbox)
        # The mtime makes the origin unique per drop: a crash between the ledger commit and the move
        # makes the retake find its own row, while a resend of the same bytes is a new drop (a duplicate).
        origin = f"inbox:{rel.as_posix()}#{cand.mtime_ns}"
        existing = self.store.find_intake(sha, origin)
        if existing is not None:
            row = existing
        else:
            status = "quarantined" if reason else "received"
            row = self.store.record_file(
                sha,
                len(data),
                cand.path.name,
                origin,
                partner,
                fmt,
                status=status,
                reason=reason,
            )
        self._let_go(claim, cand, row, today, quarantined=bool(reason))
        return Taken(row, cand.path, "quarantined" if reason else "received", reason)

    def _let_go(self, claim: Path, cand: Candidate, row: FileRow, today: date, *, quarantined: bool) -> None:
        """Move the taken file out of the inbox. No fsync here: the bytes are already durable in the
        archive and the ledger; if a crash loses the move, the file reappears in the inbox and
        ``find_intake`` recognises it, so it is let go again and not recorded twice."""
        name = f"{row.id}-{cand.path.name}"
        if quarantined:
            folder = self.quarantine / today.isoformat()
            target = unique_target(folder, name)
            (folder / f"{target.name}.reason.txt").write_text(f"file {row.id}: {row.reason}\n", "utf-8")
            os.rename(claim, target)
        elif self.after == "delete":
            claim.unlink()
        else:
            folder = self.processed / today.isoformat()
            os.rename(claim, unique_target(folder, name))


def _try_lock(fd: int) -> bool:
    """Take an exclusive ``flock`` on ``fd`` without waiting; False when another process holds one."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
