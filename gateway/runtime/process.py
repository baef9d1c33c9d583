"""Processing claimed files in batches: validate, acknowledge, translate, record, write outputs, finish.

The order is the guarantee (STYLE.md convention 7), for a whole batch of files at once:

1. Each file is read from the archive and translated in memory into a plan:
   its ledger rows, its documents, and the acknowledgment each interchange
   is owed.
2. One transaction (:meth:`~gateway.store.Store.record_batch`) records the
   batch: dedupe claims decide what is a duplicate; acknowledgments are
   numbered from the partner's persisted sequence and their bytes archived
   (made durable before the commit); each file's final status is kept with
   it (``results_at``).
3. The outputs (canonical JSON for each new document, each acknowledgment in
   ``outbox/<partner>/``) are written under temporary names and published
   together (:class:`~gateway.store.durable.SyncGroup`).
4. One transaction (:meth:`~gateway.store.Store.finish_files`) moves the
   files to their final status. (With delivery processes,
   ``processing.delivery_workers``, nothing is delivered in 3: the files take
   their final status in the transaction of 2.)

A crash before 2 leaves nothing recorded or written: the files are redone
from the archive. A crash between 2 and 4 leaves them ``processing`` with
``results_at``: the next owner writes the outputs again from the ledger
(same names, same bytes) and finishes them, drawing no new numbers. A big
file is recorded in chunks of about ``chunk_sets`` sets, each chunk's outputs
written after its commit; a crash part-way resets the file's rows and
redoes it, sending the acknowledgments already recorded again instead of
renumbering them, and writing its documents again under the same names
(file id and position) with the same content (correlation ids derive from
the file's). Nothing is written before the commit that records it, so a
worker whose lease was taken over can no longer send anything.

A chunk may end inside an interchange (a distributor's batch is one
interchange of thousands of sets). Its first chunk records the interchange
(status ``received``, ISA13 claimed) and later ones add their sets to it;
each set's 997/999 answer is kept as a few bytes as it ends
(:class:`~gateway.x12.ack.answers.Answers`), not its report, and the one
acknowledgment is built from them at the trailer, in the chunk that sets
the interchange's and groups' final statuses. Whether the envelope refuses
the sets (IEA/GE counts, a repeated GS06...) is known only at its trailer,
so a file with such an interchange is first read once for its envelopes
alone (:meth:`~gateway.translate.Translator.envelopes`): sets recorded
before the trailer get the verdict the trailer will give. A file bigger
than ``stream_bytes`` is read from the archive as it is translated.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path

from gateway.errors import Disposition, DocumentError, disposition
from gateway.partners.profile import DuplicatePolicy, Profile
from gateway.planning import (
    ACKNOWLEDGMENT,
    RELEASED,
    AckBuilder,
    AckRouter,
    DocPlan,
    FileFinal,
    FileOutcome,
    FilePlan,
    GroupPlan,
    InterchangePlan,
    OutboundPlan,
    Router,
    SetPlan,
    acknowledgment_plan,
    business_key,
    default_outbound_router,
    default_router,
    document_plan,
    errors_json,
    failed_document_plan,
    finding_json,
    group_plan,
    no_ta1,
    on_duplicate_status,
    pending_sets,
    policy_of,
)
from gateway.runtime.deliver import Deliverer, DeliveryCounts
from gateway.runtime.lanes import DeliveryLane
from gateway.store import Archive
from gateway.store.deliveries import OwedDelivery
from gateway.store.durable import SyncGroup, sweep
from gateway.store.errors import (
    ArchiveError,
    LeaseError,
)
from gateway.store.files import NextBatch
from gateway.store.rows import FileRow
from gateway.store.store import Store
from gateway.translate import FileInput, Translation, Translator
from gateway.verdict import AckPlan, SetVerdict, decide, group_refusals, sender_refusal, set_verdict
from gateway.x12.ack.answers import Answers
from gateway.x12.ack.read import FunctionalAck, TA1Ack, read_acks
from gateway.x12.ack.sent import carries_group, interchange_control
from gateway.x12.model import InterchangeHeader
from gateway.x12.validate.report import InterchangeReport

CHUNK_SETS = 64
"""A big file's results are recorded (and its outputs written) each time this many sets are pending (at the
next interchange boundary, or inside an interchange that has this many sets pending itself), so memory
stays bounded by a chunk, not by the file."""

STREAM_BYTES = 4 << 20
"""A file bigger than this is read from the archive as it is translated, not into memory first."""

ACK_MARKER = "ack for ISA13 {control} (interchange {position})"
"""How an acknowledgment names what it answers among its file's outbound rows."""
OLD_ACK_MARKER = "ack for ISA13 {control}"
ACK_PREFIX = OLD_ACK_MARKER.format(control="")
"""The same before migration 0002: a file interrupted across the upgrade sends that ack again, not a new one."""

ACK_KINDS = frozenset({"997", "999", "TA1"})
"""The outbound kinds that answer a partner's file (what a reprocessing does not send again)."""

TMP_DIR = ".tmp"
"""Outputs were written here first by earlier versions (swept at start; destinations keep their own)."""


@dataclass(slots=True)
class _Work:
    """One file of a batch on its way through the steps."""

    row: FileRow
    outcome: FileOutcome
    rerun: bool = False
    seed: uuid.UUID | None = None
    profile: Profile | None = None
    plan: FilePlan | None = None
    final: FileFinal | None = None
    interchanges: int = 0
    bytes_duplicate_of: int | None = None
    owed: list[OwedDelivery] = field(default_factory=list)  # deliveries recorded for it, leased to this worker
    adopted: list[int] = field(default_factory=list)  # deliveries taken over from a worker that died
    released: bool = False  # an operator released it (`gateway release`): its duplicates are let through
    parents: dict[int, int] = field(default_factory=dict)  # a reprocessing: the earlier file's documents by position
    answered: str | None = None  # a reprocessing: the acknowledgments the partner already has for these bytes
    received_ta1s: list[DocPlan] = field(default_factory=list)  # TA1s read from the last interchange
    envelopes: dict[int, InterchangeReport] | None = None  # a big file's envelope reports, by ISA byte offset


@dataclass(slots=True)
class _Open:
    """The interchange being read: its sets' compact answers (for the ack), and, once a chunk of it was
    recorded ahead of its trailer, its plan, its groups' plans (by GS byte offset) and why its sets are
    refused whatever they hold (its sender; its envelope, from the first quick pass)."""

    answers: Answers = field(default_factory=Answers)
    plan: InterchangePlan | None = None
    groups: dict[int, GroupPlan] = field(default_factory=dict)
    mismatch: str | None = None
    refusals: dict[int, str | None] = field(default_factory=dict)
    positions: dict[int, int] = field(default_factory=dict)  # GS byte offset → the group's position


Result = FileOutcome | Exception
"""A file's result in a batch: its outcome, or why it was not finished (LeaseError: taken over;
another GatewayError: the store or archive failed; anything else: a bug)."""


class Processor:
    """Processes claimed files in batches; one instance per worker process."""

    def __init__(
        self,
        store: Store,
        archive: Archive,
        translator: Translator,
        *,
        outbox: Path,
        worker: str,
        clock: Callable[[], datetime],
        isa13_window_days: int = 30,
        lease_seconds: float | None = None,
        sync: str = "group",
        chunk_sets: int = CHUNK_SETS,
        stream_bytes: int = STREAM_BYTES,
        deliverer: Deliverer | None = None,
        router: Router | None = None,
        background: bool = False,
        outbound_router: Router | None = None,
        delegated: bool = False,
    ) -> None:
        self.store = store
        self.archive = archive
        self.translator = translator
        self.partners = translator.partners
        self.outbox = outbox
        self.worker = worker
        self.clock = clock
        self.isa13_window_days = isa13_window_days
        self.lease_seconds = lease_seconds
        self.chunk_sets = chunk_sets
        self.stream_bytes = stream_bytes
        self._blobs = SyncGroup(sync)  # acknowledgment blobs, made durable inside the transaction recording them
        self.deliverer = deliverer
        self.router = router or default_router
        self.outbound_router = outbound_router or default_outbound_router  # where our acknowledgments go
        # delegated: the deliveries are recorded free for the delivery processes (`processing.delivery_workers`)
        # to take at once, and this worker tries none of them itself.
        self.delegated = delegated
        self.on_delegated: Callable[[], None] | None = None  # told when a batch recorded deliveries for them
        self._wake_owed = False  # a batch recorded deliveries for them, not told yet (wake_delegates)
        self.delivery_lease = 0.0 if delegated else lease_seconds or 60.0
        self.delivery_counts = DeliveryCounts()
        self._leased: list[int] = []
        self._renewed = 0.0
        self._recorded_at = 0.0  # time.monotonic() before the last results transaction (its deliveries' lease)
        # background: a batch's deliveries run on a thread of their own while the next batch is processed
        self.lane = (
            DeliveryLane[DeliveryCounts](self.delivery_counts.add, self.delivery_counts.touched.update)
            if background and deliverer is not None and not delegated
            else None
        )

    def drain(self) -> None:
        """Wait until every recorded batch's deliveries were tried (nothing to wait for without a lane)."""
        if self.lane is not None:
            self.lane.drain()

    def close(self) -> None:
        """Drain the deliveries and end their thread."""
        if self.lane is not None:
            self.lane.close()

    def sweep(self, older_than_seconds: float = 3600) -> int:
        """Remove temporary files interrupted batches left in the outbox and the archive."""
        now = time.time()
        return sweep(self.outbox / TMP_DIR, older_than_seconds, now) + self.archive.sweep(older_than_seconds, now)

    # --- a batch ----------------------------------------------------------------------------

    def process(self, row: FileRow) -> FileOutcome:
        """Process one leased file to a final status (never fails for a bad document).

        Raises :class:`~gateway.store.errors.LeaseError` when the lease was lost
        (taken over after it expired): the new owner redoes the file.
        """
        (result,) = self.process_batch([row])
        if isinstance(result, Exception):
            raise result
        return result

    def process_batch(
        self,
        rows: list[FileRow],
        stopping: Callable[[], bool] | None = None,
        *,
        claim: NextBatch | None = None,
        leased_at: float | None = None,
    ) -> list[Result]:
        """Process leased files together (one results transaction, one publish, one finish).

        Returns a result per row processed, in order; when ``stopping`` turns true the rest of ``rows``
        is left untouched (and gets no result) for the caller to release. ``claim``: delegated, the next
        batch is claimed in this one's results transaction (see :class:`NextBatch`); ``leased_at``: when
        ``rows`` were leased (``time.monotonic()``), if before now: their leases are renewed a third of the
        way through, counted from then.
        """
        self._leased = [r.id for r in rows]
        self._renewed = time.monotonic() if leased_at is None else leased_at
        results: dict[int, Result] = {}
        works: list[_Work] = []
        for row in rows:
            if stopping is not None and stopping():
                break
            try:
                self._keep_leases()
                works.append(self._prepare(row))
            except Exception as exc:  # noqa: BLE001 - one file's failure must not sink its batch; the caller decides
                results[row.id] = exc
        if works:
            try:
                # Stopping: no next batch (it would only be given back).
                self._complete(works, results, claim if self.delegated and not (stopping and stopping()) else None)
            except Exception as exc:  # noqa: BLE001 - the batch's transaction failed: every file in it is unfinished
                if len(works) > 1 and not transient(exc):
                    # Maybe one file's data (a value the database refuses): each file alone, so only it fails.
                    for work in works:
                        if work.row.id not in results:
                            results[work.row.id] = self.process_batch([work.row])[0]
                for work in works:
                    results.setdefault(work.row.id, exc)
        return [results[r.id] for r in rows if r.id in results]

    @property
    def renewed_at(self) -> float:
        """When (``time.monotonic()``) the batch in hand last started or renewed its leases: a long batch is
        progress, not a stuck loop (``/healthz``)."""
        return self._renewed

    def _keep_leases(self) -> None:
        """Renew the batch's leases every third of their length, so a long batch is not taken over."""
        if self.lease_seconds is None or time.monotonic() - self._renewed < self.lease_seconds / 3:
            return
        self.store.renew_leases(self._leased, self.worker, self.lease_seconds)
        self._renewed = time.monotonic()

    def _complete(self, works: list[_Work], results: dict[int, Result], claim: NextBatch | None = None) -> None:
        """Steps 2 to 4 for the prepared files (see the module notes)."""
        plans = [w.plan for w in works if w.plan is not None]
        self._record(plans, works, claim)
        finals: list[FileFinal] = []
        done: list[_Work] = []
        for work in works:
            if work.plan is not None and work.plan.lost is not None:
                results[work.row.id] = LeaseError(work.plan.lost)
                continue
            assert work.final is not None
            if not (self.delegated and work.plan is not None):  # else finished with its results
                finals.append(work.final)
            done.append(work)
        self._publish(done, wake_now=False)
        lost = set(self.store.finish_files(self.worker, finals))
        for work in done:
            if work.row.id in lost:
                results[work.row.id] = LeaseError(f"file {work.row.id}: lease lost before it was finished")
            else:
                results[work.row.id] = work.outcome

    def _record(self, plans: list[FilePlan], works: list[_Work], claim: NextBatch | None = None) -> None:
        self._recorded_at = time.monotonic()
        try:
            # At most one acknowledgment blob an interchange, written inside the transaction that holds the
            # ledger's write lock: its file is made now (creating one there waited on the journal).
            self.archive.reserve(self._blobs, sum(len(p.interchanges) for p in plans))
            # Delegated: nothing is delivered between recording and finishing, so one transaction does both.
            self.store.record_batch(
                self.worker,
                plans,
                before_commit=self._blobs.flush,
                delivery_lease=self.delivery_lease,
                finish=self.delegated,
                claim=claim,
            )
        finally:
            self._blobs.discard()  # staged blobs of a transaction that did not commit
        by_file = {p.file_id: p for p in plans if p.lost is None}
        for work in works:
            plan = by_file.get(work.row.id)
            if plan is not None:
                work.owed.extend(d for d in plan.owed if d.mine and d.id is not None)

    def _publish(self, works: list[_Work], *, wake_now: bool = True) -> None:
        """Deliver what the recorded files are owed (their canonical documents to the routed destinations,
        their acknowledgments to the partner), now, while this worker still holds the files' leases.

        Checked (and renewed) immediately before: a worker stopped after its results commit and resumed
        after another took its files over delivers nothing (the new owner took over the deliveries, and
        finishing then reports the lease lost). The deliveries were recorded with the results (leased to
        this worker); whatever cannot be delivered now stays pending for the delivery loop, under the
        destination's retry policy: a file's processing never waits for a slow receiver.

        Delegated, the delivery processes are told at once (``wake_now``: a big file's chunk) or by the
        caller's next :meth:`wake_delegates` (a batch: after the service's next ledger write, so their claim
        does not queue ahead of it for SQLite's one write lock).
        """
        if not works:
            return
        ids = [w.row.id for w in works]
        if self.delegated:
            # The delivery processes take them (recorded free to lease, whoever holds the files): nothing is
            # sent from here, so no lease to check first.
            held = set(ids)
        elif self.lease_seconds is not None:
            held = set(self.store.renew_leases(ids, self.worker, self.lease_seconds))
        else:
            held = set(self.store.leased_to(ids, self.worker))
        owed = [d for w in works if w.row.id in held for d in w.owed]
        adopted = [i for w in works if w.row.id in held for i in w.adopted]
        for work in works:
            work.owed, work.adopted = [], []  # a big file's next chunk starts afresh
        if self.delegated:  # counted at the run's end from the ledger
            self.delivery_counts.touched.update([*(o.id for o in owed if o.id is not None), *adopted])
            self._wake_owed = self._wake_owed or bool(owed or adopted)
            if wake_now:
                self.wake_delegates()
            return
        if self.deliverer is None or not (owed or adopted):
            return
        deliver = partial(self._deliver, owed, adopted, self._recorded_at)
        if self.lane is not None:
            self.lane.submit([o.id for o in owed if o.id is not None] + adopted, deliver)
        else:
            self.delivery_counts.add(deliver())

    def wake_delegates(self) -> None:
        """Tell the delivery processes of the deliveries recorded since they were last told, if any."""
        if self._wake_owed and self.on_delegated is not None:
            self._wake_owed = False
            self.on_delegated()

    def _deliver(self, owed: list[OwedDelivery], adopted: list[int], leased_at: float) -> DeliveryCounts:
        """Try a batch's deliveries: those its results commit created (leased at ``leased_at``, monotonic),
        and those it took over."""
        assert self.deliverer is not None
        counts = DeliveryCounts()
        if owed:
            counts.add(self.deliverer.deliver_recorded(owed, leased_at))
        if adopted:
            counts.add(self.deliverer.deliver_owed(adopted))
        return counts

    # --- one file ---------------------------------------------------------------------------

    def _prepare(self, row: FileRow) -> _Work:
        """Step 1: the file's plan (or, when its results are already recorded, the outputs to write again)."""
        work = _Work(row, FileOutcome(row.id, "processed"), rerun=row.attempts > 1)
        # Released by an operator, or a reprocessing (a new row for earlier bytes): duplicates let through.
        work.released = (row.reason or "").startswith(RELEASED) or row.parent_id is not None
        if row.parent_id is not None:
            work.parents = self.store.document_ids_by_position(row.parent_id)
            work.answered = self._answered(row.parent_id)
        final = self.store.pending_final(row)
        if final is not None:
            self._from_ledger(work, final)
            return work
        if work.rerun:
            self.store.reset_file_children(row.id, self.worker, "rerun after an interrupted attempt")
        work.profile = self.partners.get(row.partner_id) if row.partner_id else None
        work.seed = (
            uuid.UUID(row.correlation_id)
            if _is_uuid(row.correlation_id)
            else uuid.uuid5(uuid.NAMESPACE_URL, row.sha256)
        )
        info = FileInput(
            name=row.name,
            file_id=row.sha256,
            partner_id=row.partner_id,
            received_on=row.received_at.date(),
            report_sets=False,  # each set's answer is kept compact in ``_Open.answers`` as it ends
        )
        plan = self._new_plan(work, first=True)
        pending: list[Translation] = []
        opened = _Open()
        with self.archive.open(row.sha256) as stream:
            # A big file is read as it goes (flat memory whatever its size), a small one at once.
            source = stream if row.size > self.stream_bytes else stream.read()
            for item in self.translator.translate(source, info):
                self._keep_leases()
                if isinstance(item, InterchangeReport):
                    plan.interchanges.append(self._interchange(work, item, pending, opened))
                    plan.documents.extend(work.received_ta1s)
                    work.received_ta1s.clear()
                    pending, opened = [], _Open()
                elif item.set_id is not None and item.validation is not None:
                    if len(pending) >= self.chunk_sets:  # a big interchange: record what it has so far
                        self._open_chunk(work, plan, pending, opened)
                        pending = []
                    opened.answers.add(item.validation)
                    pending.append(item)
                else:
                    plan.documents.append(self._loose(work, item))
                if pending_sets(plan) >= self.chunk_sets:
                    self._flush_chunk(work, plan)
                    plan = self._new_plan(work, first=False)
                    if work.bytes_duplicate_of is not None:
                        pending = []
                        break  # the same bytes as an earlier file: nothing more to do
        for item in pending:  # sets of an interchange without a trailer still count
            plan.documents.append(self._loose(work, item))
        plan.conclude = lambda recorded: self._conclude(work, recorded)
        work.plan = plan
        return work

    def _new_plan(self, work: _Work, *, first: bool) -> FilePlan:
        on_duplicate = None if work.released else on_duplicate_status(policy_of(work.profile))
        return FilePlan(
            file_id=work.row.id,
            partner_id=work.row.partner_id,
            bytes_key=work.row.sha256 if first else None,
            on_bytes_duplicate=on_duplicate,
            rerun=work.rerun,
        )

    def _flush_chunk(self, work: _Work, plan: FilePlan) -> None:
        """Record a big file's results so far and write their outputs (bounded memory)."""
        plan.complete = False
        self._record([plan], [work])
        if plan.lost is not None:
            raise LeaseError(plan.lost)
        if plan.bytes_duplicate_of is not None:
            work.bytes_duplicate_of = plan.bytes_duplicate_of
        self._count(work, plan)
        self._publish([work])
        for ic in plan.interchanges:  # an open interchange's next chunk brings its next sets
            for group in ic.groups:
                group.first += len(group.sets)
                group.sets = []

    def _open_chunk(self, work: _Work, plan: FilePlan, sets: list[Translation], opened: _Open) -> None:
        """Put sets of an interchange whose trailer is still to come into ``plan`` (recorded ahead of it, so a
        big interchange takes the memory of a chunk). Each set's verdict is the one its trailer will confirm:
        its sender is known from the ISA, and whether its envelope refuses it from a first quick pass over
        the file's envelopes (:meth:`_envelope`), both through the functions :func:`decide` uses."""
        assert sets[0].validation is not None
        if opened.plan is None:
            header = sets[0].validation.header.interchange
            work.interchanges += 1
            _, opened.mismatch = sender_refusal(
                header, partners=self.partners, expected=work.row.partner_id, position=work.interchanges,
                file=work.row.name,
            )  # fmt: skip
            envelope = self._envelope(work, header)
            opened.refusals = group_refusals(envelope) if envelope is not None else {}
            if envelope is not None:  # groups numbered as the trailer numbers them
                opened.positions = {(g.header.segment.offset or 0): n for n, g in enumerate(envelope.groups, 1)}
            envelope_errors = envelope is not None and any(f.is_error for f in envelope.findings)
            refused = opened.mismatch is not None or envelope_errors
            opened.plan = self._interchange_plan(work, header, work.interchanges, claim=not refused)
        ic = opened.plan
        ic.groups = [g for g in ic.groups if g.id is None]  # recorded groups come back with their next sets
        for item in sets:
            assert item.validation is not None
            gh = item.validation.header.group
            if gh is None:
                continue  # an orphan set outside any group: the validator rejects it with the envelope
            key = gh.segment.offset or 0
            gp = opened.groups.get(key)
            if gp is None:
                gp = opened.groups[key] = group_plan(gh, "received", opened.positions.get(key, len(opened.groups) + 1))
            if not any(g is gp for g in ic.groups):
                ic.groups.append(gp)
            gp.sets.append(self._set(work, set_verdict(item, opened.mismatch or opened.refusals.get(key))))
        if not any(i is ic for i in plan.interchanges):
            plan.interchanges.append(ic)

    def _envelope(self, work: _Work, header: InterchangeHeader) -> InterchangeReport | None:
        """The envelope report of the interchange ``header`` opens, from a quick pass over the file's
        envelopes (done once, for a file with an interchange too big for one chunk)."""
        if work.envelopes is None:
            with self.archive.open(work.row.sha256) as source:
                envelopes = self.translator.envelopes(source, work.profile)
                work.envelopes = {ic.header.segment.offset or 0: ic for ic in envelopes}
        return work.envelopes.get(header.segment.offset or 0)

    def _conclude(self, work: _Work, plan: FilePlan) -> FileFinal:
        """The file's final status, once the results transaction has decided its duplicates."""
        outcome = work.outcome
        first = plan.bytes_duplicate_of or work.bytes_duplicate_of
        if first is not None:
            policy = policy_of(work.profile)
            outcome.status = on_duplicate_status(policy) or "duplicate"  # (bytes are only claimed when not allowed)
            outcome.reason = f"same bytes as file {first} (policy {policy})"
            outcome.duplicates = 1
        else:
            self._count(work, plan)
            self._final(outcome)
        work.final = FileFinal(work.row.id, outcome.status, outcome.reason, outcome.details())
        return work.final

    def _count(self, work: _Work, plan: FilePlan) -> None:
        """Count a recorded plan into the outcome, and list the outputs it gives."""
        outcome = work.outcome
        for ic in plan.interchanges:
            for group in ic.groups:
                for st in group.sets:
                    outcome.sets += 1
                    if ic.duplicate_of is not None:
                        outcome.duplicates += 1
                    elif st.document is not None:
                        self._count_document(work, st.document)
                    else:
                        outcome.failed += 1
            if ic.outbound is not None:
                self._count_ack(work, ic.outbound)
        for doc in plan.documents:
            if doc.doc_type == ACKNOWLEDGMENT:
                outcome.acknowledgments += 1  # a TA1 received: not a set
                continue
            outcome.sets += 1
            if doc.status == "failed":
                outcome.failed += 1
            else:
                self._count_document(work, doc)

    def _count_document(self, work: _Work, doc: DocPlan) -> None:
        outcome = work.outcome
        if doc.doc_type == ACKNOWLEDGMENT:
            outcome.acknowledgments += 1  # kept in the ledger, no output (matching it is ack tracking's)
            return
        if doc.duplicate_of is not None and doc.on_duplicate is not None:
            outcome.duplicates += 1
            outcome.held += doc.on_duplicate == "held"
            return
        outcome.documents += 1
        if doc.status == "unrouted":
            outcome.unrouted += 1

    @staticmethod
    def _count_ack(work: _Work, out: OutboundPlan) -> None:
        work.outcome.acks.append(f"{out.partner_id} {out.kind} {out.control_number}")

    def _from_ledger(self, work: _Work, final: FileFinal) -> None:
        """A file whose results were recorded by an attempt that died before delivering them: its
        deliveries not yet delivered are taken over (they keep their idempotency keys) and delivered."""
        work.final = final
        work.outcome = FileOutcome.from_final(final)
        work.adopted = self.store.adopt_deliveries(
            work.row.id, self.worker, self.delivery_lease, work.row.previous_owner
        )

    @staticmethod
    def _final(outcome: FileOutcome) -> None:
        ok = outcome.documents + outcome.duplicates + outcome.acknowledgments
        if outcome.sets == 0 and not outcome.acknowledgments:
            outcome.status, outcome.reason = "failed", outcome.reason or "no transaction sets or documents in the file"
        elif outcome.failed and ok:
            outcome.status = "partial"
            outcome.reason = f"{outcome.failed} of {outcome.sets} sets/documents failed"
        elif outcome.failed:
            outcome.status = "failed"
            outcome.reason = outcome.reason or f"all {outcome.sets} sets/documents failed"
        elif not outcome.documents and not outcome.acknowledgments:
            # Nothing new in it (a resend with a new ISA13 or new bytes): say so rather than "processed".
            outcome.status = "held" if outcome.held else "duplicate"
            held = f", {outcome.held} held for review" if outcome.held else ""
            outcome.reason = f"all {outcome.sets} sets/documents are duplicates{held}"

    # --- X12 --------------------------------------------------------------------------------

    def _interchange(
        self, work: _Work, ic: InterchangeReport, sets: list[Translation], opened: _Open
    ) -> InterchangePlan:
        """The plan of an interchange at its trailer, from the decision every command shares
        (:func:`decide`), with its sets not yet recorded (``sets``); ``opened`` has its sets' answers, and
        its plan when earlier chunks recorded some of its sets."""
        if opened.plan is None:
            work.interchanges += 1
        position = work.interchanges
        verdict = decide(
            ic, sets, partners=self.partners, expected=work.row.partner_id, position=position,
            file=work.row.name, answers=opened.answers,
        )  # fmt: skip
        plan = opened.plan or self._interchange_plan(work, ic.header, position, claim=verdict.claims_isa13)
        if opened.plan is not None and not verdict.claims_isa13:
            plan.release_isa13 = True  # claimed at its first chunk, rejected at its trailer
        plan.status = verdict.status
        # Acks draw from the file's partner's sequence: none for a file without one (nobody to send to), nor for
        # a reprocessing of bytes the partner was answered for already.
        owed = verdict.ack if work.row.partner_id else None
        again = None
        if owed is not None and work.answered is not None:
            owed, again = None, f"not acknowledged again: the partner has {work.answered}"
        plan.reason = "; ".join(r for r in (verdict.reason, *no_ta1(ic), again) if r) or None
        plan.ack = self._ack_builder(owed, plan.ack_marker or "")
        if plan.ack is not None:
            plan.ack_router = self._ack_router(work.row.partner_id, plan.test)
        plan.groups = []
        for number, gv in enumerate(verdict.groups, 1):
            key = gv.report.header.segment.offset or 0
            gp = opened.groups.get(key) or group_plan(gv.report.header, "", number)
            gp.status = gv.status
            plan.groups.append(gp)
            gp.sets.extend(self._set(work, sv) for sv in gv.sets)
        # Orphan sets (outside any group) are left out: the validator rejected them with the envelope.
        for number, ta1 in enumerate(verdict.received_acks, 1):
            work.received_ta1s.append(self._acknowledgment(work, ta1, f"ta1-{position}-{number}", 0))
        return plan

    def _ack_router(self, partner: str | None, test: bool) -> AckRouter:
        """Where an acknowledgment of ``partner``'s interchange goes once its kind is known (outbound rules
        match on partner, kind and test; an acknowledgment has no canonical document for predicates)."""
        return lambda kind: self.outbound_router(partner, kind, test, dict)

    def _interchange_plan(self, work: _Work, h: InterchangeHeader, position: int, *, claim: bool) -> InterchangePlan:
        """An interchange's plan from its header (its status, groups and ack come at its trailer);
        ``claim``: whether it claims its ISA13 (not when it is refused: see ``claims_isa13``)."""
        profile = work.profile
        allow = profile is not None and profile.duplicates.policy is DuplicatePolicy.ALLOW
        days = profile.duplicates.isa13_window_days if profile else None
        window = (self.isa13_window_days if days is None else days) * 86400  # 0: no ISA13 check
        marker = ACK_MARKER.format(control=h.control_number, position=position)
        return InterchangePlan(
            sender_qualifier=h.sender_qualifier,
            sender_id=h.sender_id,
            receiver_qualifier=h.receiver_qualifier,
            receiver_id=h.receiver_id,
            control_number=h.control_number,
            version=h.version,
            status="received",
            position=position,
            test=h.is_test,
            # Another partner's interchange claims nothing (its real sender's file must not be a duplicate),
            # nor does a rejected one (the partner's corrected resend may reuse its ISA13).
            isa13_key=f"{h.sender_qualifier}:{h.sender_id}:{h.control_number}" if window and claim else None,
            isa13_window=window,
            on_duplicate=None if allow or work.released else "duplicate",
            ack_marker=marker,
            ack_old_markers=(OLD_ACK_MARKER.format(control=h.control_number),),
        )

    def _set(self, work: _Work, verdict: SetVerdict) -> SetPlan:
        item = verdict.translation
        assert item.set_id is not None and item.set_control is not None
        if verdict.status == "translated":
            # Findings the partner's profile accepts stay visible with the set (``messages show``).
            warnings = [finding_json(f) for f in verdict.warnings]
            return SetPlan(
                item.set_id, item.set_control, "translated", errors=warnings, document=self._document(work, item)
            )
        if verdict.status == "acknowledgment" and item.acknowledgment is not None:
            doc = self._acknowledgment(work, item.acknowledgment, f"doc-{item.index}", item.index)
            return SetPlan(item.set_id, item.set_control, "accepted", reason=doc.reason, document=doc)
        return SetPlan(
            item.set_id,
            item.set_control,
            verdict.status,
            errors=errors_json(verdict.errors),
            reason=verdict.reason,
        )

    def _acknowledgment(self, work: _Work, ack: FunctionalAck | TA1Ack, name: str, position: int) -> DocPlan:
        """An inbound 997/999/TA1 kept as read (an ``acknowledgment`` document: no output, no dedupe key)."""
        assert work.seed is not None
        return acknowledgment_plan(ack, str(uuid.uuid5(work.seed, name)), position, work.row.partner_id)

    def _answered(self, file_id: int) -> str | None:
        """The acknowledgments (997/999/TA1) the partner received for ``file_id``, or for the nearest earlier copy
        it repeats that we answered, as ``file N's 997 ISA13``, when each was delivered and accepted everything
        it answers (so the answer now would be the same). None otherwise: no answer, one not delivered (or
        still on its way), or one that refused something (a TA1 R, a 997 AK9/AK5 R or P): a map or profile
        fixed since may change the answer, which the partner then gets."""
        seen: set[int] = set()
        current: int | None = file_id
        while current is not None and current not in seen:
            seen.add(current)
            sent = [o for o in self.store.list_outbound(file_id=current, limit=50) if o.kind in ACK_KINDS]
            if sent:
                if not all(self._delivered(o.id) and self._accepting(o.sha256) for o in sent):
                    return None
                return f"file {current}'s " + ", ".join(f"{o.kind} {o.control_number}" for o in reversed(sent))
            current = self.store.get_file(current).parent_id
        return None

    def _delivered(self, outbound_id: int) -> bool:
        """Whether an outbound interchange was delivered to each destination it was routed to (the partner's
        among them), by the latest delivery to each (a dead letter retransmitted counts by its copy)."""
        latest: dict[str, str] = {}
        for d in sorted(self.store.list_deliveries(outbound_id=outbound_id, limit=50), key=lambda d: d.id):
            latest[d.destination] = d.status
        return bool(latest) and all(status == "delivered" for status in latest.values())

    def _accepting(self, sha256: str) -> bool:
        """Whether the archived acknowledgment ``sha256`` accepts everything it answers (one it cannot read
        again, purged say, is taken as not: the partner is answered again rather than left unanswered)."""
        try:
            data = self.archive.read(sha256)
        except ArchiveError:
            return False
        for ack in read_acks(data):
            if isinstance(ack, TA1Ack):
                if not ack.accepted:
                    return False
            elif ack.code not in ("A", "E") or not all(s.accepted for s in ack.sets):
                return False
        return True

    def _ack_builder(self, ack: AckPlan | None, marker: str) -> AckBuilder | None:
        """What builds the acknowledgment inside the results transaction (None: the partner gets none)."""
        if ack is None:
            return None  # no partner, another partner's interchange, or acknowledgments (never answered)

        def build(draw: Callable[[], int], duplicate: bool) -> OutboundPlan | None:
            drawn: dict[str, int] = {}

            def next_control(what: str) -> int:
                # One persisted draw per acknowledgment: ISA13 and GS06 share it (both unique per
                # sender that way), and ST02 counts 1, 2, ... inside the group.
                if what == "set":
                    drawn["set"] = drawn.get("set", 0) + 1
                    return drawn["set"]
                if "n" not in drawn:
                    drawn["n"] = draw()
                return drawn["n"]

            try:
                data = ack.build(next_control, self.clock(), duplicate=duplicate)
            except DocumentError as exc:
                if exc.code != "X12-A002":
                    raise
                return None  # no valid TA1 can name this interchange: its reason says why (_no_ta1)
            if data is None:
                return None
            sha = self.archive.stage(data, self._blobs)
            control = interchange_control(data)
            sent = ack.kind if carries_group(data) else "TA1"  # a rejected or duplicate interchange gets its TA1 alone
            return OutboundPlan(ack.partner, sent, sha, control, marker, data=data)

        return build

    # --- documents --------------------------------------------------------------------------

    def _loose(self, work: _Work, item: Translation) -> DocPlan:
        """A CSV/XML document, or a translation outside any group."""
        if item.ok and item.document is not None:
            return self._document(work, item)
        if item.errors:
            work.outcome.reason = work.outcome.reason or f"{item.errors[0].code} {item.errors[0].message}"
        assert work.seed is not None
        return failed_document_plan(item, str(uuid.uuid5(work.seed, f"doc-{item.index}")))

    def _document(self, work: _Work, item: Translation) -> DocPlan:
        """The document's ledger plan, with a correlation id and content a rerun reproduces exactly."""
        assert work.seed is not None
        policy = policy_of(self.partners.get(item.partner) if item.partner else None)
        on_duplicate = None if work.released else on_duplicate_status(policy)
        correlation = str(uuid.uuid5(work.seed, f"doc-{item.index}"))
        plan = document_plan(item, correlation, on_duplicate, self.router)
        plan.parent_id = work.parents.get(item.index)
        return plan


def transient(exc: BaseException) -> bool:
    """Whether a failure may pass by itself (the database restarting, a full disk): the file is released
    for a retry. Otherwise (a blob missing from the archive, a value the store refuses, a bug) retrying
    the same file cannot help: it is failed with the reason, for an operator. Read from the one
    classification, :func:`gateway.errors.disposition`."""
    return disposition(exc) is Disposition.RETRY


def _is_uuid(value: str | None) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


__all__ = ["FileOutcome", "Processor", "business_key", "transient"]
