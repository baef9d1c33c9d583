"""SFTP settings of a partner channel (``inbound``/``outbound: {channel: sftp, ..., sftp: {...}}``) and of the
``sftp`` destination: who to connect to, how to authenticate, which files are complete, what to do after.

Pure: the models only. Secrets are references (``{env: NAME}`` or ``{file: PATH}``), never values in
YAML; the edges (:mod:`gateway.channels.sftp`) read them when connecting. See docs/sftp.md.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Secret", "SftpOptions", "host_key_problem", "sftp_problems"]


class Secret(BaseModel):
    """``{env: NAME}`` or ``{file: PATH}``: a passphrase or password kept out of YAML."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: str | None = None
    file: str | None = None


class SftpOptions(BaseModel):
    """The SFTP-specific part of a channel (host, port, username, remote_dir and host_key are the channel's)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    known_hosts: str | None = Field(
        default=None,
        description="A known_hosts file pinning the server's host key (or the channel's host_key). "
        "Unknown or changed keys are refused; nothing is ever added.",
    )
    key_file: str | None = Field(default=None, description="Private key (ed25519, ECDSA or RSA) for key auth.")
    passphrase: Secret | None = Field(default=None, description="The key's passphrase: {env: NAME} or {file: PATH}.")
    password: Secret | None = Field(default=None, description="Password auth: {env: NAME} or {file: PATH}.")
    patterns: list[str] = Field(default_factory=lambda: ["*"], description="File-name patterns taken (fnmatch).")
    recursive: bool = Field(default=False, description="Also list the remote folder's subfolders.")
    complete: Literal["stable", "age", "marker", "rename"] = Field(
        default="stable",
        description="When a remote file is complete: size and mtime unchanged over `stable_polls` listings "
        "(stable), older than `min_age_seconds` (age), a `<name><marker_suffix>` file beside it (marker), "
        "or never while named `*.tmp`/`*.part` (rename: the partner renames when done).",
    )
    stable_polls: int = Field(default=2, ge=1, le=100, description="stable: listings with the same size and mtime.")
    min_age_seconds: float = Field(default=0.0, ge=0, le=86400, description="Minimum age (mtime) of a file taken.")
    marker_suffix: str = Field(default=".done", min_length=1, description="marker: the done-marker's suffix.")
    temp_suffixes: list[str] = Field(
        default_factory=lambda: [".tmp", ".part"], description="Names never taken (an upload in progress)."
    )
    after: Literal["move", "delete"] = Field(
        default="move", description="What is done with a remote file once archived and recorded."
    )
    done_dir: str = Field(default="done", description="move: where (relative to remote_dir, or absolute).")
    upload_dir: str | None = Field(
        default=None, description="outbound / `channels test`: where files are uploaded (default remote_dir)."
    )
    poll_seconds: float = Field(default=60.0, gt=0, le=86400, description="How often the folder is listed.")
    timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="Deadline of every SSH step (connect, key exchange, auth, "
        "open, list, each read or write): a peer silent for longer is abandoned and retried.",
    )
    max_requests: int | None = Field(
        default=None,
        ge=1,
        le=1024,
        description="Read requests in flight per download (prefetch; default: 16 of 255 KiB from OpenSSH 9 or "
        "later, else 128 of 32 KiB).",
    )
    read_size: int | None = Field(
        default=None, ge=4096, le=261120, description="Bytes per read request (default: see max_requests)."
    )


HOST_KEY_TYPES = frozenset(
    {"ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"}
)

Problem = tuple[str, str, tuple[str, ...]]
"""``(code, message, key path under the channel or destination)``."""


def host_key_problem(text: str) -> str | None:
    """Why ``text`` is not a known_hosts key part (``ssh-ed25519 AAAA...``), or None."""
    parts = text.split()
    if len(parts) < 2:
        return f"host_key {text!r} is not '<type> <base64>' (the key part of a known_hosts line)"
    if parts[0] not in HOST_KEY_TYPES:
        return f"host_key type {parts[0]!r} is not one of {', '.join(sorted(HOST_KEY_TYPES))}"
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (ValueError, binascii.Error):
        return f"host_key {parts[0]} ...: the key is not base64"
    if parts[0].encode() not in blob[:40]:
        return f"host_key {parts[0]} ...: the base64 key is not a {parts[0]} key"
    return None


def sftp_problems(
    *,
    host: str | None,
    username: str | None,
    remote_dir: str | None,
    host_key: str | None,
    options: SftpOptions | None,
    codes: tuple[str, str, str, str, str],
    file_exists: Callable[[str], bool],
    secret_problem: Callable[[Secret], str | None],
) -> list[Problem]:
    """What stops an SFTP channel or destination from connecting safely, found without connecting.

    ``codes``: (missing setting, no host key pinned, bad host key, no or unreadable authentication,
    a file that is not there). ``file_exists`` and ``secret_problem`` are the only looks outside.
    """
    missing, unpinned, bad_key, no_auth, no_file = codes
    opts = options or SftpOptions()
    out: list[Problem] = []
    for key, value in (("host", host), ("username", username), ("remote_dir", remote_dir)):
        if not value:
            out.append((missing, f"sftp needs `{key}`", (key,)))
    if not host_key and not opts.known_hosts:
        out.append(
            (
                unpinned,
                "no host key pinned (`host_key` or `sftp.known_hosts`): every connection would be refused; "
                "get the server's key fingerprint from the partner and pin it",
                ("host_key",),
            )
        )
    if host_key:
        why = host_key_problem(host_key)
        if why:
            out.append((bad_key, why, ("host_key",)))
    if not opts.key_file and opts.password is None:
        out.append((no_auth, "no authentication: give `sftp.key_file` or `sftp.password`", ("sftp",)))
    for key, path in (("known_hosts", opts.known_hosts), ("key_file", opts.key_file)):
        if path and not file_exists(path):
            out.append((no_file, f"sftp.{key} {path} does not exist", ("sftp", key)))
    for key, secret in (("passphrase", opts.passphrase), ("password", opts.password)):
        if secret is not None:
            why = secret_problem(secret)
            if why:
                out.append((no_auth, f"sftp.{key}: {why}", ("sftp", key)))
    return out
