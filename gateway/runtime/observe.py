"""What a running ``gateway run`` tells the outside: Prometheus metrics, ``/healthz``, and a state file.

Three parts, all read-only towards the service:

* :class:`LedgerMetrics`, a ``prometheus_client`` collector. Gauges (files, documents and deliveries
  by status, dead letters, backlogs, overdue acknowledgments) are counted in the ledger at scrape time,
  at most every ``cache_seconds``, so every worker's work shows whichever process is scraped. Counters
  and histograms (files received and finished, delivery attempts, processing and delivery latency)
  follow the ledger's append-only ``events`` and ``delivery_attempts`` from where they stood when the
  process started, by id, so a scrape reads only what is new. It uses its own :class:`Store` (own
  connection pool): a scrape never waits behind the service's connections, nor is cut by its watchdog.
* :class:`HealthServer`, ``/metrics`` and ``/healthz`` over HTTP (stdlib ``ThreadingHTTPServer``).
  ``/healthz`` is 200 when the service loop has beaten within ``stale_seconds`` and the store answers a
  query within ``store_timeout`` seconds, 503 otherwise; its JSON body says which check failed.
* :class:`StateFile`, ``folders.run/service-<host>-<pid>.json`` rewritten every few seconds: the
  loop's heartbeats, each channel's last successful poll, and the destinations whose circuit breaker
  is open; ``gateway status`` reads it (the breakers live in the service's memory only).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from gateway.errors import GatewayError
from gateway.runtime.state import ServiceView, StateFile, read_states
from gateway.store.migrate import HEAD
from gateway.store.schema import deliveries, delivery_attempts, documents, events, files, outbound
from gateway.store.store import Store

__all__ = ["HealthServer", "LedgerMetrics", "ServiceView", "StateFile", "health", "read_states"]

log = logging.getLogger("gateway.run")

LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600)
"""Seconds: a REST call takes milliseconds, a retried delivery hours."""
FINAL_FILE = ("processed", "partial", "failed", "quarantined", "duplicate", "held")
_READ_LIMIT = 20_000
"""New events (or attempts) read per scrape at most; the rest on the next one."""


class LedgerMetrics(Collector):
    """The gateway's metrics, from the ledger (see the module docstring); ``view`` adds the live service's."""

    def __init__(self, store: Store, view: ServiceView | None = None, *, cache_seconds: float = 2.0) -> None:
        self.store = store
        self.view = view
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._cached: list[Metric] = []
        self._cached_at = 0.0
        self.own = CollectorRegistry(auto_describe=True)
        self.received = Counter("gateway_files_received", "Files received since start, by partner and format.",
                                ["partner", "format"], registry=self.own)  # fmt: skip
        self.finished = Counter("gateway_files_finished", "Files finished since start, by partner, format and "
                                "final status (processed, partial, failed, quarantined...).",
                                ["partner", "format", "status"], registry=self.own)  # fmt: skip
        self.processing = Histogram("gateway_processing_seconds", "From a file's receipt to its final status.",
                                    ["partner"], buckets=LATENCY_BUCKETS, registry=self.own)  # fmt: skip
        self.attempts = Counter("gateway_delivery_attempts", "Delivery attempts since start, by destination and "
                                "outcome (delivered, retry, rejected, error).", ["destination", "outcome"],
                                registry=self.own)  # fmt: skip
        self.attempt_seconds = Histogram("gateway_delivery_attempt_seconds", "How long one delivery attempt took.",
                                         ["destination"], buckets=LATENCY_BUCKETS, registry=self.own)  # fmt: skip
        self.latency = Histogram("gateway_delivery_latency_seconds", "From a delivery being owed (its document "
                                 "recorded) to its delivery, retries included.", ["destination"],
                                 buckets=LATENCY_BUCKETS, registry=self.own)  # fmt: skip
        self._event_id, self._attempt_id = self._high_water()

    def _high_water(self) -> tuple[int, int]:
        try:
            with self.store.database.read("read the metrics' starting point") as conn:
                return (
                    int(conn.execute(select(func.coalesce(func.max(events.c.id), 0))).scalar_one()),
                    int(conn.execute(select(func.coalesce(func.max(delivery_attempts.c.id), 0))).scalar_one()),
                )
        except GatewayError as exc:
            log.error("metrics: cannot read the ledger (%s); counting from 0", exc)
            return 0, 0

    def describe(self) -> Iterator[Metric]:
        return iter(())  # collected at scrape time only: registering must not query the store

    def collect(self) -> Iterator[Metric]:
        now = time.time()
        with self._lock:
            up = 1.0
            try:
                self._follow()
                if now - self._cached_at >= self.cache_seconds:
                    self._cached = list(self._gauges(datetime.now(UTC)))
                    self._cached_at = now
            except GatewayError as exc:
                log.error("metrics: the ledger cannot be read: %s", exc)
                up = 0.0
            yield from self._cached
            yield from self.own.collect()
            g = GaugeMetricFamily("gateway_store_up", "1 when the last scrape could read the ledger.")
            g.add_metric([], up)
            yield g
            yield from self._live(now)

    # --- counters and histograms: the new events and attempts --------------------------------------

    def _follow(self) -> None:
        with self.store.database.read("read new events for metrics") as conn:
            query = (
                select(events.c.id, events.c.action, events.c.to_status, events.c.at, files.c.partner_id,
                       files.c.format, files.c.received_at)
                .join(files, files.c.id == events.c.entity_id)
                .where(events.c.id > self._event_id, events.c.entity_kind == "file")
                .where(events.c.action.in_(("create", "status")))
                .order_by(events.c.id)
                .limit(_READ_LIMIT)
            )  # fmt: skip
            for eid, action, status, at, partner, fmt, received in conn.execute(query):
                self._event_id = max(self._event_id, int(eid))
                who = partner or "unknown"
                if action == "create":
                    self.received.labels(who, fmt).inc()
                elif status in FINAL_FILE:
                    self.finished.labels(who, fmt, status).inc()
                    self.processing.labels(who).observe(max(0.0, (at - received).total_seconds()))
            tried = (
                select(delivery_attempts.c.id, delivery_attempts.c.outcome, delivery_attempts.c.started_at,
                       delivery_attempts.c.finished_at, deliveries.c.destination, deliveries.c.created_at)
                .join(deliveries, deliveries.c.id == delivery_attempts.c.delivery_id)
                .where(delivery_attempts.c.id > self._attempt_id)
                .order_by(delivery_attempts.c.id)
                .limit(_READ_LIMIT)
            )  # fmt: skip
            for aid, outcome, started, finished, destination, owed in conn.execute(tried):
                self._attempt_id = max(self._attempt_id, int(aid))
                self.attempts.labels(destination, outcome).inc()
                self.attempt_seconds.labels(destination).observe(max(0.0, (finished - started).total_seconds()))
                if outcome == "delivered":
                    self.latency.labels(destination).observe(max(0.0, (finished - owed).total_seconds()))

    # --- gauges: counted in the ledger ----------------------------------------------------------------

    def _gauges(self, now: datetime) -> Iterator[Metric]:
        with self.store.database.read("count the ledger for metrics") as conn:
            g = GaugeMetricFamily("gateway_files", "Files in the ledger by partner, format and status.",
                                  labels=["partner", "format", "status"])  # fmt: skip
            counted = select(files.c.partner_id, files.c.format, files.c.status, func.count()).group_by(
                files.c.partner_id, files.c.format, files.c.status
            )
            pending = 0
            for partner, fmt, status, n in conn.execute(counted):
                g.add_metric([partner or "unknown", fmt, status], int(n))
                pending += int(n) if status in ("received", "processing") else 0
            yield g
            g = GaugeMetricFamily("gateway_inbox_backlog", "Files received and not yet processed (all workers).")
            g.add_metric([], pending)
            yield g
            g = GaugeMetricFamily("gateway_documents", "Documents by partner, type and status.",
                                  labels=["partner", "type", "status"])  # fmt: skip
            for partner, doc_type, status, n in conn.execute(
                select(documents.c.partner_id, documents.c.doc_type, documents.c.status, func.count()).group_by(
                    documents.c.partner_id, documents.c.doc_type, documents.c.status
                )
            ):
                g.add_metric([partner or "unknown", doc_type, status], int(n))
            yield g
            by_dest: dict[str, dict[str, int]] = {}
            oldest: dict[str, datetime] = {}
            for dest, status, n in conn.execute(
                select(deliveries.c.destination, deliveries.c.status, func.count())
                .group_by(deliveries.c.destination, deliveries.c.status)
            ):  # fmt: skip
                by_dest.setdefault(dest, {})[status] = int(n)
            for dest, first in conn.execute(
                select(deliveries.c.destination, func.min(deliveries.c.created_at))
                .where(deliveries.c.status == "pending")
                .group_by(deliveries.c.destination)
            ):  # fmt: skip
                if first is not None:
                    oldest[dest] = first.astimezone(UTC)
            pairs = {(d, s): n for d, st in by_dest.items() for s, n in st.items()}
            yield _family(
                "gateway_deliveries", "Deliveries by destination and status.", ["destination", "status"], pairs
            )
            backlog = {(d,): st.get("pending", 0) for d, st in by_dest.items()}
            yield _family("gateway_delivery_backlog", "Deliveries pending (due or waiting for a retry) per "
                          "destination.", ["destination"], backlog)  # fmt: skip
            dead = {(d,): st.get("dead_letter", 0) for d, st in by_dest.items()}
            yield _family("gateway_dead_letters", "Deliveries in the dead-letter queue per destination.",
                          ["destination"], dead)  # fmt: skip
            ages = {(d,): (now - t).total_seconds() for d, t in oldest.items()}
            yield _family("gateway_delivery_oldest_pending_seconds", "Age of the oldest pending delivery per "
                          "destination.", ["destination"], ages)  # fmt: skip
            overdue = conn.execute(
                select(func.count())
                .select_from(outbound)
                .where(
                    (outbound.c.expected_ack == "overdue")
                    | ((outbound.c.expected_ack == "pending") & (outbound.c.ack_due_at < now))
                )
            ).scalar_one()
            g = GaugeMetricFamily("gateway_acks_overdue", "Interchanges we sent whose acknowledgment is past due.")
            g.add_metric([], int(overdue))
            yield g

    # --- the live service -----------------------------------------------------------------------------

    def _live(self, now: float) -> Iterator[Metric]:
        view = self.view
        if view is None:
            return
        beats = dict(view.beats)
        g = GaugeMetricFamily("gateway_channel_last_success_timestamp_seconds", "When each channel (inbox, send "
                              "folder) was last polled successfully, and the loops last completed a round (loop, "
                              "deliveries).", labels=["channel"])  # fmt: skip
        for name, at in sorted(beats.items()):
            g.add_metric([name], at)
        yield g
        age = view.loop_age(now)
        g = GaugeMetricFamily("gateway_loop_healthy", "1 when the service loop beat within its stale limit.")
        g.add_metric([], 1.0 if age is not None and age <= view.stale_seconds else 0.0)
        yield g
        g = GaugeMetricFamily("gateway_inbox_files_waiting", "Files this service sees in its inbox and has not "
                              "taken yet (still being written, or held after a failure).")  # fmt: skip
        g.add_metric([], view.waiting())
        yield g
        yield from _channel_families(view.channels())
        writes = view.writes()
        counts = CounterMetricFamily("gateway_store_writes", "Write transactions of this process since it started, "
                                     "by what they do.", labels=["what"])  # fmt: skip
        waited = CounterMetricFamily("gateway_store_write_wait_seconds", "Seconds this process's write "
                                     "transactions waited to begin (on SQLite: for the ledger's write lock).",
                                     labels=["what"])  # fmt: skip
        held = CounterMetricFamily("gateway_store_write_held_seconds", "Seconds this process's write transactions "
                                   "were open, commit included (on SQLite: holding the ledger's one write lock).",
                                   labels=["what"])  # fmt: skip
        for what, (n, wait_s, held_s) in sorted(writes.items()):
            counts.add_metric([what], n)
            waited.add_metric([what], wait_s)
            held.add_metric([what], held_s)
        yield from (counts, waited, held)
        paused = view.paused()
        g = GaugeMetricFamily("gateway_destination_paused", "1 for each destination whose circuit breaker is open.",
                              labels=["destination"])  # fmt: skip
        for name in paused:
            g.add_metric([name], 1.0)
        yield g


def _family(name: str, doc: str, labels: list[str], values: Mapping[Any, float]) -> Metric:
    g = GaugeMetricFamily(name, doc, labels=labels)
    for key, value in sorted(values.items()):
        g.add_metric(list(key), value)
    return g


def health(view: ServiceView, store: Store, store_timeout: float = 2.0) -> tuple[bool, dict[str, Any]]:
    """``(healthy, report)``: the loop beat within ``view.stale_seconds`` and the store answered a query
    within ``store_timeout`` seconds (a hung store makes the check fail, not hang)."""
    now = time.time()
    age = view.loop_age(now)
    loop_ok = age is not None and age <= view.stale_seconds
    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(store.revision)
    try:
        revision = future.result(timeout=store_timeout)
        store_report: dict[str, Any] = {"ok": revision == HEAD, "revision": revision}
        if revision != HEAD:
            store_report["error"] = f"the database is at revision {revision or '(none)'}, the code needs {HEAD}"
    except FutureTimeout:
        store_report = {"ok": False, "error": f"no answer within {store_timeout:g} s"}
    except GatewayError as exc:
        store_report = {"ok": False, "error": str(exc)}
    finally:
        pool.shutdown(wait=False)
    loop: dict[str, Any] = {"ok": loop_ok, "stale_after_seconds": view.stale_seconds}
    loop["last_beat_seconds_ago"] = None if age is None else round(age, 3)
    if not loop_ok:
        loop["error"] = "the loop has not completed a round yet" if age is None else "the loop is stuck"
    healthy = loop_ok and bool(store_report["ok"])
    report = {
        "status": "ok" if healthy else "fail",
        "worker": view.worker,
        "loop": loop,
        "store": store_report,
        "paused_destinations": view.paused(),
        "channels": {k: datetime.fromtimestamp(v, UTC).isoformat() for k, v in sorted(view.beats.items())},
    }
    return healthy, report


class HealthServer:
    """``/metrics`` and ``/healthz`` on ``host:port`` (port 0: any free port, see :attr:`port`), served
    from daemon threads until :meth:`stop`."""

    def __init__(self, host: str, port: int, metrics: LedgerMetrics, view: ServiceView, store: Store) -> None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(metrics)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._send(200, CONTENT_TYPE_LATEST, generate_latest(registry))
                elif path == "/healthz":
                    ok, report = health(view, store)
                    self._send(200 if ok else 503, "application/json", json.dumps(report).encode())
                else:
                    self._send(404, "text/plain", b"not found: /metrics or /healthz\n")

            def _send(self, code: int, kind: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("metrics http: " + format, *args)

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.host = host
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, name="metrics-http", daemon=True)

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


def _epoch(stamp: object) -> float | None:
    """An ISO time written by the channel states, as seconds since the epoch (None when absent or unreadable)."""
    if not isinstance(stamp, str):
        return None
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return None


def _channel_families(states: dict[str, dict[str, Any]]) -> Iterator[Metric]:
    """Channel health per SFTP partner: last successful poll, whether the last poll failed, remote backlog."""
    last = GaugeMetricFamily("gateway_sftp_last_success_timestamp_seconds", "When each partner's SFTP server "
                             "was last polled successfully.", labels=["partner"])  # fmt: skip
    failing = GaugeMetricFamily("gateway_sftp_failing", "1 when a partner's last SFTP poll failed (its error is in "
                                "`gateway channels status`).", labels=["partner"])  # fmt: skip
    backlog = GaugeMetricFamily("gateway_sftp_backlog", "Files waiting on a partner's SFTP server at the last poll.",
                                labels=["partner"])  # fmt: skip
    for partner, state in sorted(states.items()):
        success = _epoch(state.get("last_success"))
        if success is not None:
            last.add_metric([partner], success)
        failing.add_metric([partner], 1.0 if state.get("error") or not state.get("last_success") else 0.0)
        if isinstance(state.get("backlog"), int):
            backlog.add_metric([partner], float(state["backlog"]))
    yield last
    yield failing
    yield backlog
