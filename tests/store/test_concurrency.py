"""Several real OS processes on one store: leases, sequences and dedupe keys are never handed out twice."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from collections.abc import Callable

import storeworkers
from storekit import db_url_fixture, pg_admin_fixture, record  # noqa: F401 (pytest fixtures)

from gateway.store import Store

TIMEOUT = 60


def _run(target: Callable[..., None], args: list[tuple[object, ...]]) -> list[object]:
    """Start one spawned process per argument tuple, released together by a barrier; return their reports."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(args))
    results = context.Queue()
    processes = [context.Process(target=target, args=(*a, barrier, results)) for a in args]
    for process in processes:
        process.start()
    try:
        reports = [results.get(timeout=TIMEOUT) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=TIMEOUT)
            if process.is_alive():  # a hung worker: stop it rather than leave it behind
                process.terminate()
                process.join()
    assert [p.exitcode for p in processes] == [0] * len(processes)
    return reports


def test_concurrent_claims_never_share_a_file(db_url: str) -> None:
    with Store(db_url) as store:
        store.upgrade()
        ids = {record(store, n) for n in range(90)}
    reports = _run(storeworkers.claim_until_empty, [(db_url, f"w{n}", 3) for n in range(3)])
    claims = Counter(file_id for _, claimed in reports for file_id in claimed)
    assert set(claims) == ids, "every file was claimed"
    assert max(claims.values()) == 1, "no file was claimed twice"
    assert all(claimed for _, claimed in reports), "every worker got files"
    with Store(db_url) as store:
        assert store.counts_by_status()["files"] == {"processed": len(ids)}
        for file_id in list(ids)[:10]:
            assert [e.action for e in store.events_for("file", file_id)] == ["create", "claim", "status"]


def test_concurrent_sequences_never_repeat(db_url: str) -> None:
    with Store(db_url) as store:
        store.upgrade()
    reports = _run(storeworkers.take_values, [(db_url, 500), (db_url, 500)])
    values = [v for report in reports for v in report]
    assert sorted(values) == list(range(1, 1001))
    for report in reports:
        assert report == sorted(report)


def test_concurrent_key_claims_have_one_winner(db_url: str) -> None:
    with Store(db_url) as store:
        store.upgrade()
    reports = _run(storeworkers.claim_keys, [(db_url, n, 100) for n in range(2)])
    wins = Counter(key for report in reports for key in report)
    assert len(wins) == 100 and set(wins.values()) == {1}
