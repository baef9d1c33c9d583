"""Crash safety: ``gateway run`` killed with SIGKILL at random moments, restarted each time, then run to the end.

Files arrive in waves while the gateway runs (the first wave before it
starts), each run is killed at a seeded random moment: some during
start-up, some at a random time after the watcher is up, and half within
a few milliseconds of a batch being under way (batches take milliseconds,
so a kill at a random second would mostly land between them). A last
``gateway run --once`` finishes whatever is left.
Then nothing may be lost, nothing recorded or translated twice, no ack
numbered twice (see ``runtimekit.check_outcome``).

``GATEWAY_CRASH_SEED`` replays a failing schedule; the seed, the kill
times and what each run got done are in the assertion message.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest
from runtimekit import (  # noqa: F401 (pytest fixtures)
    Home,
    Running,
    check_outcome,
    gateway,
    make_home,
    pg_admin_fixture,
    pg_url_fixture,
    workload,
)

from gateway.store import Store

SEED = int(os.environ.get("GATEWAY_CRASH_SEED", "20261124"))
LEASE = 1.0


def finished(home: Home) -> int:
    with Store(home.store_url) as store:
        counts = store.counts_by_status()["files"]
    return sum(n for status, n in counts.items() if status not in ("received", "processing"))


def wait_processing(home: Home, deadline: float) -> None:
    """Until some file is leased (being processed), or the deadline passes."""
    with Store(home.store_url) as store:
        while time.monotonic() < deadline and not store.counts_by_status()["files"].get("processing"):
            time.sleep(0.002)


def crash_repeatedly(home: Home, drops: list, kills: int, seed: int, request: pytest.FixtureRequest) -> list[str]:
    """Start, kill, restart ``kills`` times, dropping a wave of files into each run; returns a log."""
    rng = random.Random(seed)
    first = len(drops) * 2 // 5
    waves = [drops[:first]] + [drops[first + i :: kills - 1] for i in range(kills - 1)]
    for drop in waves[0]:
        home.drop(drop.name, drop.data, drop.folder)
    log = []
    for n in range(kills):
        run = Running(home, name="crash")
        request.addfinalizer(run.kill)  # a no-op unless the test failed with it running
        wave = waves[n + 1] if n + 1 < len(waves) else []
        moment = rng.random()
        if n and moment < 0.15:
            delay = rng.uniform(0.3, 2.0)  # during start-up (imports, workspace, migrations, claim recovery)
            where = f"start-up +{delay:.2f}s"
        else:
            run.wait_started()
            delay = rng.uniform(0.0, 0.6) if moment < 0.5 else rng.uniform(0.0, 0.03)
            where = f"running +{delay:.2f}s" if moment < 0.5 else f"mid-batch +{delay:.3f}s"
        for drop in wave:
            home.drop(drop.name, drop.data, drop.folder)
        if moment >= 0.5:
            # A batch goes by in milliseconds: wait until one is under way, then kill at a random point in it.
            wait_processing(home, deadline=time.monotonic() + 3)
        time.sleep(delay)
        run.kill()
        log.append(f"kill {n + 1}: {where}, {finished(home)} files final")
    return log


@pytest.mark.parametrize(
    ("backend", "kills", "files"),
    [("sqlite", 15, 40), ("postgresql", 5, 24)],
    ids=["sqlite", "postgresql"],
)
def test_killed_at_random_moments_nothing_lost_nothing_twice(
    backend: str, kills: int, files: int, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'var' / 'gateway.sqlite'}" if backend == "sqlite" else request.getfixturevalue("pg_url")
    )
    # The kills are the test's, not the files': no file may be quarantined as a worker killer.
    home = make_home(tmp_path, url, lease_seconds=LEASE, batch=3, extra={"processing": {"max_attempts": 1000}})
    drops = workload(files, SEED, max_sets=40)
    log = crash_repeatedly(home, drops, kills, SEED, request)
    time.sleep(LEASE + 0.2)  # the last run's leases expire
    final = gateway(home, "run", "--once")
    where = f"seed {SEED}, {kills} kills, {files} files:\n  " + "\n  ".join(log)
    # The workload has partly rejected files, which --once reports with exit 1; a crash, a store
    # error or a file left behind would be another code (check_outcome then checks every file).
    assert final.returncode in (0, 1), f"{where}\n{final.stderr[-3000:]}"
    outcome = check_outcome(home, drops)
    reclaims = sum(1 for events in outcome["events"].values() for e in events if e.action == "reclaim")
    resets = sum(1 for events in outcome["events"].values() for e in events if e.action == "reset")
    print(f"\n{where}\n  reclaimed {reclaims} leases, reset {resets} half-done files")  # shown with -s
    assert reclaims >= 1 and resets >= 1, f"no kill landed while a file was processing: {where}"
