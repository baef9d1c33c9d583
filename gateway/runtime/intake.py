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
import logging
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from gateway.channels.inbox import Candidate
from gateway.formats.xml import XmlDocumentError, parse_xml
from gateway.partners.profile import PartnerDirectory
from gateway.runtime.fsutil import unique_target
from gateway.store import Archive
from gateway.store.durable import SyncGroup
from gateway.store.errors import ArchiveError
from gateway.store.files import Intake as StoreIntake
from gateway.store.rows import FileRow
from gateway.store.store import Store
from gateway.translate import sniff
from gateway.x12.model import InterchangeStart
from gateway.x12.reader import read_events

CLAIM_PREFIX = ".taking."

log = logging.getLogger("gateway.intake")


@dataclass(slots=True)
class Taken:
    """What intake did with one file."""

    row: FileRow | None
    path: Path
    outcome: str  # received | quarantined | skipped | failed (not taken this time: retried later)
    reason: str | None = None


IDENTIFY_BYTES = 65536
"""What :func:`identify` reads of an X12 or CSV file (its ISA, or a CSV's first 64 KiB)."""


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
        sync: str = "group",
    ) -> None:
        self.store = store
        self.archive = archive
        self.partners = partners
        self.inbox = inbox
        self.processed = processed
        self.quarantine = quarantine
        self.after = after
        self.worker = worker
        self._blobs = SyncGroup(sync)

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
        return self.take_many([cand], today)[0]

    def take_many(self, cands: list[Candidate], today: date) -> list[Taken]:
        """Claim, archive, record and move ready files as one batch: their blobs are made durable together
        and their rows recorded in one transaction, then each file is let go. One result per candidate.

        Raises (after putting every claimed file back under its name) when the archive or the store fails.
        """
        taken: list[Taken | None] = []
        claims: list[_Claim] = []
        try:
            for cand in cands:
                try:
                    result = self._claim(cand)
                except (OSError, ArchiveError) as exc:
                    # This file only (a name too long to rename, an unreadable file): the rest go on.
                    log.error("intake of %s failed, will retry: %s", cand.path, exc)
                    result = Taken(None, cand.path, "failed", str(exc))
                if isinstance(result, Taken):
                    taken.append(result)
                    continue
                claims.append(result)
                taken.append(None)
            rows = self._record(claims) if claims else []
        except BaseException:
            self._blobs.discard()  # staged for files that go back to the inbox
            for claim in claims:
                claim.put_back()
            raise
        rows_iter = iter(zip(claims, rows, strict=True))
        out: list[Taken] = []
        for item in taken:
            if item is not None:
                out.append(item)
                continue
            claim, row = next(rows_iter)
            try:
                self._let_go(claim.path, claim.cand, row, today, quarantined=bool(claim.reason))
            except OSError as exc:
                # Recorded but still in the inbox: put back, it is retaken, recognised and let go again.
                log.error("file %s (%s) recorded but not moved out of the inbox: %s", row.id, claim.cand.path, exc)
                claim.put_back()
            finally:
                claim.close()
            out.append(Taken(row, claim.cand.path, "quarantined" if claim.reason else "received", claim.reason))
        return out

    def _claim(self, cand: Candidate) -> Taken | _Claim:
        """Rename ``cand`` to this worker's claim name under an flock, read it and stage its bytes."""
        claim = cand.path.with_name(f"{CLAIM_PREFIX}{self._tag()}.{cand.path.name}")
        try:
            fd = os.open(cand.path, os.O_RDONLY)
        except FileNotFoundError:
            return Taken(None, cand.path, "skipped", "gone (taken by another worker)")
        held = _Claim(cand, claim, fd)
        try:
            # Locked before the rename and until the file is let go: recover_claims leaves it alone.
            if not _try_lock(fd):
                held.close()
                return Taken(None, cand.path, "skipped", "being taken by another worker")
            try:
                os.rename(cand.path, claim)
            except FileNotFoundError:
                held.close()
                return Taken(None, cand.path, "skipped", "gone (taken by another worker)")
            held.renamed = True
            if os.fstat(fd).st_ino != claim.stat().st_ino:  # replaced between our open and rename: not ours
                held.put_back()
                return Taken(None, cand.path, "skipped", "replaced while being taken")
            st = os.fstat(fd)
            held.inode = st.st_ino
            with os.fdopen(os.dup(fd), "rb") as stream:
                # Copied to the archive a chunk at a time (flat memory on a 1 GB file), identified by its head.
                held.sha, held.size = self.archive.stage_stream(stream, self._blobs)
                stream.seek(0)
                data = stream.read(IDENTIFY_BYTES)
                if len(data) < held.size and (sniff(data) == "xml" or not data.strip(b" \t\r\n\x00\x1a")):
                    data += stream.read()  # XML is identified whole; so is a file that starts with a long blank
            held.format, held.partner, held.reason = identify(data, cand.partner, self.partners)
        except BaseException:
            held.put_back()
            raise
        return held

    def _record(self, claims: list[_Claim]) -> list[FileRow]:
        """Make the staged blobs durable, then record every claimed file in one transaction."""
        try:
            self._blobs.flush()
        finally:
            self._blobs.discard()
        intakes = []
        for c in claims:
            rel = c.cand.path.relative_to(self.inbox)
            # The mtime and inode make the origin unique per drop: a crash between the ledger commit and the
            # move makes the retake (renamed back: same inode) find its own row, while a resend of the same
            # bytes, even under the same name with its mtime kept (scp -p), is a new drop (a duplicate).
            origin = f"inbox:{rel.as_posix()}#{c.cand.mtime_ns}:{c.inode}"
            status = "quarantined" if c.reason else "received"
            intakes.append(StoreIntake(c.sha, c.size, c.cand.path.name, origin, c.partner, c.format, status, c.reason))
        return self.store.record_files(intakes)

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


@dataclass(slots=True)
class _Claim:
    """A file this worker renamed to its claim name and holds an flock on, until it is let go."""

    cand: Candidate
    path: Path
    fd: int
    renamed: bool = False
    inode: int = 0
    size: int = 0
    sha: str = ""
    format: str = "unknown"
    partner: str | None = None
    reason: str | None = None

    def put_back(self) -> None:
        """Not taken after all: back under its name (where the retry will look for it), lock released."""
        try:
            if self.renamed and self.path.exists():
                os.rename(self.path, unique_target(self.cand.path.parent, self.cand.path.name))
        finally:
            self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _try_lock(fd: int) -> bool:
    """Take an exclusive ``flock`` on ``fd`` without waiting; False when another process holds one."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
