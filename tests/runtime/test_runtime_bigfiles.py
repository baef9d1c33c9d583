"""A big file of ONE interchange with many sets, recorded in chunks inside the interchange: the same
ledger, outputs and single acknowledgment as the file recorded whole; an envelope refused at its
trailer refuses the sets recorded before it; a duplicate ISA13; a worker killed between two chunks of
one interchange; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from runtimekit import (  # noqa: F401 (pytest fixtures)
    BACKENDS,
    PARTNERS,
    golden,
    make_home,
    pg_admin_fixture,
    pg_url_fixture,
    schema_url,
    store_url_fixture,
    workspace_fixture,
    x12,
)
from sqlalchemy import Engine, text

from gateway.runtime.process import Processor
from gateway.runtime.service import Service
from gateway.store.results import FilePlan
from gateway.translate import FileInput, Translation, Translator
from gateway.workspace import Workspace
from gateway.x12.ack.read import FunctionalAck, read_acks
from gateway.x12.validate.report import InterchangeReport
from gateway.x12.validate.validator import Validator

TEMPLATE = PARTNERS / "medsupply/cases/810-invoice.edi"  # invoice INV-0042377
SETS = 10


def ack_files(outbox: Path) -> dict[str, bytes]:
    """The ack files, their bytes with the time they were written (ISA09/10, GS04/05) set to one value."""
    return {
        f"{p.parent.name}/{p.name}": untimed(p.read_bytes())
        for p in sorted(outbox.glob("*/*.x12"))
        if p.parent.name != "canonical" and not p.name.startswith(".")
    }


def untimed(ack: bytes) -> bytes:
    el = ack[3:4]
    ack = ack[:70] + b"261123" + el + b"1200" + ack[81:]
    return re.sub(rb"(GS\*[^*]*\*[^*]*\*[^*]*)\*\d+\*\d+\*", rb"\1*20261123*1200*", ack)


def outcome_of(service: Service, outbox: Path, file_id: int) -> dict[str, Any]:
    """What a processed file left: its row, its ledger tree, its outputs, its outbound rows."""
    row = service.store.get_file(file_id)
    tree = service.store.file_tree(file_id)
    return {
        "file": (row.status, row.reason),
        "interchanges": [(ic.row.control_number, ic.row.status) for ic in tree.interchanges],
        "groups": [(g.row.position, g.row.status) for ic in tree.interchanges for g in ic.groups],
        "sets": [
            (s.row.position, s.row.control_number, s.row.status, s.row.reason)
            for ic in tree.interchanges
            for g in ic.groups
            for s in g.sets
        ],
        "documents": [(d.position, d.business_key, d.status) for d in tree.all_documents()],
        "canonical": {
            p.name: golden(json.loads(p.read_bytes()))
            for p in sorted((outbox / "canonical").glob("*/*.json"))
            if not p.name.startswith(".")
        },
        "acks": ack_files(outbox),
        "outbound": sorted((o.kind, o.control_number, o.reason) for o in service.store.list_outbound(file_id=file_id)),
    }


def run_files(
    root: Path, store_url: str, workspace: Workspace, files: list[bytes], chunk_sets: int, stream_bytes: int
) -> tuple[list[dict[str, Any]], int]:
    """Process ``files`` one after the other in a fresh deployment; their outcomes and record_batch calls."""
    home = make_home(root, store_url, stable_seconds=0)
    service = home.service(workspace)
    service.processor.chunk_sets = chunk_sets
    service.processor.stream_bytes = stream_bytes
    calls: list[int] = []
    real = service.store.record_batch

    def spy(
        worker: str, plans: list[FilePlan], before_commit: Callable[[], object] | None = None, **kw: Any
    ) -> list[FilePlan]:
        calls.append(len(plans))
        return real(worker, plans, before_commit, **kw)

    service.store.record_batch = spy  # type: ignore[method-assign]
    outcomes = []
    for n, data in enumerate(files):
        home.drop(f"big{n}.edi", data, "medsupply")
        service.run_once()
        (row,) = [f for f in service.store.list_files(limit=100) if f.name.endswith(f"big{n}.edi")]
        outcomes.append(outcome_of(service, home.outbox, row.id))
    assert not any(any(t.iterdir()) for t in home.outbox.rglob(".tmp")), "temporaries left behind"
    service.store.close()
    return outcomes, len(calls)


@pytest.fixture(name="urls", params=BACKENDS)
def urls_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two empty stores, the chunked run's and the whole run's: SQLite files, or two PostgreSQL schemas."""
    if request.param == "sqlite":
        yield (f"sqlite:///{tmp_path / 'chunked.sqlite'}", f"sqlite:///{tmp_path / 'whole.sqlite'}")
        return
    admin: Engine = request.getfixturevalue("pg_admin")
    schemas = [f"gw_big_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    with admin.begin() as conn:
        for schema in schemas:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield (schema_url(schemas[0]), schema_url(schemas[1]))
    finally:
        with admin.begin() as conn:
            for schema in schemas:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


def run_both(
    tmp_path: Path, urls: tuple[str, str], workspace: Workspace, files: list[bytes]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    chunked, calls = run_files(tmp_path / "chunked", urls[0], workspace, files, 3, 0)
    whole, _ = run_files(tmp_path / "whole", urls[1], workspace, files, 1000, 1 << 30)
    return chunked, whole, calls


def the_ack(outcome: dict[str, Any], workspace: Workspace) -> list[FunctionalAck]:
    (data,) = outcome["acks"].values()
    report = Validator(workspace.catalog).validate(data)
    assert report.valid, [f.message for s in report.sets() for f in s.findings]
    return [a for a in read_acks(data) if isinstance(a, FunctionalAck)]


def test_one_big_interchange_in_chunks_gives_what_it_gives_whole(
    tmp_path: Path, urls: tuple[str, str], workspace: Workspace
) -> None:
    data = x12(TEMPLATE, 801, sets=SETS, tag="one", bad=frozenset({5}))
    (chunked,), (whole,), calls = run_both(tmp_path, urls, workspace, [data])
    assert calls >= SETS // 3, "recorded in chunks inside the interchange"
    assert chunked["file"] == ("partial", f"1 of {SETS} sets/documents failed")
    assert chunked["interchanges"] == [("000000801", "partially_accepted")]
    assert chunked["groups"] == [(1, "partially_accepted")]
    assert [s[0] for s in chunked["sets"]] == list(range(1, SETS + 1))
    assert len(chunked["canonical"]) == SETS - 1
    for key in whole:
        assert chunked[key] == whole[key], key
    (ack,) = the_ack(chunked, workspace)  # one 997 answering every set of the interchange
    assert len(ack.sets) == SETS
    assert [s.code for s in ack.sets].count("R") == 1 and (ack.received, ack.accepted_count) == (SETS, SETS - 1)


def test_an_envelope_refused_at_its_trailer_refuses_the_sets_recorded_before_it(
    tmp_path: Path, urls: tuple[str, str], workspace: Workspace
) -> None:
    data = x12(TEMPLATE, 802, sets=SETS, tag="ge").replace(f"GE*{SETS}*802".encode(), b"GE*7*802")
    (chunked,), (whole,), _ = run_both(tmp_path, urls, workspace, [data])
    assert chunked["file"][0] == "failed"
    assert {s[2] for s in chunked["sets"]} == {"rejected"}
    assert all("envelope rejected" in (s[3] or "") for s in chunked["sets"])
    assert chunked["canonical"] == {}, "nothing of a refused group is passed on"
    for key in whole:
        assert chunked[key] == whole[key], key
    (ack,) = the_ack(chunked, workspace)
    assert ack.code == "R"


def test_a_big_interchange_sent_again_is_a_duplicate_in_every_chunk(
    tmp_path: Path, urls: tuple[str, str], workspace: Workspace
) -> None:
    first = x12(TEMPLATE, 803, sets=SETS, tag="a")
    again = x12(TEMPLATE, 803, sets=SETS, tag="b")  # the same ISA13, other bytes
    chunked, whole, _ = run_both(tmp_path, urls, workspace, [first, again])
    assert chunked[1]["file"][0] == "duplicate"
    assert chunked[1]["interchanges"] == [("000000803", "duplicate")]
    assert {s[2] for s in chunked[1]["sets"]} == {"duplicate"}
    assert chunked == whole


def test_a_big_interchange_rejected_at_its_trailer_leaves_its_isa13_to_the_resend(
    tmp_path: Path, urls: tuple[str, str], workspace: Workspace
) -> None:
    """Claimed at its first chunk, rejected at its trailer (every set bad): the claim is released, so
    the partner's corrected resend with the same ISA13 is processed, as when it is recorded whole."""
    rejected = x12(TEMPLATE, 804, sets=SETS, tag="bad", bad=frozenset(range(1, SETS + 1)))
    fixed = x12(TEMPLATE, 804, sets=SETS, tag="fixed")
    chunked, whole, _ = run_both(tmp_path, urls, workspace, [rejected, fixed])
    assert chunked[0]["interchanges"] == [("000000804", "rejected")]
    assert chunked[1]["file"][0] == "processed", chunked[1]["file"]
    assert chunked[1]["interchanges"] == [("000000804", "accepted")]
    for first, second in zip(chunked, whole, strict=True):
        for key in second:
            assert first[key] == second[key], key


def test_the_same_bytes_again_record_nothing_even_mid_interchange(
    tmp_path: Path, urls: tuple[str, str], workspace: Workspace
) -> None:
    """A bytes duplicate found at a chunk inside an interchange leaves no stray set behind."""
    data = x12(TEMPLATE, 805, sets=SETS, tag="same")
    chunked, whole, _ = run_both(tmp_path, urls, workspace, [data, data])
    assert chunked[1]["file"][0] == "duplicate"
    assert chunked[1]["documents"] == [] and chunked[1]["sets"] == []
    assert chunked[1] == whole[1]


class DiesAfter:
    """A translator that dies (as a killed process would) after ``sets`` sets of the file."""

    def __init__(self, inner: Translator, sets: int) -> None:
        self.inner = inner
        self.partners = inner.partners
        self.sets = sets

    def translate(self, data: Any, info: FileInput) -> Iterator[Translation | InterchangeReport]:
        for n, item in enumerate(self.inner.translate(data, info)):
            if n == self.sets:
                raise KeyboardInterrupt("killed inside the interchange")
            yield item

    def envelopes(self, source: Any, forced: Any = None) -> Iterator[InterchangeReport]:
        return self.inner.envelopes(source, forced)


def test_a_worker_killed_between_chunks_of_one_interchange(
    tmp_path: Path, store_url: str, workspace: Workspace
) -> None:
    """The first chunks were recorded and their documents written; the rerun neither duplicates them nor
    renumbers anything: the outcome is the one an uninterrupted run gives."""
    data = x12(TEMPLATE, 804, sets=SETS, tag="kill")
    home = make_home(tmp_path / "killed", store_url, stable_seconds=0)
    service = home.service(workspace, worker="w1")
    home.drop("big0.edi", data, "medsupply")
    service.inbox.scan()
    assert service.take_ready() == 1
    (row,) = service.store.claim_files("w1", 1, 0.2)

    def worker(name: str, translator: Any) -> Processor:
        return Processor(
            service.store,
            service.archive,
            translator,
            outbox=home.outbox,
            worker=name,
            clock=lambda: datetime.now(UTC),
            chunk_sets=3,
            stream_bytes=0,
            deliverer=service.deliverer.for_worker(name),
        )

    with pytest.raises(KeyboardInterrupt):
        worker("w1", DiesAfter(service.processor.translator, 7)).process(row)
    assert len(list(service.store.file_tree(row.id).all_documents())) == 6, "two chunks were recorded"
    assert len(home.canonical()) == 6 and ack_files(home.outbox) == {}, "no ack before the trailer"
    time.sleep(0.3)
    (rerun,) = service.store.claim_files("w2", 1, 30)
    assert worker("w2", service.processor.translator).process(rerun).status == "processed"
    killed = outcome_of(service, home.outbox, row.id)
    service.store.close()

    whole_url = f"sqlite:///{tmp_path / 'whole.sqlite'}"
    (whole,), _ = run_files(tmp_path / "whole", whole_url, workspace, [data], 1000, 1 << 30)
    for key in ("file", "interchanges", "groups", "sets", "canonical", "outbound"):
        assert killed[key] == whole[key], key
    assert [(d[0], d[2]) for d in killed["documents"]] == [(n, "translated") for n in range(1, SETS + 1)]
    (ack,) = the_ack(killed, workspace)
    assert len(ack.sets) == SETS


def test_a_big_file_is_taken_in_without_being_read_into_memory(
    tmp_path: Path, store_url: str, workspace: Workspace
) -> None:
    """Intake copies a file to the archive a chunk at a time and identifies it by its head."""
    import tracemalloc

    data = x12(TEMPLATE, 805, sets=25000, tag="in")  # ~10 MB
    home = make_home(tmp_path, store_url, stable_seconds=0)
    service = home.service(workspace)
    home.drop("big.edi", data, "medsupply")
    service.inbox.scan()
    tracemalloc.start()
    try:
        assert service.take_ready() == 1
        _, top = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    (row,) = service.store.list_files(limit=10)
    assert (row.size, row.partner_id, row.status) == (len(data), "medsupply", "received")
    assert service.archive.read(row.sha256, check=True) == data
    assert top < len(data) // 3, top
    service.store.close()
