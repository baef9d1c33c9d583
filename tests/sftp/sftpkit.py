"""Shared parts of the SFTP tests: one OpenSSH ``sshd`` on loopback for the session (skipped, or failed under
CI=true, when OpenSSH is not installed), deployments whose partners pull from it, and endpoints.

Not a conftest (``tests/`` has no packages): test modules import the fixtures from here.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))

from conftest import unavailable
from runtimekit import REPO, Home, Running, gateway, make_home, wait_for

from gateway.channels.sftp import Endpoint
from tests.support.sshd import Sshd, free_port, sshd_missing

__all__ = ["REPO", "Home", "Running", "endpoint_for", "gateway", "sftp_home", "sshd_fixture", "wait_for"]

SAMPLE_856 = (REPO / "samples" / "x12" / "856-4010-medsupply-asn.edi").read_bytes()


@pytest.fixture(scope="session", name="sshd")
def sshd_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    missing = sshd_missing()
    if missing:
        unavailable(missing)
    read_only = free_port()  # the same server, read-only on a second port (permission denied on writes)
    server = Sshd(
        tmp_path_factory.mktemp("sshd"),
        f"Port {read_only}\nMatch LocalPort {read_only}\n    ForceCommand internal-sftp -R",
    )
    server.read_only_port = read_only
    yield server
    server.stop()


def endpoint_for(sshd: Sshd, **more: object) -> Endpoint:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": sshd.port,
        "username": sshd.user,
        "host_key": sshd.host_public,
        "key_file": sshd.user_key,
        "timeout": 5.0,
    }
    values.update(more)
    return Endpoint(**values)  # type: ignore[arg-type]


def channel(sshd: Sshd, remote: Path, port: int | None = None, **sftp: Any) -> dict[str, Any]:
    """A partner's ``inbound: {channel: sftp}`` block on this server."""
    options: dict[str, Any] = {"key_file": str(sshd.user_key), "timeout_seconds": 5, "poll_seconds": 0.2}
    options.update(sftp)
    return {
        "channel": "sftp",
        "host": "127.0.0.1",
        "port": port or sshd.port,
        "username": sshd.user,
        "remote_dir": str(remote),
        "host_key": sshd.host_public,
        "sftp": options,
    }


def set_inbound(home: Home, partner: str, block: dict[str, Any]) -> None:
    path = home.path / "partners" / f"{partner}.yaml"
    profile = yaml.safe_load(path.read_text())
    profile["inbound"] = block
    path.write_text(yaml.safe_dump(profile, sort_keys=False))


def sftp_home(tmp_path: Path, sshd: Sshd, **sftp: Any) -> tuple[Home, Path]:
    """A SQLite deployment whose partner ``medsupply`` pulls from ``<tmp>/remote`` on the test server."""
    home = make_home(tmp_path / "home", f"sqlite:///{tmp_path / 'home' / 'var' / 'gateway.sqlite'}")
    remote = tmp_path / "remote"
    remote.mkdir()
    set_inbound(home, "medsupply", channel(sshd, remote, **sftp))
    return home, remote
