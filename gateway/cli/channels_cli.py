"""``gateway channels``: try a partner's SFTP channel now (``test``) and see every channel's last poll (``status``).

``channels test PARTNER`` connects with the partner's settings, shows the server's host key fingerprint
and whether it matches the pin, lists the remote folder, checks that the upload folder can be written
(a probe file written and removed), and exits 1 on any problem. ``channels status`` prints what the
running service last recorded for each SFTP partner (``folders.run/channels-<host>.json``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from gateway.channels.sftp import HostKeyRefused, SftpError, connect, endpoint, fingerprint
from gateway.cli.maps_cli import open_workspace
from gateway.cli.options import deployment_options, load_deployment
from gateway.partners.profile import ChannelSettings, Profile
from gateway.partners.sftp_options import SftpOptions
from gateway.runtime.fsutil import printable
from gateway.runtime.sftp_pull import channel_line, matches, read_states

__all__ = ["channels"]

_options = deployment_options(read_only=True)


@click.group()
def channels() -> None:
    """Partners' SFTP channels: test one now, or see every channel's last poll."""


def _sftp_channels(profile: Profile) -> list[tuple[str, ChannelSettings]]:
    return [
        (direction, ch)
        for direction, ch in (("inbound", profile.inbound), ("outbound", profile.outbound))
        if ch is not None and ch.channel == "sftp"
    ]


@channels.command("test")
@click.argument("partner")
@_options
def test(partner: str, home: Path | None, config: Path | None, store_url: str | None) -> None:
    """Connect to PARTNER's SFTP server: host key, listing, write permission. Exit 1 on any problem."""
    deployment = load_deployment(home, config)
    workspace = open_workspace(deployment.home, partial=True, deployment=deployment)
    profile = workspace.partners.get(partner)
    if profile is None:
        raise click.UsageError(
            f"no partner profile {partner!r} (known: {', '.join(sorted(workspace.partners.profiles))})"
        )
    found = _sftp_channels(profile)
    if not found:
        click.echo(f"partner {partner}: no `channel: sftp` in its inbound or outbound settings", err=True)
        raise SystemExit(1)
    problems = 0
    for direction, channel in found:
        problems += _test_one(partner, direction, channel, deployment.home)
    raise SystemExit(1 if problems else 0)


def _test_one(partner: str, direction: str, channel: ChannelSettings, home: Path) -> int:
    options = channel.sftp or SftpOptions()
    ep = endpoint(channel, home)
    click.echo(f"{partner} {direction}: {ep.label} (deadline {ep.timeout:g} s per step)")
    problems = 0
    try:
        with connect(ep) as session:
            assert session.offered is not None
            click.echo(f"  host key      {session.offered.get_name()} {fingerprint(session.offered)}: matches the pin")
            click.echo("  auth          ok")
            folder = channel.remote_dir or "."
            try:
                listed = list(session.walk(folder, recursive=options.recursive))
                taken = [f for f in listed if matches(f.name, options)]
                click.echo(f"  list          {folder}: {len(listed)} file(s), {len(taken)} matching {options.patterns}")
                for f in taken[:20]:
                    click.echo(f"    {printable(f.path)}  {f.size} bytes")
            except SftpError as exc:
                click.echo(f"  list          FAILED: {exc}")
                problems += 1
            upload = options.upload_dir or folder
            probe = f".gateway-probe-{os.getpid()}"
            try:
                session.upload(b"gateway channels test\n", upload, probe, probe + ".tmp")
                session.remove(f"{upload.rstrip('/')}/{probe}")
                click.echo(f"  write         {upload}: ok (probe written, renamed and removed)")
            except SftpError as exc:
                click.echo(f"  write         {upload}: FAILED: {exc}")
                problems += 1
    except HostKeyRefused as exc:
        click.echo(f"  host key      REFUSED: {exc}")
        click.echo(f"  offered       {exc.offered}")
        click.echo(f"  pinned        {', '.join(exc.pinned) or 'nothing'}")
        return 1
    except SftpError as exc:
        click.echo(f"  FAILED ({exc.kind}): {exc}")
        return 1
    return problems


@channels.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_options
def status(as_json: bool, home: Path | None, config: Path | None, store_url: str | None) -> None:
    """Every SFTP channel's last poll, last success, last error and backlog (as the service recorded them)."""
    deployment = load_deployment(home, config)
    workspace = open_workspace(deployment.home, partial=True, deployment=deployment)
    states = read_states(deployment.path("run"))
    rows = {}
    for profile in sorted(workspace.partners.profiles.values(), key=lambda p: p.id):
        for direction, channel in _sftp_channels(profile):
            if direction == "inbound":
                state = dict(states.get(profile.id, {}))
                state.update(host=channel.host, port=channel.port, remote_dir=channel.remote_dir)
                rows[profile.id] = state
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no partner has `inbound: {channel: sftp}`")
        return
    for partner, state in rows.items():
        where = f"{state['host']}:{state['port']}{state['remote_dir'] or ''}"
        click.echo(f"{partner:<14} {where}  {channel_line(state)}")
