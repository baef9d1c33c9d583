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

Hostile entries never stop intake (see docs/store.md, "What intake refuses"):
only regular files with one link are opened (``lstat``, then ``O_NOFOLLOW |
O_NONBLOCK``, then ``fstat``); a FIFO, device, socket, symbolic link or
hard-linked file is recorded as quarantined with nothing of its content, and
removed from the inbox. A name the store cannot hold (not UTF-8, too long to
rename) is quarantined under a safe name, the original escaped in the
reason. A file whose size or mtime changes between the claim and the
archiving is put back, not recorded. A file recorded but not movable out of
the inbox (a folder that cannot be written) is put back and reported as
``stuck``; moves across file systems copy, sync and unlink.
"""

from __future__ import annotations

import fcntl
import logging
import os
import stat
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from gateway.channels.inbox import Candidate
from gateway.formats.xml import XmlDocumentError, parse_xml
from gateway.partners.profile import PartnerDirectory
from gateway.runtime.fsutil import (
    PRIVATE_FILE,
    NotRegularFile,
    move,
    name_problem,
    open_regular,
    printable,
    refusal,
    safe_name,
    unique_target,
)
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
REFUSED_CLAIM_SECONDS = 300.0
"""A claim on a refused entry (no lock can be held on a symlink) is renamed back after this long."""

log = logging.getLogger("gateway.intake")


@dataclass(slots=True)
class Taken:
    """What intake did with one file."""

    row: FileRow | None
    path: Path
    outcome: str
    """received | quarantined (recorded) | skipped (another worker's) | changed (still being written: put
    back, looked at again) | failed (not taken: held, retried later) | stuck (recorded, but it could not be
    moved out of the inbox: put back and held; ``folder`` says where it could not go)."""
    reason: str | None = None
    folder: Path | None = None


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
                st = os.lstat(claim)
            except FileNotFoundError:
                continue
            original = claim.name[len(CLAIM_PREFIX) :].split(".", 1)[-1]
            if refusal(st) is not None:
                # No lock can be held on it (a symlink, a FIFO): its taker is dead once it is old.
                if time.time() - st.st_ctime >= REFUSED_CLAIM_SECONDS:
                    count += _rename_back(claim, original)
                continue
            try:
                fd, _ = open_regular(claim)
            except OSError:
                continue  # let go by its taker meanwhile (or replaced: left for the next look)
            try:
                if not _try_lock(fd):
                    continue  # a live taker holds it
                count += _rename_back(claim, original)
            finally:
                os.close(fd)
        return count

    def _tag(self) -> str:
        tag = self.worker.replace(".", "_").replace("/", "_")
        return tag if len(tag) <= 40 else tag[:40]

    def take(self, cand: Candidate, today: date) -> Taken:
        """Claim, archive, record and move one ready file."""
        return self.take_many([cand], today)[0]

    def take_many(self, cands: list[Candidate], today: date) -> list[Taken]:
        """Claim, archive, record and move ready files as one batch: their blobs are made durable together
        and their rows recorded in one transaction, then each file is let go. One result per candidate.

        Raises (after putting every claimed file back under its name) when the archive or the store fails.
        """
        results: dict[int, Taken] = {}
        claims: list[tuple[int, _Claim]] = []
        try:
            for n, cand in enumerate(cands):
                try:
                    result = self._claim(cand)
                except (OSError, ArchiveError) as exc:
                    # This file only (an unreadable file): the rest go on; the caller holds it.
                    result = Taken(None, cand.path, "failed", str(exc))
                if isinstance(result, Taken):
                    results[n] = result
                else:
                    claims.append((n, result))
            try:
                self._blobs.flush()
            finally:
                self._blobs.discard()
            kept = []
            for n, claim in claims:
                changed = claim.changed()
                if changed is None:
                    kept.append((n, claim))
                    continue
                claim.put_back()  # its blob is in the archive, unreferenced: harmless (content-addressed)
                results[n] = Taken(None, claim.cand.path, "changed", changed)
            claims = kept
            rows = self._record([c for _, c in claims]) if claims else []
        except BaseException:
            self._blobs.discard()  # staged for files that go back to the inbox
            for _, claim in claims:
                claim.put_back()
            raise
        for (n, claim), row in zip(claims, rows, strict=True):
            quarantined = row.status == "quarantined"
            try:
                self._let_go(claim, row, today, quarantined=quarantined)
                results[n] = Taken(row, claim.cand.path, "quarantined" if quarantined else "received", row.reason)
            except OSError as exc:
                # Recorded but still in the inbox: put back; it is not taken again until it changes or a
                # while passes (then it is recognised as recorded and only let go).
                claim.put_back()
                folder = getattr(exc, "folder", None)
                results[n] = Taken(row, claim.cand.path, "stuck", str(exc), folder)
            finally:
                claim.close()
        return [results[n] for n in range(len(cands))]

    def _claim(self, cand: Candidate) -> Taken | _Claim:
        """Rename ``cand`` to this worker's claim name under an flock, read it and stage its bytes."""
        problem = name_problem(cand.path.name)
        name = cand.path.name if problem is None else safe_name(cand.path.name)
        claim = cand.path.with_name(f"{CLAIM_PREFIX}{self._tag()}.{name}")
        try:
            fd, st = open_regular(cand.path)
        except FileNotFoundError:
            return Taken(None, cand.path, "skipped", "gone (taken by another worker)")
        except NotRegularFile as exc:
            return self._claim_refused(cand, claim, name, exc.reason, problem)
        if cand.size >= 0 and (st.st_size, st.st_mtime_ns) != (cand.size, cand.mtime_ns):
            os.close(fd)
            return Taken(None, cand.path, "changed", "changed since it was last looked at (still being written)")
        held = _Claim(cand, claim, fd, name=name, signature=(st.st_size, st.st_mtime_ns))
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
            if st.st_ino != os.lstat(claim).st_ino:  # replaced between our open and rename: not ours
                held.put_back()
                return Taken(None, cand.path, "skipped", "replaced while being taken")
            held.inode = st.st_ino
            with os.fdopen(os.dup(fd), "rb") as stream:
                # Copied to the archive a chunk at a time (flat memory on a 1 GB file), identified by its head.
                held.sha, held.size = self.archive.stage_stream(stream, self._blobs)
                stream.seek(0)
                data = stream.read(IDENTIFY_BYTES)
                if len(data) < held.size and (sniff(data) == "xml" or not data.strip(b" \t\r\n\x00\x1a")):
                    data += stream.read()  # XML is identified whole; so is a file that starts with a long blank
            changed = held.changed()
            if changed is None and held.size != st.st_size:
                changed = f"read {held.size} bytes of {st.st_size}"
            if changed is not None:
                held.put_back()  # its staged blob is left unreferenced in the archive
                return Taken(None, cand.path, "changed", changed)
            held.format, held.partner, held.reason = identify(data, cand.partner, self.partners)
            if problem is not None:
                held.reason = f"{problem}; kept as {name}" + (f"; {held.reason}" if held.reason else "")
        except BaseException:
            held.put_back()
            raise
        return held

    def _claim_refused(self, cand: Candidate, claim: Path, name: str, why: str, problem: str | None) -> Taken | _Claim:
        """Claim an entry that is refused without being opened: recorded as quarantined, nothing of it kept."""
        try:
            before = os.lstat(cand.path)
            os.rename(cand.path, claim)
        except FileNotFoundError:
            return Taken(None, cand.path, "skipped", "gone (taken by another worker)")
        held = _Claim(cand, claim, -1, renamed=True, name=name, refused=True)
        try:
            if os.lstat(claim).st_ino != before.st_ino:
                held.put_back()
                return Taken(None, cand.path, "skipped", "replaced while being taken")
            held.inode = before.st_ino
            if stat.S_ISLNK(before.st_mode):
                why += f"; it pointed to {printable(os.readlink(claim))}"
            held.sha = self.archive.stage(b"", self._blobs)
            held.partner = cand.partner
            held.reason = why + (f"; {problem}; kept as {name}" if problem else "")
        except BaseException:
            held.put_back()
            raise
        return held

    def _record(self, claims: list[_Claim]) -> list[FileRow]:
        """Record every claimed file (blobs already durable) in one transaction."""
        intakes = []
        for c in claims:
            rel = (c.cand.path.parent / c.name).relative_to(self.inbox)
            # The mtime and inode make the origin unique per drop: a crash between the ledger commit and the
            # move makes the retake (renamed back: same inode) find its own row, while a resend of the same
            # bytes, even under the same name with its mtime kept (scp -p), is a new drop (a duplicate).
            origin = f"inbox:{rel.as_posix()}#{c.cand.mtime_ns}:{c.inode}"
            status = "quarantined" if c.reason else "received"
            intakes.append(StoreIntake(c.sha, c.size, c.name, origin, c.partner, c.format, status, c.reason))
        return self.store.record_files(intakes)

    def _let_go(self, claim: _Claim, row: FileRow, today: date, *, quarantined: bool) -> None:
        """Move the taken file out of the inbox (across file systems: copy, sync, unlink). No fsync of a
        same-device rename: the bytes are already durable in the archive and the ledger; if a crash loses
        the move, the file reappears in the inbox and ``find_intake`` recognises it, so it is let go again
        and not recorded twice. A refused entry is removed: only its reason is kept."""
        name = f"{row.id}-{claim.name}"
        if quarantined:
            folder = self.quarantine / today.isoformat()
            target = unique_target(folder, name)
            _write_private(folder / f"{target.name}.reason.txt", f"file {row.id}: {row.reason}\n")
            if claim.refused:
                claim.path.unlink()
            else:
                move(claim.path, target)
        elif self.after == "delete":
            claim.path.unlink()
        else:
            move(claim.path, unique_target(self.processed / today.isoformat(), name))


@dataclass(slots=True)
class _Claim:
    """A file this worker renamed to its claim name and holds an flock on, until it is let go."""

    cand: Candidate
    path: Path
    fd: int
    renamed: bool = False
    name: str = ""  # the name recorded (the inbox name, or a safe one for a name the store cannot hold)
    refused: bool = False  # not opened (FIFO, device, symlink, hard link): nothing of it is kept
    signature: tuple[int, int] = (-1, -1)  # size and mtime when it was opened
    inode: int = 0
    size: int = 0
    sha: str = ""
    format: str = "unknown"
    partner: str | None = None
    reason: str | None = None

    def changed(self) -> str | None:
        """Why the file is no longer what was read (written to since it was opened), or None."""
        if self.fd < 0:
            return None
        st = os.fstat(self.fd)
        if (st.st_size, st.st_mtime_ns) != self.signature:
            return f"written to while being taken (size {self.signature[0]} -> {st.st_size})"
        return None

    def put_back(self) -> None:
        """Not taken after all: back under its name (where the retry will look for it), lock released."""
        try:
            if self.renamed and os.path.lexists(self.path):
                os.rename(self.path, unique_target(self.cand.path.parent, self.cand.path.name))
        finally:
            self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _rename_back(claim: Path, original: str) -> int:
    try:
        os.rename(claim, unique_target(claim.parent, original))
    except FileNotFoundError:
        return 0
    return 1


def _write_private(path: Path, text: str) -> None:
    """Write a small file readable by this user only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), PRIVATE_FILE)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)


def _try_lock(fd: int) -> bool:
    """Take an exclusive ``flock`` on ``fd`` without waiting; False when another process holds one."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
