"""The send folder: canonical purchase orders dropped in ``send/<partner>/`` go out as that partner's 850.

A file there (JSON: one canonical purchase order, a list, or ``gateway translate --json`` output; see
:func:`~gateway.outbound.orders.parse_orders`) is found and judged complete by the inbox channel's own
code (:class:`~gateway.channels.inbox.Inbox`, built by the registry on this folder: ``lstat`` only,
ignored names such as dotfiles, ``*.part``, ``*.tmp``, unchanged for ``stable_seconds`` or nobody has it
open for writing), then, in this order:

1. claimed: renamed to ``.taking.<worker>.<name>`` in its folder while this worker holds an ``flock`` on
   it (two gateways on one folder never both take it; a claim nobody holds a lock on was left by a dead
   worker and is renamed back);
2. its bytes archived (fsynced), so what was dropped is kept whatever follows;
3. read and checked: every order rendered once under a placeholder number. Any problem (invalid JSON, a
   field the partner's X12 cannot carry, no 850 map, an unknown partner folder) refuses the whole file:
   it moves to ``<quarantine>/send/<partner>/`` with a ``.reason.txt`` naming the file, the order and the
   field of each problem, and nothing is numbered;
4. recorded: each order numbered from the partner's persisted sequence, rendered, archived, and recorded
   with its deliveries (where the outbound rules send 850s) in one transaction
   (:class:`~gateway.runtime.send.OrderSender`, the code ``gateway send`` runs), keyed by the file's name
   and digest: a crash after this step and before the next finds the orders recorded and numbers nothing
   again;
5. moved to ``<processed>/send/<partner>/<date>/`` and the deliveries tried at once (what cannot be
   delivered now stays pending for the delivery loop, with its retries and dead letters).

A store or archive failure puts the claim back for the next poll; it never stops the daemon.
"""

from __future__ import annotations

import fcntl
import logging
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from gateway.channels.inbox import Inbox
from gateway.errors import ConfigError, GatewayError
from gateway.mapping.problems import MapLoadError
from gateway.outbound.orders import parse_orders
from gateway.partners.profile import PartnerDirectory, Profile
from gateway.runtime.fsutil import move, unique_target
from gateway.runtime.send import OrderSender, SentOrder
from gateway.store import Archive

__all__ = ["SendFolder", "SendResult"]

log = logging.getLogger("gateway.send")

CLAIM_PREFIX = ".taking."


@dataclass(frozen=True, slots=True)
class SendResult:
    """What became of one file: ``sent`` (its orders recorded and moved to processed), ``refused``
    (quarantined with its problems), or ``retry`` (left for the next poll: the store or the disk failed)."""

    path: Path
    outcome: str
    partner: str | None
    orders: tuple[SentOrder, ...] = ()
    problems: tuple[str, ...] = ()


@dataclass(slots=True)
class SendFolder:
    """Polls ``root``'s partner folders; one instance per worker."""

    channel: Inbox  # finds the complete files under the send folder, as it does for the inbox
    sender: OrderSender
    archive: Archive
    partners: PartnerDirectory
    processed: Path
    quarantine: Path
    worker: str
    deliver: Callable[[list[int]], object] | None = None
    clock: Callable[[], datetime] = datetime.now
    _dead: dict[Path, str] = field(default_factory=dict)  # files put back from a dead worker's claim: its tag

    @property
    def root(self) -> Path:
        """The send folder."""
        return self.channel.root

    def poll(self) -> list[SendResult]:
        """Take every ready file once; what each came to. A file left for a retry is looked at again at
        the next poll; one taken, refused or gone is forgotten by the channel."""
        if not self.root.is_dir():
            return []
        self._recover_claims()
        self.channel.scan()  # polled about once a second: no watcher thread for this small folder
        results: list[SendResult] = []
        for cand in self.channel.ready():
            if cand.special:  # a FIFO, a device, a symbolic link: refused without being opened
                result = self._refuse(cand.path, None, cand.partner, [f"{cand.path}: not a regular file"])
            else:
                result = self._take(cand.partner, cand.path)
            if result.outcome == "retry" and cand.path.exists():
                self.channel.release(cand.path)
            else:
                self.channel.done(cand.path)
            results.append(result)
        return results

    def _recover_claims(self) -> None:
        """Rename back the claims of workers that died holding them (nobody holds their lock)."""
        for claim in self.root.glob(f"*/{CLAIM_PREFIX}*"):
            try:
                fd = os.open(claim, os.O_RDONLY | os.O_NOFOLLOW)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue  # a live worker's
            try:
                tag, _, original = claim.name[len(CLAIM_PREFIX) :].partition(".")
                target = claim.with_name(original)
                if not target.exists():
                    os.rename(claim, target)
                    self._dead[target] = tag
                    log.warning("send folder: %s put back (its worker died while taking it)", target)
            finally:
                os.close(fd)

    def _take(self, partner: str | None, path: Path) -> SendResult:
        claim = path.with_name(f"{CLAIM_PREFIX}{_tag(self.worker)}.{path.name}")
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            return SendResult(path, "retry", partner, problems=("taken by another worker",))
        except OSError as exc:  # a symlink, a FIFO opened for reading...
            return self._refuse(path, None, partner, [f"{path}: cannot be opened as a regular file: {exc}"])
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return self._refuse(path, None, partner, [f"{path}: not a regular file"])
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(path, claim)
            with os.fdopen(os.dup(fd), "rb") as stream:
                data = stream.read()
            return self._claimed(partner, path, claim, data)
        except BlockingIOError:
            return SendResult(path, "retry", partner, problems=("taken by another worker",))
        except FileNotFoundError:
            return SendResult(path, "retry", partner, problems=("taken by another worker",))
        finally:
            os.close(fd)

    def _claimed(self, partner: str | None, path: Path, claim: Path, data: bytes) -> SendResult:
        name = f"{self.root.name}/{partner}/{path.name}" if partner else f"{self.root.name}/{path.name}"
        try:
            sha = self.archive.put(data)
        except (OSError, GatewayError) as exc:
            os.rename(claim, path)
            log.error("send folder: %s: cannot archive it (%s); left for the next poll", name, exc)
            return SendResult(path, "retry", partner, problems=(str(exc),))
        profile = self.partners.get(partner) if partner else None
        if partner is None:
            problems = [f"{name}: not in a partner folder: put it in {self.root.name}/<partner>/"]
        elif profile is None:
            known = ", ".join(sorted(self.partners.profiles)) or "none"
            problems = [f"{name}: {partner!r} is not a known partner (known: {known})"]
        else:
            problems = self._problems(profile, data, name)
        if problems:
            return self._refuse(path, claim, partner, problems, sha)
        assert profile is not None and partner is not None
        orders, _ = parse_orders(data.decode("utf-8"), name)
        try:
            sent = self.sender.record(
                profile,
                orders,
                command="send folder",
                deliver=True,
                worker=self.worker,
                origin=f"{name} sha256 {sha}",
            )
        except (OSError, GatewayError) as exc:
            os.rename(claim, path)
            log.error("send folder: %s: not recorded (%s); left for the next poll", name, exc)
            return SendResult(path, "retry", partner, problems=(str(exc),))
        self._take_over(path, sent)
        move(claim, unique_target(self.processed / "send" / partner / self.clock().date().isoformat(), path.name))
        for s in sent:
            again = " (recorded before a restart)" if s.earlier else ""
            log.info("send folder: %s: 850 for %s, PO %s, ISA13 %s%s", name, partner, s.po_number,
                     s.control_number, again)  # fmt: skip
            if s.unrouted:
                log.error("send folder: %s: PO %s is unrouted (outbound %d): %s", name, s.po_number, s.outbound_id,
                          s.unrouted)  # fmt: skip
        if self.deliver is not None:
            self.deliver([i for s in sent for i in s.delivery_ids])
        return SendResult(path, "sent", partner, orders=tuple(sent))

    def _take_over(self, path: Path, sent: list[SentOrder]) -> None:
        """Orders a dead worker recorded from this file: its never-tried deliveries (still leased to it
        for a minute) are let go, so they are delivered now rather than after the lease runs out."""
        dead = self._dead.pop(path, None)
        store = self.sender.store
        if dead is None or store is None:
            return
        for order in sent:
            if not order.earlier:
                continue
            for row in store.list_deliveries(outbound_id=order.outbound_id):
                owner = row.lease_owner
                if row.status == "pending" and row.attempts == 0 and owner and _tag(owner) == dead:
                    store.release_deliveries(owner, [row.id])

    def _problems(self, profile: Profile, data: bytes, name: str) -> list[str]:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            return [f"{name}: not UTF-8 text (byte {exc.start}): a canonical purchase order is JSON"]
        orders, problems = parse_orders(text, name)
        if problems:
            return problems
        try:
            return self.sender.problems(profile, orders, name)
        except (MapLoadError, ConfigError) as exc:
            return [f"{name}: {exc}"]

    def _refuse(
        self, path: Path, claim: Path | None, partner: str | None, problems: list[str], sha: str | None = None
    ) -> SendResult:
        folder = self.quarantine / "send" / (partner or "_unknown")
        target = unique_target(folder, path.name)
        kept = f"archived as sha256 {sha}\n" if sha else ""
        (folder / f"{target.name}.reason.txt").write_text("\n".join(problems) + "\n" + kept, "utf-8")
        if claim is not None:
            move(claim, target)
        else:
            os.rename(path, target)
        for problem in problems:
            log.error("send folder: refused: %s", problem)
        log.error("send folder: %s moved to %s; nothing was numbered or sent", path.name, target)
        return SendResult(path, "refused", partner, problems=tuple(problems))


def _tag(worker: str) -> str:
    """A worker's name as it appears in a claim (no dot: the file's name follows the first one)."""
    return "".join(c if c.isalnum() or c in "-:" else "_" for c in worker)
