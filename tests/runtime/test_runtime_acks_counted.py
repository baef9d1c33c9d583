"""Acknowledgments received are counted apart: ``gateway run`` and ``gateway status`` say how many
997/999/TA1 were read, beside (not inside) the documents translated and the failures."""

from __future__ import annotations

import json
from pathlib import Path

from runtimekit import (  # noqa: F401 (pytest fixtures)
    case,
    gateway,
    in_process,
    make_home,
    pg_admin_fixture,
    pg_url_fixture,
    store_url_fixture,
)
from test_verdict import INBOUND_997, INBOUND_TA1


def test_run_and_status_count_acknowledgments_received(store_url: str, tmp_path: Path) -> None:
    home = make_home(tmp_path, store_url)
    home.drop("997-in.edi", INBOUND_997.encode(), "medsupply")
    home.drop("ta1-in.edi", INBOUND_TA1.encode(), "medsupply")
    home.drop("810.edi", case("medsupply", "810-invoice.edi"), "medsupply")
    done = gateway(home, "run", "--once")
    assert done.returncode == 0, done.stderr
    lines = {line[:12].strip(): line[13:] for line in done.stdout.splitlines() if line[:1] != " "}
    assert lines["translated"].startswith("1 document(s)")
    assert lines["acks read"].startswith("2 acknowledgment(s) received (997/999/TA1)"), done.stdout
    assert lines["failed sets"].startswith("0;")
    assert lines["acknowledged"].startswith("1 interchange(s)")  # the 810's 997, none to the acks
    done = in_process(home, "status", "--json")
    assert done.returncode == 0, done.stderr
    counts = json.loads(done.stdout)["counts"]
    assert counts["documents"] == {"translated": 1}
    assert counts["acknowledgments"] == {"received": 2}
    done = in_process(home, "status")
    assert "acknowledgments    received 2" in done.stdout.splitlines()
    assert "documents          translated 1" in done.stdout.splitlines()
