"""Helpers for the runtime tests: deployments in a temp folder, both stores, generated inbox files.

Not a ``conftest.py`` (``tests/`` has no packages; a second conftest would
shadow the root one): test modules import what they use from here, as the
store tests do from ``storekit``.

A deployment is a temp folder with ``maps/`` linked and ``partners/``
copied from the repository (tests may edit a profile) and a
``gateway.yaml`` naming the store. The store is a SQLite file in the
deployment, or a throw-away PostgreSQL schema reached through
``search_path`` in the URL (so ``gateway`` subprocesses land in it too).
PostgreSQL is ``$GATEWAY_TEST_PG_URL`` (default
``postgresql+psycopg://postgres@127.0.0.1:5432/test``); when it is not
reachable its cases skip, except under ``CI=true`` where they fail.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import PG_URL, pg_admin_fixture, schema_url, unavailable  # noqa: F401 - shared with the store tests
from sqlalchemy import Engine, text

from gateway.runtime.service import Service, ensure_folders
from gateway.settings import load_settings
from gateway.store import Store
from gateway.translate import VOLATILE
from gateway.workspace import Workspace, load_workspace
from gateway.x12.ack.read import FunctionalAck, read_acks

REPO = Path(__file__).resolve().parents[2]
PARTNERS = REPO / "partners"
CANONICAL_FILES = {
    "type": "files",
    "folder": "outbox/canonical",
    "name": "{partner}/{doc_type}-{file_id}-{position}.json",
}
"""The shipped default destination (canonical JSON files), for a deployment that routes elsewhere too."""

BACKENDS = ["sqlite", "postgresql"]
FINAL = {"processed", "partial", "failed", "quarantined", "duplicate", "held"}
DATA_SUFFIXES = (".edi", ".x12", ".csv", ".xml", ".txt")


# --- stores ---------------------------------------------------------------------------------


@pytest.fixture(name="pg_url")
def pg_url_fixture(pg_admin: Engine) -> Iterator[str]:
    """A fresh PostgreSQL schema, dropped afterwards."""
    schema = f"gw_rt_{uuid.uuid4().hex[:12]}"
    with pg_admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield schema_url(schema)
    finally:
        with pg_admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture(name="store_url", params=BACKENDS)
def store_url_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty store: a SQLite file under the test's folder, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'var' / 'gateway.sqlite'}"
    return str(request.getfixturevalue("pg_url"))


@functools.cache
def repo_workspace() -> Workspace:
    """The repository's maps and partners, loaded once per test session (about a second each time)."""
    return load_workspace(REPO)


@pytest.fixture(name="workspace")
def workspace_fixture() -> Workspace:
    """The repository's workspace for in-process tests (shared: tests must not change it)."""
    return repo_workspace()


# --- deployments ----------------------------------------------------------------------------


@dataclass
class Home:
    """A deployment folder and its store URL."""

    path: Path
    store_url: str

    @property
    def inbox(self) -> Path:
        return self.path / "inbox"

    @property
    def outbox(self) -> Path:
        return self.path / "outbox"

    @property
    def archive(self) -> Path:
        return self.path / "var" / "archive"

    def store(self) -> Store:
        """A store on the deployment's database (migrated)."""
        store = Store(self.store_url)
        store.upgrade()
        return store

    def drop(self, name: str, data: bytes, partner: str | None = None) -> Path:
        """Put ``data`` in ``inbox/<partner>/name`` the way an uploader would: temp name, then rename."""
        folder = self.inbox / partner if partner else self.inbox
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{name}.upload"
        tmp.write_bytes(data)
        os.replace(tmp, folder / name)
        return folder / name

    def service(self, workspace: Workspace | None = None, *, worker: str = "test-worker") -> Service:
        """An in-process service on this deployment (the repository's workspace unless given one)."""
        deployment, problems = load_settings(self.path)
        assert not problems.items, [str(p) for p in problems.items]
        ensure_folders(deployment)
        store = Store(deployment.store_url)
        store.upgrade()
        service = Service(deployment, workspace or load_workspace(self.path), store, worker=worker)
        claim = service.process_claimed

        def claimed_and_delivered() -> int:
            # A batch's deliveries run on a thread of their own (overlapping the next batch in the daemon);
            # a test that processes one batch reads their outcome next, so it waits for them.
            done = claim()
            service.processor.drain()
            return done

        service.process_claimed = claimed_and_delivered  # type: ignore[method-assign]
        return service

    def canonical(self) -> dict[str, dict[str, Any]]:
        """``outbox/canonical/<partner>/<name>.json`` (temp files left by a kill excluded) → parsed JSON."""
        root = self.outbox / "canonical"
        return {
            p.relative_to(root).as_posix(): json.loads(p.read_bytes())
            for p in sorted(root.glob("*/*.json"))
            if not p.name.startswith(".")
        }

    def acks(self) -> dict[str, list[FunctionalAck]]:
        """Every ack file in ``outbox/<partner>/`` (``partner/name``) → the 997/999 sets it holds."""
        out: dict[str, list[FunctionalAck]] = {}
        for p in sorted(self.outbox.glob("*/*.x12")):
            if p.parent.name != "canonical" and not p.name.startswith("."):
                out[f"{p.parent.name}/{p.name}"] = [
                    a for a in read_acks(p.read_bytes()) if isinstance(a, FunctionalAck)
                ]
        return out

    def inbox_leftovers(self) -> list[str]:
        """Every file still under the inbox (data files, claims, anything)."""
        return sorted(p.relative_to(self.inbox).as_posix() for p in self.inbox.rglob("*") if p.is_file())


def make_home(
    root: Path,
    store_url: str,
    *,
    lease_seconds: float = 30,
    stable_seconds: float = 0.1,
    rescan_seconds: float = 0.5,
    batch: int = 5,
    extra: dict[str, Any] | None = None,
) -> Home:
    """A deployment in ``root``: maps linked, partners copied, ``gateway.yaml`` written."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "maps").symlink_to(REPO / "maps", target_is_directory=True)
    shutil.copytree(PARTNERS, root / "partners", ignore=shutil.ignore_patterns("cases"))
    settings: dict[str, Any] = {
        "store": store_url,
        "intake": {"stable_seconds": stable_seconds, "rescan_seconds": rescan_seconds},
        "processing": {"lease_seconds": lease_seconds, "batch": batch, "poll_seconds": 0.1},
    }
    for key, value in (extra or {}).items():
        settings.setdefault(key, {}).update(value) if isinstance(value, dict) else settings.__setitem__(key, value)
    (root / "gateway.yaml").write_text(json.dumps(settings, indent=2), "utf-8")  # JSON is YAML
    for name in ("medsupply", "orthosupply", "summitmed", "coastal"):
        (root / "inbox" / name).mkdir(parents=True, exist_ok=True)
    return Home(root, store_url)


# --- the gateway as a process ---------------------------------------------------------------

GATEWAY = [sys.executable, "-c", "from gateway.cli.main import entry; entry()"]  # as the `gateway` program


def gateway(home: Home, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``gateway ARGS --home HOME`` to completion."""
    return subprocess.run(
        [*GATEWAY, *args, "--home", str(home.path)], capture_output=True, text=True, timeout=timeout, check=False
    )


def in_process(home: Home, *args: str) -> subprocess.CompletedProcess[str]:
    """``gateway ARGS --home HOME`` through the same entry point, in this process (a second of start-up
    less than :func:`gateway`); for the operators' short commands. ``gateway run`` stays a process."""
    from click.testing import CliRunner

    from gateway.cli.main import main

    assert args and args[0] != "run", "gateway run is tested as a process: use gateway() or Running"
    result = CliRunner().invoke(main, [*args, "--home", str(home.path)])
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))  # as the process would print it
    return subprocess.CompletedProcess(["gateway", *args], result.exit_code, result.stdout, stderr)


class Running:
    """A long-running ``gateway run`` subprocess, its output in files under the deployment."""

    def __init__(self, home: Home, *args: str, name: str = "run") -> None:
        logs = home.path / "logs"
        logs.mkdir(exist_ok=True)
        n = len(list(logs.glob(f"{name}-*.out")))
        self.out_path = logs / f"{name}-{n}.out"
        self.err_path = logs / f"{name}-{n}.err"
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                [*GATEWAY, "run", "-v", *args, "--home", str(home.path)], stdout=out, stderr=err
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stdout(self) -> str:
        return self.out_path.read_text("utf-8", "replace")

    def stderr(self) -> str:
        return self.err_path.read_text("utf-8", "replace")

    def wait_started(self, timeout: float = 30) -> None:
        """Until the service logs that it is watching the inbox."""
        wait_for(lambda: "watching" in self.stderr() or self.proc.poll() is not None, timeout, "gateway run to start")
        assert self.proc.poll() is None, f"gateway run exited {self.proc.returncode}: {self.stderr()[-2000:]}"

    def kill(self) -> None:
        """SIGKILL, the crash."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM and wait; returns the exit code. A process that does not stop in time is asked for its
        threads' stacks (SIGUSR1) and killed; the failure shows where it waited."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGUSR1)
            time.sleep(1)
            self.kill()
            pytest.fail(
                f"gateway run did not stop {timeout} s after SIGTERM; its stderr ends:\n{self.stderr()[-6000:]}"
            )


def wait_for(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll ``condition`` until true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# --- inbox files ----------------------------------------------------------------------------

_KEYS = {"BIG": 2, "BAK": 3, "BSN": 2, "BEG": 3}  # the business key element of each set's header segment


def x12(template: Path, isa13: int, *, sets: int = 1, tag: str = "", bad: frozenset[int] = frozenset()) -> bytes:
    """The case ``template`` as a new interchange: ISA13/GS06 = ``isa13``, its set repeated ``sets`` times.

    Each copy's business key (BIG02, BAK03, BSN02, BEG03) gets ``-tag-n`` appended unless ``tag`` is
    empty; sets numbered in ``bad`` get an impossible date in their header segment (rejected by validation).
    """
    raw = template.read_text("utf-8")
    el, term = raw[3], raw[105]
    segs = [s.strip("\r\n") for s in raw.split(term) if s.strip("\r\n")]
    isa, gs = segs[0].split(el), segs[1].split(el)
    st = next(i for i, s in enumerate(segs) if s.startswith(f"ST{el}"))
    se = next(i for i, s in enumerate(segs) if s.startswith(f"SE{el}"))
    body = segs[st + 1 : se]
    isa[13] = f"{isa13:09d}"
    gs[6] = str(isa13)
    out = [el.join(isa), el.join(gs)]
    for n in range(1, sets + 1):
        out.append(el.join(["ST", segs[st].split(el)[1], f"{n:04d}"]))
        for seg in body:
            parts = seg.split(el)
            if parts[0] in _KEYS:
                if tag:
                    parts[_KEYS[parts[0]]] += f"-{tag}-{n}"
                if n in bad:
                    parts[1 if parts[0] == "BIG" else 4] = "2026XX05"
            out.append(el.join(parts))
        out.append(el.join(["SE", str(len(body) + 2), f"{n:04d}"]))
    out += [el.join(["GE", str(sets), str(isa13)]), el.join(["IEA", "1", f"{isa13:09d}"])]
    return (f"{term}\n".join(out) + f"{term}\n").encode()


def case(partner: str, name: str) -> bytes:
    """The bytes of ``partners/<partner>/cases/<name>``."""
    return (PARTNERS / partner / "cases" / name).read_bytes()


def expected(partner: str, name: str) -> list[dict[str, Any]]:
    """The golden JSON of a case: one entry per set/document (``{"errors": ...}`` for a failed one)."""
    return json.loads((PARTNERS / partner / "cases" / name).with_suffix(".json").read_text("utf-8"))


def golden(doc: dict[str, Any]) -> dict[str, Any]:
    """A canonical document as a golden case compares it (run-specific provenance removed)."""
    out = json.loads(json.dumps(doc))
    for key in VOLATILE:
        out.get("provenance", {}).pop(key, None)
    return out


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


SAMPLE_DROPS: list[tuple[str | None, str, str]] = [
    # (inbox subfolder, partner whose case it is, case file)
    ("medsupply", "medsupply", "810-invoice.edi"),
    ("medsupply", "medsupply", "855-split-backorder.edi"),
    (None, "medsupply", "856-xref-and-uom.edi"),
    ("orthosupply", "orthosupply", "810-implants.edi"),
    ("orthosupply", "orthosupply", "856-guide-violation.edi"),
    (None, "orthosupply", "856-implants-tare.edi"),
    (None, "summitmed", "810-contract-price.edi"),
    ("summitmed", "summitmed", "855-quantity-change.edi"),
    (None, "summitmed", "856-lot-in-ref.edi"),
    ("coastal", "coastal", "asn_20260316.csv"),
    ("coastal", "coastal", "inv_20260315.csv"),
    ("coastal", "coastal", "inv_credit_20260320.csv"),
    ("coastal", "coastal", "inv_one_bad_amount.csv"),
    (None, "carelink", "confirmation_partial.xml"),
    (None, "carelink", "invoice.xml"),
    (None, "carelink", "order_bill_only.xml"),
    (None, "carelink", "ship_notice.xml"),
]
"""Every sample partner's cases, where a partner would drop them (inbox/<partner>/ or inbox/)."""


def drop_samples(home: Home) -> dict[str, tuple[str, str]]:
    """Drop :data:`SAMPLE_DROPS` plus the problem files; returns file name → (partner, case)."""
    names = {}
    for folder, partner, name in SAMPLE_DROPS:
        home.drop(name, case(partner, name), folder)
        names[name] = (partner, name)
    # One 810 interchange with three invoices, the second with an impossible date: siblings must survive.
    home.drop(
        "810-good-bad-good.edi",
        x12(PARTNERS / "medsupply/cases/810-invoice.edi", 9001, sets=3, tag="gbg", bad=frozenset({2})),
        "medsupply",
    )
    home.drop("empty.edi", b"", None)
    home.drop("notes.txt", b"Dear supplier, please find attached...\n", None)
    home.drop(
        "wrong-folder.edi", case("medsupply", "810-invoice.edi").replace(b"000000413", b"000000499"), "orthosupply"
    )
    return names


# --- workloads for the crash and multi-worker tests -----------------------------------------


@dataclass
class Drop:
    """One generated inbox file and what processing it must produce."""

    name: str
    folder: str | None
    data: bytes
    statuses: frozenset[str]  # the final statuses it may end in (duplicates depend on processing order)
    documents: int  # how many of its sets/documents translate (counted once for a duplicate pair)
    groups: list[str]  # "partner:GS06" of the groups it carries: one ack each

    @property
    def sha(self) -> str:
        return sha256(self.data)


_X12_TEMPLATES = [
    # (partner, inbox folder, case)
    ("medsupply", "medsupply", "810-invoice.edi"),
    ("medsupply", None, "855-split-backorder.edi"),
    ("medsupply", "medsupply", "856-xref-and-uom.edi"),
    ("summitmed", None, "810-contract-price.edi"),
    ("orthosupply", "orthosupply", "856-implants-tare.edi"),
    ("orthosupply", None, "810-implants.edi"),
]


def workload(count: int, seed: int, *, max_sets: int = 12) -> list[Drop]:
    """``count`` distinct-named inbox files of every kind (X12 of three partners, CSV, cXML), some with a
    bad set, in a seeded random order. Two are legitimate duplicates of the first: a resend of its bytes
    under another name, and its first invoice again in a new interchange; which copy counts as the
    original depends on processing order."""
    rng = random.Random(seed)
    drops: list[Drop] = []
    for n in range(count - 2):
        kind = n % (len(_X12_TEMPLATES) + 2)
        if kind < len(_X12_TEMPLATES):
            partner, folder, name = _X12_TEMPLATES[kind]
            sets = rng.randint(2 if n == 0 else 1, max_sets)
            bad = frozenset({2}) if sets >= 3 and rng.random() < 0.25 else frozenset()
            data = x12(PARTNERS / partner / "cases" / name, 10_000 + n, sets=sets, tag=f"w{n}", bad=bad)
            status = "partial" if bad else "processed"
            # orthosupply's profile acknowledges its 810s only on error (`ack: on_error`)
            quiet = partner == "orthosupply" and name.startswith("810") and not bad
            groups = [] if quiet else [f"{partner}:{10_000 + n}"]
            drops.append(Drop(f"{n:03d}-{name}", folder, data, frozenset({status}), sets - len(bad), groups))
        elif kind == len(_X12_TEMPLATES):
            header, *lines = case("coastal", "inv_20260315.csv").decode("utf-8").splitlines()
            rows = [line for line in lines if line.startswith("CMS-26-10071;")]
            invoices = [f"CMS-W{n}-{i}" for i in range(rng.randint(1, 4))]
            body = [row.replace("CMS-26-10071", invoice) for invoice in invoices for row in rows]
            data = "\n".join([header, *body, ""]).encode()
            drops.append(Drop(f"inv_{n:03d}.csv", "coastal", data, frozenset({"processed"}), len(invoices), []))
        else:
            data = case("carelink", "invoice.xml").replace(b"CRO-INV-20931", f"CRO-W{n}".encode())
            data = data.replace(b"CL-20260312-009001", f"CL-W{n}".encode())
            drops.append(Drop(f"{n:03d}-invoice.xml", None, data, frozenset({"processed"}), 1, []))
    first = drops[0]
    first.statuses |= {"duplicate"}
    drops.append(Drop(f"{count - 2:03d}-resend-{first.name}", first.folder, first.data, first.statuses, 0, []))
    partner, folder, name = _X12_TEMPLATES[0]
    repeat = x12(PARTNERS / partner / "cases" / name, 10_000 + count, tag="w0")  # first's invoice 1, new ISA13
    statuses = frozenset({"duplicate", "processed"})
    drops.append(Drop(f"{count - 1:03d}-repeat-{name}", folder, repeat, statuses, 0, [f"{partner}:{10_000 + count}"]))
    rng.shuffle(drops)
    return drops


def check_outcome(home: Home, drops: list[Drop]) -> dict[str, Any]:
    """After every run is over: each drop archived and recorded once, finished as expected, its documents
    written once as canonical JSON, its groups acknowledged once; nothing left in the inbox or in flight.
    Returns the ledger's files by name and their events, for further checks."""
    from gateway.store import Archive

    assert home.inbox_leftovers() == [], "files left in the inbox (data files or .taking.* claims)"
    archive = Archive(home.archive)
    with Store(home.store_url) as store:
        rows = store.list_files(limit=10_000)
        counts = store.counts_by_status()
        by_name: dict[str, Any] = {}
        for row in rows:
            assert row.name not in by_name, f"{row.name} recorded twice (files {by_name[row.name].id} and {row.id})"
            by_name[row.name] = row
        assert sorted(by_name) == sorted(d.name for d in drops)
        events = {row.id: store.events_for_file(row.id) for row in rows}
        trees = {row.id: store.file_tree(row.id) for row in rows}
        outbound = store.list_outbound(limit=10_000)
    assert set(counts["files"]) <= FINAL, counts["files"]
    for drop in drops:
        row = by_name[drop.name]
        assert row.sha256 == drop.sha and archive.read(row.sha256) == drop.data, drop.name
        assert row.status in drop.statuses, f"{drop.name}: {row.status} ({row.reason}), expected {set(drop.statuses)}"
        file_events = [e for e in events[row.id] if e.entity_kind == "file"]
        claims = [e for e in file_events if e.action in ("claim", "reclaim")]
        assert len(claims) == row.attempts >= 1, f"{drop.name}: {row.attempts} attempts, {len(claims)} claims"
        finals = [e for e in file_events if e.action == "status" and e.from_status == "processing"]
        assert len(finals) == 1 and finals[0].to_status == row.status, f"{drop.name}: final events {finals}"
        assert file_events[-1].to_status == row.status
    # Bytes: a resent file is a duplicate of exactly one original.
    for sha in {d.sha for d in drops}:
        same = [r for r in rows if r.sha256 == sha]
        originals = [r for r in same if not (r.status == "duplicate" and (r.reason or "").startswith("same bytes"))]
        assert len(originals) == 1, [(r.name, r.status, r.reason) for r in same]
    # Documents: each translates once, business keys never twice, one canonical JSON each, equal to the ledger.
    translated = {}
    for tree in trees.values():
        docs = list(tree.documents) + [
            d for ic in tree.interchanges for g in ic.groups for s in g.sets for d in s.documents
        ]
        sets = [s for ic in tree.interchanges for g in ic.groups for s in g.sets]
        assert len({(s.row.group_id, s.row.control_number) for s in sets}) == len(sets), (
            f"file {tree.file.id}: a set recorded twice"
        )
        assert len([d for d in docs if d.transaction_set_id]) == len(
            {d.transaction_set_id for d in docs if d.transaction_set_id}
        )
        translated.update({d.correlation_id: d for d in docs if d.status == "translated"})
    keys = [d.business_key for d in translated.values()]
    assert len(keys) == len(set(keys)), "a business key was translated twice"
    assert len(translated) == sum(d.documents for d in drops)
    written = home.canonical()
    assert len(written) == len(translated), f"{len(written)} canonical JSON files for {len(translated)} documents"
    assert sorted(d["provenance"]["correlation_id"] for d in written.values()) == sorted(translated), (
        "canonical JSON and translated documents are not one to one"
    )
    for rel, doc in written.items():
        ledger = translated[doc["provenance"]["correlation_id"]]
        assert json.loads(ledger.canonical) == doc, rel
        assert rel.split("/")[1].startswith(f"{ledger.doc_type}-{ledger.file_id}-"), rel
    # Acks: one per interchange, recorded before written, control numbers never reused.
    acks = home.acks()
    sent = {f"{o.partner_id}/{o.kind}-{o.control_number}.x12": o for o in outbound}
    assert len(sent) == len(outbound), "an ack control number was used twice"
    assert set(acks) == set(sent), f"ack files and recorded acks differ: {set(acks) ^ set(sent)}"
    answered = [(o.file_id, o.reason) for o in outbound]
    assert len(answered) == len(set(answered)), "an interchange was acknowledged twice"
    groups = [f"{rel.split('/')[0]}:{a.group_control}" for rel, sets in acks.items() for a in sets]
    assert sorted(groups) == sorted(g for d in drops for g in d.groups), "not exactly one ack per group"
    return {"files": by_name, "events": events, "outbound": outbound}
