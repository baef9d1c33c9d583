"""``gateway archive``: purge past the retention policy, verify the archive, list what was purged.

``purge --older-than 400d`` removes the archived bytes and ledger detail of files received longer ago
than that, and than their partner's policy (``retention.keep_days`` in the profile, else in
gateway.yaml); it refuses every file a hold protects (:mod:`gateway.store.holds`) and says which, and
writes an audit row per purged file (``gateway archive purges``). ``verify`` rehashes every blob the
ledger refers to and exits 1 when one is missing or altered.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from gateway.cli.bulk_cli import confirm_or_stop, progress_chunks
from gateway.cli.deliveries_cli import actor
from gateway.cli.options import deployment_options, load_deployment, open_store_read_only
from gateway.settings import Deployment
from gateway.store import Archive
from gateway.store.errors import ArchiveError, StoreValueError
from gateway.store.holds import HOLDS
from gateway.store.retention import PurgeReport

__all__ = ["archive", "parse_duration"]

_options = deployment_options(read_only=True)
_UNITS = {"h": 1 / 24, "d": 1, "w": 7, "y": 365}
_DURATION = re.compile(r"(\d+)\s*([hdwy])")


def parse_duration(text: str) -> timedelta:
    """``90d``, ``12w``, ``36h``, ``7y`` (365 days) or a sum (``1y30d``) as a timedelta; ValueError else."""
    cleaned = text.strip().lower()
    parts = _DURATION.findall(cleaned)
    if not parts or _DURATION.sub("", cleaned).strip():
        raise ValueError(f"not a duration: {text!r} (write e.g. 90d, 12w, 36h, 7y, 1y30d)")
    return timedelta(days=sum(int(n) * _UNITS[unit] for n, unit in parts))


def _duration(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[str, timedelta]:
    try:
        return value, parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


def _keep(deployment: Deployment) -> Any:
    """The retention floor of each partner: its profile's ``retention.keep_days``, else gateway.yaml's. The
    whole workspace must load (exit 2 otherwise): a broken profile's policy is unknown, so nothing is guessed."""
    from gateway.cli.maps_cli import open_workspace

    default = timedelta(days=deployment.settings.retention.keep_days)
    profiles = open_workspace(None, deployment=deployment).partners.profiles
    floors = {pid: timedelta(days=p.retention.keep_days) for pid, p in profiles.items() if p.retention is not None}
    return lambda partner: floors.get(partner, default) if partner is not None else default


@click.group()
def archive() -> None:
    """The archive of every byte received and sent: purge past the retention policy, verify, audit."""


@archive.command()
@click.option("--older-than", required=True, callback=_duration, help="Received longer ago than this (90d, 7y).")
@click.option("--partner", help="Only this partner's files.")
@click.option("--dry-run", is_flag=True, help="Count and list what would be purged and what is held; change nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for a confirmation.")
@click.option("--reason", default="past the retention policy", show_default=True, help="Recorded in the audit.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@_options
def purge(
    older_than: tuple[str, timedelta],
    partner: str | None,
    dry_run: bool,
    yes: bool,
    reason: str,
    as_json: bool,
    home: Path | None,
    config: Path | None,
    store_url: str | None,
) -> None:
    """Remove the archived bytes and ledger detail of old files (lineage, statuses and events stay), each
    recorded in the audit; refuses anything undelivered, unacknowledged, in a dead letter, not processed,
    failed, quarantined or held (exit 3 when something was refused)."""
    label, age = older_than
    deployment = load_deployment(home, config)
    keep = _keep(deployment)
    store = open_store_read_only(deployment, store_url)
    arch = Archive(deployment.path("archive"))
    try:
        plan = store.purge(arch, older_than=age, label=label, keep=keep, actor=actor(), reason=reason,
                           partner=partner, dry_run=True)  # fmt: skip
        if not dry_run and plan.purged:
            if not as_json:
                _print_report(plan)
            confirm_or_stop(f"purge {len(plan.purged)} file(s)?", yes)
            report = store.purge(arch, older_than=age, label=label, keep=keep, actor=actor(), reason=reason,
                                 partner=partner)  # fmt: skip
        else:
            report = plan
            report.dry_run = dry_run  # nothing to purge: the plan is the outcome
    except (StoreValueError, ArchiveError) as exc:
        click.echo(f"error: {exc.message}", err=True)
        raise SystemExit(1) from exc
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(_report_dict(report), indent=2, default=str))
    elif dry_run or not plan.purged:
        _print_report(report)
    else:
        click.echo(f"purged {len(report.purged)} file(s), {report.bytes_removed} bytes (audit run {report.run_id})")
    if report.refused:
        raise SystemExit(3)


def _report_dict(report: PurgeReport) -> dict[str, Any]:
    return {
        "run_id": report.run_id,
        "dry_run": report.dry_run,
        "cutoff": report.cutoff.isoformat(),
        "purged": [
            {
                "file_id": p.file_id,
                "partner": p.partner_id,
                "name": p.name,
                "sha256": p.sha256,
                "size": p.size,
                "received_at": p.received_at.isoformat(),
                "blob_removed": p.blob_removed,
                "counts": p.counts,
            }
            for p in report.purged
        ],
        "bytes_removed": report.bytes_removed,
        "refused": report.refused,
        "kept_by_policy": report.kept_by_policy,
    }


def _print_report(report: PurgeReport) -> None:
    verb = "would purge" if report.dry_run else "to purge"
    click.echo(
        f"{len(report.purged)} file(s) {verb} (received before {report.cutoff:%Y-%m-%d %H:%M:%S} UTC), "
        f"{report.bytes_removed} archive bytes"
    )
    for p in report.purged:
        blob = "blob removed" if p.blob_removed else "blob kept (still used)"
        click.echo(
            f"  file {p.file_id:>6} {p.partner_id or '-':<14} {p.received_at:%Y-%m-%d} {p.size:>9} bytes "
            f"{p.name} ({blob})"
        )
    why = {h.name: h.why for h in HOLDS}
    for name, ids in report.refused.items():
        shown = " ".join(map(str, ids[:20])) + (" ..." if len(ids) > 20 else "")
        click.echo(f"refused {len(ids)} file(s), hold {name}: {why.get(name, name)}: {shown}")
    if report.kept_by_policy:
        click.echo(f"kept {len(report.kept_by_policy)} file(s) by their partner's retention policy")


@archive.command()
@click.option("--partner", help="Only the blobs this partner's files and interchanges use.")
@click.option("--json", "as_json", is_flag=True, help="Print the problems as JSON.")
@_options
def verify(partner: str | None, as_json: bool, home: Path | None, config: Path | None, store_url: str | None) -> None:
    """Rehash every blob the ledger refers to; report each missing or altered one (exit 1 if any)."""
    deployment = load_deployment(home, config)
    store = open_store_read_only(deployment, store_url)
    try:
        refs = store.archive_blobs(partner)
    finally:
        store.close()
    arch = Archive(deployment.path("archive"))
    problems: list[dict[str, Any]] = []

    def check(shas: Any) -> None:
        for sha in shas:
            try:
                ok = arch.verify(sha)
            except ArchiveError as exc:  # BlobNotFoundError is one
                state = "missing" if not arch.exists(sha) else f"unreadable: {exc.message}"
                problems.append({"sha256": sha, "problem": state, "used_by": refs[sha]})
                continue
            if not ok:
                problems.append({"sha256": sha, "problem": "altered", "used_by": refs[sha]})

    progress_chunks(sorted(refs), "verifying", check)
    if as_json:
        click.echo(json.dumps({"blobs": len(refs), "problems": problems}, indent=2))
    else:
        for p in problems:
            click.echo(f"{p['problem'].upper()} {p['sha256']} used by {', '.join(p['used_by'])}")
        click.echo(f"{len(refs)} blob(s) checked: {len(problems)} missing or altered")
    if problems:
        sys.exit(1)


@archive.command("purges")
@click.option("--partner", help="Only this partner's.")
@click.option("--limit", default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@_options
def list_purges(
    partner: str | None, limit: int, as_json: bool, home: Path | None, config: Path | None, store_url: str | None
) -> None:
    """The audit of purges, newest first: what each file was (hash, size, dates), who purged it and why."""
    store = open_store_read_only(load_deployment(home, config), store_url)
    try:
        rows = store.list_purges(partner, limit)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        click.echo("no purges")
    for r in rows:
        counts = " ".join(f"{k} {v}" for k, v in sorted(r["counts"].items()))
        click.echo(
            f"{r['purged_at']:%Y-%m-%d %H:%M:%S} file {r['file_id']} {r['partner_id'] or '-'} {r['name']} "
            f"sha256 {r['sha256']} {r['size']} bytes received {r['received_at']:%Y-%m-%d} "
            f"{'blob removed' if r['blob_removed'] else 'blob kept'}; {counts}; older than {r['older_than']} "
            f"by {r['actor']}: {r['reason']}"
        )
