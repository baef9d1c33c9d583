"""The summary ``gateway run`` prints when it stops counts what it and its delivery processes delivered, from
their attempts in the ledger, and the daemon does not keep the id of every delivery of its life in memory.

Before, the daemon's summary said ``delivered    0 delivery(ies)`` after any session (only ``--once``
counted), and the ids of every delivery it tried or recorded stayed in a set until it stopped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from runtimekit import (  # noqa: F401 (pytest fixtures)
    CANONICAL_FILES,
    PARTNERS,
    Home,
    Running,
    make_home,
    wait_for,
    workspace_fixture,
    x12,
)
from support.httpd import Receiver

from gateway.store import Store
from gateway.workspace import Workspace

TEMPLATE = PARTNERS / "medsupply/cases/810-invoice.edi"


def routed_home(tmp_path: Path, receiver: Receiver, workers: int) -> Home:
    rest = {"type": "rest", "url": receiver.url + "/{doc_type}/{business_key}", "read_timeout_seconds": 5}
    return make_home(
        tmp_path,
        f"sqlite:///{tmp_path / 'var' / 'gateway.sqlite'}",
        stable_seconds=0,
        extra={
            "destinations": {"receiver": rest, "canonical-json": CANONICAL_FILES},
            "routes": [{"name": "everywhere", "to": ["receiver", "canonical-json"]}],
            "processing": {"delivery_workers": workers},
        },
    )


@pytest.mark.parametrize("workers", [0, 1])
def test_the_daemon_summary_counts_what_it_delivered(
    tmp_path: Path, request: pytest.FixtureRequest, workers: int
) -> None:
    n = 3
    with Receiver() as receiver:
        home = routed_home(tmp_path, receiver, workers)
        run = Running(home)
        request.addfinalizer(run.kill)
        run.wait_started()
        for i in range(n):
            home.drop(f"inv{i}.edi", x12(TEMPLATE, 900 + i, tag=f"d{i}"), "medsupply")

        def delivered() -> int:
            with Store(home.store_url) as store:
                return sum(by.get("delivered", 0) for by in store.delivery_backlog().values())

        wait_for(lambda: delivered() == 3 * n, 60, "every delivery delivered")
        assert run.stop() == 0
    summary = f"delivered    {3 * n} delivery(ies) ({n} to canonical-json, {n} to partner-outbox, {n} to receiver)"
    assert summary in run.stdout(), run.stdout()


def test_what_a_worker_delivered_is_counted_from_its_attempts_and_its_tried_ids_are_forgotten(
    tmp_path: Path, workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    since = datetime.now(UTC)
    with Receiver() as receiver:
        home = routed_home(tmp_path, receiver, workers=0)
        for i in range(2):
            home.drop(f"inv{i}.edi", x12(TEMPLATE, 950 + i, tag=f"s{i}"), "medsupply")
        service = home.service(workspace, worker="svc")
        try:
            assert service.take_ready() == 2
            assert service.process_claimed() == 2
            service.processor.drain()
            assert len(service.processor.delivery_counts.touched) == 6
            monkeypatch.setattr("gateway.runtime.service.FORGET_SECONDS", 0.0)
            service._forget_tried_now_and_then()
            assert service.processor.delivery_counts.touched == set(), "the daemon keeps every id of its life"
            by = {"canonical-json": 2, "partner-outbox": 2, "receiver": 2}
            assert service.store.delivered_by(["svc", "svc/d1"], since) == by
            assert service.store.delivered_by(["sv", "svc/dev"], since) == {}, "other workers' names"
            assert service.store.delivered_by(["svc"], datetime.now(UTC)) == {}, "delivered before"
        finally:
            service.store.close()
