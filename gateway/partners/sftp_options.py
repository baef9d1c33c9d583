"""SFTP settings of a partner channel (``inbound``/``outbound: {channel: sftp, ..., sftp: {...}}``) and of the
``sftp`` destination: who to connect to, how to authenticate, which files are complete, what to do after.

Pure: the models only. Secrets are references (``{env: NAME}`` or ``{file: PATH}``), never values in
YAML; the edges (:mod:`gateway.channels.sftp`) read them when connecting. See docs/sftp.md.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Secret", "SftpOptions"]


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
    max_requests: int = Field(
        default=128, ge=1, le=1024, description="Read requests in flight per download (prefetch)."
    )
