"""Observability of a running `gateway run`: Prometheus metrics and /healthz scraped over loopback HTTP from
the real process, parsed with prometheus_client's text parser; JSON log lines parsed; /healthz failing
(503, with a JSON body saying why) for a stuck loop or an unreachable store."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from runtimekit import Home, Running, case, make_home, wait_for

from gateway.runtime.observe import HealthServer, LedgerMetrics, ServiceView, health
from gateway.store import Store


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics: (name, sorted labels) → value."""
    status, body = get(url)
    assert status == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_health_and_json_logs_of_a_running_gateway(tmp_path: Path) -> None:
    home = make_home(tmp_path, f"sqlite:///{tmp_path / 'var' / 'gateway.sqlite'}")
    home.drop("810-invoice.edi", case("medsupply", "810-invoice.edi"), "medsupply")
    home.drop("856-guide-violation.edi", case("orthosupply", "856-guide-violation.edi"), "orthosupply")
    run = Running(home, "--metrics-port", "0", "--log-format", "json")
    try:
        run.wait_started()
        wait_for(lambda: "metrics on http" in run.stderr(), 10, "the metrics address")
        base = re.search(r"metrics on (http://127\.0\.0\.1:\d+)/metrics", run.stderr())
        assert base is not None
        url = base.group(1)

        def settled() -> bool:  # the ledger's gauges are recounted at most every 2 s: wait for them too
            m = scrape(url + "/metrics")
            return value(m, "gateway_deliveries", destination="partner-outbox", status="delivered") == 2

        wait_for(settled, 30, "both files processed and their acks delivered")
        m = scrape(url + "/metrics")
        status, body = get(url + "/healthz")
        missing = get(url + "/nothing")[0]
    finally:
        assert run.stop() == 0, run.stderr()[-3000:]
    assert value(m, "gateway_files", partner="medsupply", format="x12", status="processed") == 1
    assert value(m, "gateway_files", partner="orthosupply", format="x12", status="failed") == 1
    assert value(m, "gateway_files_received_total", partner="medsupply", format="x12") == 1
    assert value(m, "gateway_files_finished_total", partner="orthosupply", format="x12", status="failed") == 1
    assert value(m, "gateway_processing_seconds_count", partner="medsupply") == 1
    assert value(m, "gateway_documents", partner="medsupply", type="invoice", status="translated") == 1
    assert value(m, "gateway_deliveries", destination="canonical-json", status="delivered") == 1
    assert value(m, "gateway_deliveries", destination="partner-outbox", status="delivered") == 2  # 997 and 999
    assert value(m, "gateway_delivery_attempts_total", destination="partner-outbox", outcome="delivered") == 2
    assert value(m, "gateway_delivery_latency_seconds_count", destination="canonical-json") == 1
    assert value(m, "gateway_delivery_attempt_seconds_count", destination="partner-outbox") == 2
    assert value(m, "gateway_dead_letters", destination="canonical-json") == 0
    assert value(m, "gateway_inbox_backlog") == 0 and value(m, "gateway_acks_overdue") == 0
    assert ("gateway_inbox_files_waiting", ()) in m and value(m, "gateway_inbox_files_waiting") == 0
    assert value(m, "gateway_store_up") == 1 and value(m, "gateway_loop_healthy") == 1
    assert value(m, "gateway_store_writes_total", what="record the results of N file(s)") >= 1
    assert value(m, "gateway_store_write_held_seconds_total", what="record the results of N file(s)") > 0
    assert ("gateway_store_write_wait_seconds_total", (("what", "claim files"),)) in m
    assert time.time() - value(m, "gateway_channel_last_success_timestamp_seconds", channel="inbox") < 30
    assert time.time() - value(m, "gateway_channel_last_success_timestamp_seconds", channel="deliveries") < 30
    assert status == 200 and missing == 404
    report = json.loads(body)
    assert report["status"] == "ok" and report["store"] == {"ok": True, "revision": report["store"]["revision"]}
    assert report["loop"]["ok"] and report["paused_destinations"] == []
    check_json_logs(home, run.stderr())


def check_json_logs(home: Home, stderr: str) -> None:
    lines = [json.loads(line) for line in stderr.splitlines() if line.strip()]  # every line is one JSON object
    keys = {"time", "level", "event", "message", "logger", "correlation_id", "partner", "file_id", "document_id"}
    assert all(keys <= set(item) for item in lines), [item for item in lines if not keys <= set(item)][:3]
    with Store(home.store_url) as store:
        files = {f.name: f for f in store.list_files(limit=10)}
    (done,) = [x for x in lines if x["event"] == "file.processed"]
    invoice = files["810-invoice.edi"]
    assert (done["file_id"], done["partner"], done["correlation_id"]) == (
        invoice.id, "medsupply", invoice.correlation_id)  # fmt: skip
    (failed,) = [x for x in lines if x["event"] == "file.failed"]
    assert failed["level"] == "error" and failed["file_id"] == files["856-guide-violation.edi"].id
    assert {x["event"] for x in lines} >= {"file.received", "run"}


def test_health_fails_for_a_stuck_loop_or_an_unreachable_store(tmp_path: Path) -> None:
    good = Store(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    good.upgrade()
    stuck = ServiceView("w1", {"loop": time.time() - 600}, stale_seconds=60)
    ok, report = health(stuck, good)
    assert not ok and report["loop"]["error"] == "the loop is stuck" and report["store"]["ok"]
    busy = ServiceView("w1", {"loop": time.time() - 600}, stale_seconds=60, busy=lambda: 5.0)
    assert health(busy, good)[0], "a long batch renewing its leases is progress, not a stuck loop"
    alive = ServiceView("w1", {"loop": time.time()}, lambda: ["erp"], stale_seconds=60)
    down = Store("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    server = HealthServer("127.0.0.1", 0, LedgerMetrics(down, alive), alive, down).start()
    try:
        status, body = get(f"http://127.0.0.1:{server.port}/healthz")
        metrics = scrape(f"http://127.0.0.1:{server.port}/metrics")
    finally:
        server.stop()
        good.close()
    report = json.loads(body)
    assert status == 503 and report["status"] == "fail" and report["loop"]["ok"]
    assert not report["store"]["ok"] and report["store"]["error"]
    assert report["paused_destinations"] == ["erp"]
    assert value(metrics, "gateway_store_up") == 0  # the ledger cannot be read: said, not hidden
    assert value(metrics, "gateway_destination_paused", destination="erp") == 1


@pytest.mark.parametrize("fresh", [True, False])
def test_health_needs_the_schema_this_code_ships(tmp_path: Path, fresh: bool) -> None:
    store = Store(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    if not fresh:
        store.upgrade()
    ok, report = health(ServiceView("w", {"loop": time.time()}), store)
    store.close()
    assert ok is not fresh
    if fresh:
        assert "revision (none)" in report["store"]["error"]


def test_sftp_channel_health_is_scraped(tmp_path: Path) -> None:
    """Each SFTP partner's last success, failure and remote backlog, as `gateway channels status` has them."""
    store = Store(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    store.upgrade()
    states = {
        "medsupply": {"channel": "sftp", "last_poll": "2026-12-06T10:00:05+00:00",
                      "last_success": "2026-12-06T10:00:05+00:00", "backlog": 3},
        "orthosupply": {"channel": "sftp", "last_poll": "2026-12-06T10:00:07+00:00",
                        "error": "host key changed", "backlog": 0},
    }  # fmt: skip
    view = ServiceView("w1", {"loop": time.time()}, channels=lambda: states)
    server = HealthServer("127.0.0.1", 0, LedgerMetrics(store, view), view, store).start()
    try:
        m = scrape(f"http://127.0.0.1:{server.port}/metrics")
    finally:
        server.stop()
        store.close()
    assert value(m, "gateway_sftp_last_success_timestamp_seconds", partner="medsupply") == 1796551205.0
    assert ("gateway_sftp_last_success_timestamp_seconds", (("partner", "orthosupply"),)) not in m
    assert value(m, "gateway_sftp_failing", partner="medsupply") == 0
    assert value(m, "gateway_sftp_failing", partner="orthosupply") == 1
    assert value(m, "gateway_sftp_backlog", partner="medsupply") == 3
