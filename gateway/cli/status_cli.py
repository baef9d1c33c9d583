"""``gateway status``: the ledger's counts and a dashboard of today's traffic, failures, dead letters,
delivery backlog per destination, paused (circuit-broken) destinations and the running services.

The first block is the plain ``name  values`` lines scripts already read; the dashboard tables follow
(rich). ``--json`` prints all of it as one object. Paused destinations and the services' heartbeats come
from the state files ``gateway run`` keeps in ``folders.run`` (the breakers live in its memory).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from gateway.cli.messages_cli import when
from gateway.cli.options import deployment_options, load_deployment, open_store_read_only
from gateway.runtime.fsutil import oneline, printable
from gateway.runtime.health import folder_problems, read_problems
from gateway.runtime.sftp_pull import channel_line
from gateway.runtime.sftp_pull import read_states as read_channel_states
from gateway.runtime.state import read_states

__all__ = ["dashboard", "status"]

_read_options = deployment_options(read_only=True)
DELIVERY_STATES = ("dead_letter", "delivered", "discarded", "pending")
"""The statuses of ``status``'s per-destination lines (a destination's counts read once, for both views)."""


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print everything as one JSON object.")
@click.option("--since", "since_text", help="Traffic since: a duration (12h, 7d) or a date; default today (UTC).")
@_read_options
def status(
    as_json: bool, since_text: str | None, home: Path | None, config: Path | None, store_url: str | None
) -> None:
    """Counts by state, the oldest pending file, quarantined files; then per partner today's traffic and
    failures, per destination the backlog, dead letters and whether it is paused, the business indicators
    (dead-lettered invoices, overdue acks) and the services running."""
    deployment = load_deployment(home, config)
    now = datetime.now(UTC)
    since = when(since_text, now) if since_text else datetime.combine(now.date(), time(), UTC)
    store = open_store_read_only(deployment, store_url)
    try:
        counts = store.counts_by_status()
        oldest = store.oldest_pending()
        quarantined = store.list_files(status="quarantined", limit=20)
        unrouted = store.list_documents(status="unrouted", limit=20)
        board = dashboard(deployment, store, since, now)
    finally:
        store.close()
    traffic, failures, destinations = board["traffic"], board["failures"], board["destinations"]
    indicators, services, channels = board["indicators"], board["services"], board["channels"]
    problems, paused, unsent = board["problems"], board["paused"], board["unsent"]
    backlog = {d["destination"]: {k: d[k] for k in DELIVERY_STATES if d[k]} for d in destinations}
    if as_json:
        click.echo(
            json.dumps(
                {
                    "counts": counts,
                    "oldest_pending": None
                    if oldest is None
                    else {"id": oldest.id, "name": oldest.name, "since": oldest.received_at.isoformat()},
                    "quarantined": [{"id": f.id, "name": f.name, "reason": f.reason} for f in quarantined],
                    "destinations": backlog,
                    "unrouted": [{"id": d.id, "file_id": d.file_id, "reason": d.reason} for d in unrouted],
                    "unrouted_outbound": [
                        {"id": o.id, "kind": o.kind, "partner": o.partner_id, "reason": (o.route or {}).get("reason")}
                        for o in unsent
                    ],
                    "problems": problems,
                    "since": since.isoformat(),
                    "traffic": traffic,
                    "failures": [
                        {"id": f.id, "name": f.name, "status": f.status, "partner": f.partner_id, "reason": f.reason}
                        for f in failures
                    ],
                    "delivery": destinations,
                    "paused_destinations": paused,
                    "indicators": indicators,
                    "services": services,
                    "channels": channels,
                },
                indent=2,
                default=str,
            )
        )
        return
    _echo_ledger(counts, oldest, quarantined, backlog, unrouted, problems)
    for o in unsent:
        why = oneline(str((o.route or {}).get("reason", "")))[:200]
        click.echo(f"unrouted           outbound {o.id} {o.kind} to {o.partner_id}: {why}  (out-{o.id})")
    for partner, state in sorted(channels.items()):
        click.echo(f"channel            {partner}: {channel_line(state)}")
    _dashboard(since, traffic, failures, destinations, indicators, services)


def dashboard(deployment: Any, store: Any, since: datetime, now: datetime) -> dict[str, Any]:
    """What ``status`` and the web overview show alike: per partner the traffic since ``since``, the recent
    failed files, per destination the backlog (``paused`` when a live service's breaker is open), the
    business indicators, the services, the SFTP channels' last polls and the intake problems."""
    by_type = store.traffic_by_type(since)  # the web overview shows it; the per-partner totals add it up
    traffic = store.traffic(since, by_type)
    destinations = store.destinations(now, since)  # delivered since ``since``: not every delivery ever made
    indicators = store.indicators(now)
    failures = [f for s in ("failed", "partial") for f in store.list_files(status=s, limit=10)]
    unsent = store.list_outbound(status="unrouted", limit=20)  # what we send partners, no rule matched
    reported = read_problems(deployment.path("run"))
    # A folder the service already reported is named once, by the service's report.
    problems = [m for f, m in folder_problems(deployment) if not any(str(f) in r for r in reported)] + reported
    services = _services(read_states(deployment.path("run")))
    paused = sorted({d for s in services if s["alive"] for d in s["paused"]})
    for d in destinations:
        d["paused"] = d["destination"] in paused
    return {
        "traffic": traffic,
        "by_type": by_type,
        "failures": sorted(failures, key=lambda f: f.id, reverse=True)[:10],
        "destinations": destinations,
        "indicators": indicators,
        "services": services,
        "channels": read_channel_states(deployment.path("run")),  # SFTP partners' last poll (docs/sftp.md)
        "problems": problems,
        "paused": paused,
        "unsent": unsent,
    }


def _services(states: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The services' state files: alive when written recently and their loop beat within its limit."""
    out = []
    now = datetime.now(UTC).timestamp()
    for s in states:
        beat = s.get("beats", {}).get("loop")
        stale = float(s.get("stale_seconds", 300))
        age = None if beat is None else max(0.0, now - float(beat))
        alive = s["age"] < 30 and age is not None and age <= stale
        out.append({"worker": s.get("worker"), "pid": s.get("pid"), "alive": alive, "loop_seconds_ago": age,
                    "state_seconds_ago": round(s["age"], 1), "paused": list(s.get("paused", [])),
                    "metrics": s.get("metrics")})  # fmt: skip
    return out


def _echo_ledger(counts: Any, oldest: Any, quarantined: Any, backlog: Any, unrouted: Any, problems: Any) -> None:
    """The plain lines (``name  values``) scripts and tests read; unchanged from the first ``status``."""
    for table, by_status in counts.items():
        parts = ", ".join(f"{k} {v}" for k, v in sorted(by_status.items())) or "none"
        click.echo(f"{table:<18} {parts}")
    if oldest is None:
        click.echo("oldest pending     none")
    else:
        click.echo(
            f"oldest pending     file {oldest.id} {printable(oldest.name)} "
            f"({oldest.status} since {oldest.received_at:%Y-%m-%d %H:%M:%S})"
        )
    click.echo(f"quarantined        {len(quarantined)}")
    for f in quarantined:
        click.echo(f"  file {f.id} {printable(f.name)}: {oneline(f.reason or '')}")
    for name, by_status in sorted(backlog.items()):
        parts = ", ".join(f"{k} {v}" for k, v in sorted(by_status.items()))
        click.echo(f"destination        {name}: {parts}")
    if unrouted:
        click.echo(f"unrouted           {len(unrouted)} document(s) matched no route:")
        for d in unrouted:
            click.echo(f"  document {d.id} (file {d.file_id}): {oneline(d.reason or '')[:200]}")
    for problem in problems:
        click.echo(f"problem            {problem}")


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return str(timedelta(seconds=int(seconds)))


def _dashboard(
    since: datetime,
    traffic: list[dict[str, Any]],
    failures: list[Any],
    destinations: list[dict[str, Any]],
    indicators: dict[str, int],
    services: list[dict[str, Any]],
) -> None:
    console = Console(width=None if click.get_text_stream("stdout").isatty() else 120, highlight=False)
    console.print()
    t = Table(title=f"Traffic since {since:%Y-%m-%d %H:%M} UTC", title_justify="left")
    for name in ("partner", "files", "statuses", "failed files", "documents", "failed docs", "last received"):
        t.add_column(name, justify="right" if name in ("files", "failed files", "documents", "failed docs") else "left")
    for p in traffic:
        t.add_row(
            p["partner"],
            str(p["files"]),
            ", ".join(f"{k} {v}" for k, v in sorted(p["statuses"].items())),
            _red(p["failed_files"]),
            str(p["documents"]),
            _red(p["failed_documents"]),
            f"{p['last_received']:%H:%M:%S}" if p["last_received"] else "-",
        )
    console.print(t if traffic else "[dim]no traffic since then[/dim]")
    if failures:
        f = Table(title="Recent failures", title_justify="left")
        for name in ("file", "status", "partner", "name", "reason"):
            f.add_column(name)
        for row in failures:
            f.add_row(str(row.id), row.status, row.partner_id or "-", printable(row.name),
                      oneline(row.reason or "")[:80])  # fmt: skip
        console.print(f)
    d = Table(title=f"Destinations (delivered since {since:%Y-%m-%d %H:%M} UTC)", title_justify="left")
    for name in ("destination", "pending", "due now", "oldest pending", "dead letters", "delivered", "state"):
        d.add_column(name, justify="left" if name in ("destination", "state") else "right")
    for row in destinations:
        state = "[bold red]paused (circuit open)[/bold red]" if row["paused"] else "ok"
        d.add_row(row["destination"], str(row["pending"]), str(row["due"]), _ago(row["oldest_pending_seconds"]),
                  _red(row["dead_letter"]), str(row["delivered"]), state)  # fmt: skip
    console.print(d if destinations else "[dim]no deliveries yet[/dim]")
    i = Table(title="Indicators", title_justify="left", show_header=False)
    i.add_column("indicator")
    i.add_column("n", justify="right")
    for name, n in indicators.items():
        i.add_row(name.replace("_", " "), _red(n) if name != "acks_awaited" else str(n))
    console.print(i)
    s = Table(title="Services", title_justify="left")
    for name in ("worker", "pid", "state", "loop beat", "paused", "metrics"):
        s.add_column(name)
    for svc in services:
        state = "alive" if svc["alive"] else "[bold red]stale[/bold red]"
        beat = _ago(svc["loop_seconds_ago"]) + " ago"
        s.add_row(
            str(svc["worker"]), str(svc["pid"]), state, beat, ", ".join(svc["paused"]) or "-", svc["metrics"] or "-"
        )
    console.print(s if services else "[dim]no `gateway run` service has reported here[/dim]")


def _red(n: int) -> str:
    return f"[bold red]{n}[/bold red]" if n else "0"
