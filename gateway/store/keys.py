"""Control-number sequences and duplicate-detection keys.

Both are single upserts (``INSERT ... ON CONFLICT``), atomic on SQLite and
PostgreSQL alike, so two processes can never take the same control number
or both believe they saw a key first.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, case, select, update
from sqlalchemy.dialects import postgresql, sqlite

from gateway.store.base import StoreBase, as_enum
from gateway.store.errors import StoreValueError
from gateway.store.rows import DedupeRow
from gateway.store.schema import dedupe_keys, sequences
from gateway.store.statuses import DedupeKind, EntityKind

__all__ = ["CONTROL_NUMBER_MAX", "KeyOps", "SequenceDraws"]

CONTROL_NUMBER_MAX = 999_999_999
"""The largest ISA13/GS06 control number (9 digits); sequences wrap to 1 after it."""

_KEY_MAX = 512


def _check_name(value: str, what: str, longest: int) -> None:
    if not value or len(value) > longest:
        raise StoreValueError(f"{what} must be 1 to {longest} characters, got {value!r}")


class KeyOps(StoreBase):
    """Sequences for outbound control numbers; dedupe keys for inbound duplicates."""

    def _insert(self) -> Any:
        return postgresql.insert if self.dialect == "postgresql" else sqlite.insert

    def next_value(self, partner_id: str, kind: str, *, maximum: int = CONTROL_NUMBER_MAX) -> int:
        """The next value of the sequence ``(partner_id, kind)`` (e.g. ``isa13``), starting at 1.

        Atomic across threads, processes and restarts: one upsert that
        increments and returns. After ``maximum`` it wraps back to 1.
        ``partner_id`` may be ``""`` for a sequence shared by all partners.
        """
        with self._db.write(f"take the next {kind} for {partner_id!r}") as conn:
            return self.next_value_on(conn, partner_id, kind, maximum=maximum)

    def next_value_on(self, conn: Connection, partner_id: str, kind: str, *, maximum: int = CONTROL_NUMBER_MAX) -> int:
        """:meth:`next_value` inside the caller's transaction (the row stays locked until it ends)."""
        _check_name(kind, "sequence kind", 16)
        if maximum < 1:
            raise StoreValueError(f"sequence maximum must be at least 1, got {maximum}")
        name = f"next_value:{maximum}"
        stmt = self._statements.get(name)
        if stmt is None:
            upsert = self._insert()(sequences)
            stmt = upsert.on_conflict_do_update(
                index_elements=[sequences.c.partner_id, sequences.c.kind],
                set_={
                    "value": case((sequences.c.value >= maximum, 1), else_=sequences.c.value + 1),
                    "updated_at": upsert.excluded.updated_at,
                },
            ).returning(sequences.c.value)
            self._statements[name] = stmt
        values = {"partner_id": partner_id, "kind": kind, "value": 1, "updated_at": self._now()}
        return int(conn.execute(stmt, values).scalar_one())

    def draws_on(self, conn: Connection) -> SequenceDraws:
        """Many values drawn in the caller's transaction with one statement per sequence (see
        :class:`SequenceDraws`)."""
        return SequenceDraws(self, conn)

    def set_sequence(self, partner_id: str, kind: str, last_value: int) -> None:
        """Set the last value handed out (the next is ``last_value + 1``), e.g. when moving from another gateway."""
        _check_name(kind, "sequence kind", 16)
        if last_value < 0:
            raise StoreValueError(f"a sequence value cannot be negative: {last_value}")
        now = self._now()
        stmt = self._insert()(sequences).values(partner_id=partner_id, kind=kind, value=last_value, updated_at=now)
        stmt = stmt.on_conflict_do_update(
            index_elements=[sequences.c.partner_id, sequences.c.kind],
            set_={"value": last_value, "updated_at": now},
        )
        with self._db.write(f"set the {kind} sequence of {partner_id!r}") as conn:
            conn.execute(stmt)

    def _claim_insert(self) -> Any:
        stmt = self._statements.get("claim")
        if stmt is None:
            stmt = self._claim_upsert().returning(dedupe_keys.c.id)
            self._statements["claim"] = stmt
        return stmt

    def _claim_insert_keys(self) -> Any:
        """The claim insert for many keys at once; returns the keys that were new."""
        stmt = self._statements.get("claim_keys")
        if stmt is None:
            stmt = self._claim_upsert().returning(dedupe_keys.c.kind, dedupe_keys.c.partner_id, dedupe_keys.c.key)
            self._statements["claim_keys"] = stmt
        return stmt

    def _claim_upsert(self) -> Any:
        return self._insert()(dedupe_keys).on_conflict_do_nothing(
            index_elements=[dedupe_keys.c.kind, dedupe_keys.c.partner_id, dedupe_keys.c.key]
        )

    @staticmethod
    def _claim_values(
        kind: str, partner_id: str | None, key: str, entity_kind: str, entity_id: int, now: datetime
    ) -> dict[str, Any]:
        """The checked values of a new dedupe-key row."""
        _check_name(key, "dedupe key", _KEY_MAX)
        return {
            "kind": as_enum(DedupeKind, kind, "dedupe key kind").value,
            "partner_id": partner_id or "",
            "key": key,
            "first_entity_kind": as_enum(EntityKind, entity_kind, "entity kind").value,
            "first_entity_id": entity_id,
            "seen_at": now,
            "hits": 0,
        }

    def claim_on(
        self,
        conn: Connection,
        kind: str,
        partner_id: str | None,
        key: str,
        entity_kind: str,
        entity_id: int,
        window_seconds: float | None = None,
    ) -> DedupeRow | None:
        """:meth:`claim_key` inside the caller's transaction (batched writers)."""
        now = self._now()
        values = self._claim_values(kind, partner_id, key, entity_kind, entity_id, now)
        dedupe_kind, partner, owner_kind = values["kind"], values["partner_id"], values["first_entity_kind"]
        if conn.execute(self._claim_insert(), values).first() is not None:
            return None  # new: claimed
        where = (dedupe_keys.c.kind == dedupe_kind, dedupe_keys.c.partner_id == partner, dedupe_keys.c.key == key)
        existing = conn.execute(select(dedupe_keys).where(*where).with_for_update()).mappings().one()
        if (existing["first_entity_kind"], existing["first_entity_id"]) == (owner_kind, entity_id):
            return None  # our own claim (a rerun)
        if window_seconds is not None and existing["seen_at"] <= now - timedelta(seconds=window_seconds):
            conn.execute(
                update(dedupe_keys)
                .where(dedupe_keys.c.id == existing["id"])
                .values(first_entity_kind=owner_kind, first_entity_id=entity_id, seen_at=now, hits=0)
            )
            return None  # seen, but longer ago than the window: new again
        row = (
            conn.execute(
                update(dedupe_keys)
                .where(dedupe_keys.c.id == existing["id"])
                .values(hits=dedupe_keys.c.hits + 1)
                .returning(*dedupe_keys.c)
            )
            .mappings()
            .one()
        )
        found = DedupeRow.from_mapping(row)
        return replace(found, partner_id=found.partner_id or None)

    def existing_keys(
        self, kind: str, partner_id: str | None, keys: list[str], window_seconds: float | None = None
    ) -> set[str]:
        """Which of ``keys`` are already claimed (within the window): a read-only pre-check."""
        if not keys:
            return set()
        dedupe_kind = as_enum(DedupeKind, kind, "dedupe key kind")
        query = select(dedupe_keys.c.key).where(
            dedupe_keys.c.kind == dedupe_kind.value,
            dedupe_keys.c.partner_id == (partner_id or ""),
            dedupe_keys.c.key.in_(keys),
        )
        if window_seconds is not None:
            query = query.where(dedupe_keys.c.seen_at > self._now() - timedelta(seconds=window_seconds))
        with self._db.read("check dedupe keys") as conn:
            return {r[0] for r in conn.execute(query)}

    def claim_key(
        self,
        kind: str,
        partner_id: str | None,
        key: str,
        entity_kind: str,
        entity_id: int,
        window_seconds: float | None = None,
    ) -> DedupeRow | None:
        """Claim ``key`` for an entity: None if it is new (now claimed), else the row of its first user.

        A returned row means "duplicate": the caller marks its entity so and
        may name ``first_entity_kind``/``first_entity_id`` as the original
        (the row's ``hits`` counts the duplicates seen). With
        ``window_seconds``, a key last claimed longer ago than that is
        treated as new: it is re-pointed at this entity and its ``seen_at``
        renewed. The same entity claiming its own key again (a rerun) gets
        None. ``partner_id`` None means a key not scoped to a partner.
        """
        if window_seconds is not None and window_seconds < 0:
            raise StoreValueError(f"window_seconds cannot be negative, got {window_seconds}")
        with self._db.write(f"claim {kind} key {key!r}") as conn:
            return self.claim_on(conn, kind, partner_id, key, entity_kind, entity_id, window_seconds)


class SequenceDraws:
    """Values drawn from sequences in one transaction, exactly as successive :meth:`KeyOps.next_value_on`
    calls would hand them out, but with two statements per sequence instead of one per value (a batch
    of 32 files draws 32 acknowledgment numbers): the first draw advances the row (on PostgreSQL it
    stays locked until the transaction ends, as with ``next_value_on``); the next ones are counted here,
    and :meth:`finish` writes the last one back. ``finish`` must run before the transaction commits;
    if the transaction rolls back, nothing was drawn."""

    def __init__(self, ops: KeyOps, conn: Connection, maximum: int = CONTROL_NUMBER_MAX) -> None:
        self._ops = ops
        self._conn = conn
        self._maximum = maximum
        self._last: dict[tuple[str, str], int] = {}
        self._unwritten: set[tuple[str, str]] = set()

    def draw(self, partner_id: str, kind: str) -> int:
        """The next value of ``(partner_id, kind)``."""
        sequence = (partner_id, kind)
        last = self._last.get(sequence)
        if last is None:
            value = self._ops.next_value_on(self._conn, partner_id, kind, maximum=self._maximum)
        else:
            value = 1 if last >= self._maximum else last + 1
            self._unwritten.add(sequence)
        self._last[sequence] = value
        return value

    def finish(self) -> None:
        """Write back the last value of every sequence drawn more than once."""
        now = self._ops._now()
        for partner_id, kind in sorted(self._unwritten):
            self._conn.execute(
                update(sequences)
                .where(sequences.c.partner_id == partner_id, sequences.c.kind == kind)
                .values(value=self._last[(partner_id, kind)], updated_at=now)
            )
        self._unwritten.clear()
