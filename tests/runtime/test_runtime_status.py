"""`gateway status` as a dashboard, against a real `gateway run`: today's traffic per partner, a dead-lettered
invoice (a real HTTP receiver answering 400), a destination whose circuit breaker opened (nothing listens on
its port) shown paused, its delivery backlog, and the running service; the same in `--json`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from runtimekit import PARTNERS, Home, Running, make_home, wait_for, x12
from support.httpd import Receiver, Reply, closed_port

from gateway.cli.main import main


def rest(url: str, **retry: Any) -> dict[str, Any]:
    policy = {"delays": [30], "max_attempts": 100, "breaker_failures": 1, "breaker_seconds": 300} | retry
    return {"type": "rest", "url": url + "/{doc_type}/{business_key}", "read_timeout_seconds": 5, "retry": policy}


def status(home: Home, *args: str) -> str:
    done = CliRunner().invoke(main, ["status", *args, "--home", str(home.path)])
    assert done.exit_code == 0, done.output
    return done.stdout


def test_status_shows_traffic_dead_letters_backlog_and_paused_destinations(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    with Receiver() as ap:
        ap.script(Reply(400, {"Content-Type": "application/json"}, b'{"error": "unknown vendor"}'))
        home = make_home(
            tmp_path,
            f"sqlite:///{tmp_path / 'var' / 'gateway.sqlite'}",
            extra={
                "destinations": {"ap": rest(ap.url), "down": rest(f"http://127.0.0.1:{closed_port()}")},
                "routes": [{"name": "invoices", "match": {"doc_type": "invoice"}, "to": ["ap", "down"]}],
            },
        )
        home.drop("inv.edi", x12(PARTNERS / "medsupply/cases/810-invoice.edi", 8100, tag="s"), "medsupply")
        run = Running(home)
        request.addfinalizer(run.kill)
        run.wait_started()

        def reported() -> dict[str, Any]:
            return json.loads(status(home, "--json"))

        wait_for(lambda: reported()["paused_destinations"] == ["down"], 30, "the breaker of `down` reported open")
        state = reported()
        text_out = status(home)
        assert run.stop() == 0, run.stderr()[-3000:]
    (traffic,) = state["traffic"]
    assert (traffic["partner"], traffic["files"], traffic["documents"]) == ("medsupply", 1, 1)
    delivery = {d["destination"]: d for d in state["delivery"]}
    assert delivery["ap"]["dead_letter"] == 1 and not delivery["ap"]["paused"]
    assert delivery["down"]["pending"] == 1 and delivery["down"]["paused"]
    assert delivery["down"]["oldest_pending_seconds"] >= 0
    assert state["indicators"]["invoices_dead_lettered"] == 1
    (service,) = state["services"]
    assert service["alive"] and service["paused"] == ["down"]
    assert state["counts"]["files"] == {"processed": 1}  # the plain block is still there
    assert "files              processed 1" in text_out
    assert "paused (circuit open)" in text_out and "Traffic since" in text_out
    assert "invoices dead lettered" in text_out and "medsupply" in text_out
    # the service stopped: its state file is gone, and status says no service reports
    assert "no `gateway run` service has reported here" in status(home)
