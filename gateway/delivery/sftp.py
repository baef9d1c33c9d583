"""The ``sftp`` destination: each payload uploaded to a partner's SFTP server (temp name, size check, rename).

Our 997/999/TA1 and 850s reach a partner that wants them on its server through the routing and delivery
machinery like any other destination: retries with backoff, dead letters, ``gateway retransmit``.
Each payload is written to a temporary name (``temp``, default ``.{name}.part``: a partner watching the
folder never sees half a file), its size read back from the server, then renamed to ``name`` (a
template over :meth:`~gateway.delivery.base.Payload.names`, one plain file name). A retry after a lost
answer replaces the same name, so the partner never gets two copies under two names. With
``rename: false`` (a partner whose convention is to read only after a size check of its own) the file is
written under its final name directly.

Connection, host key pinning, authentication and the per-step deadlines are
:mod:`gateway.channels.sftp`'s; an unreachable, stalled or refusing server is a retry (the policy
turns repeated failures into a dead letter), a host key that is not the pinned one too, and says so.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from gateway.channels.sftp import Endpoint, Session, SftpError, connect, endpoint_of
from gateway.delivery.base import Delivered, Destination, DestinationConfig, Outcome, Payload, Rejected, RetryLater
from gateway.delivery.files import _safe, check_template
from gateway.delivery.registry import Registry
from gateway.partners.profile import PartnerDirectory
from gateway.partners.sftp_options import SftpOptions

__all__ = ["ByPartner", "SftpConfig", "SftpDestination", "by_partner", "register"]


class SftpConfig(DestinationConfig):
    """``type: sftp``: the partner's server, the remote folder, the name and temporary-name templates."""

    type: Literal["sftp"] = "sftp"
    host: str = Field(min_length=1)
    port: int = Field(default=22, ge=1, le=65535)
    username: str = Field(min_length=1)
    host_key: str | None = Field(default=None, description="The pinned host key (`ssh-ed25519 AAAA...`).")
    remote_dir: str = "."
    name: str = "{doc_type}-{control}-{delivery_id}.x12"
    temp: str = ".{name}.part"
    rename: bool = True
    sftp: SftpOptions = Field(default_factory=SftpOptions)

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        check_template(value)
        if "/" in value:
            raise ValueError(f"name template {value!r} is one file name (no /): use remote_dir for the folder")
        return value

    @field_validator("temp")
    @classmethod
    def _temp(cls, value: str) -> str:
        used = {f for _, f, _, _ in string.Formatter().parse(value) if f is not None}
        if used != {"name"} or "/" in value:
            raise ValueError(f"temp {value!r} must be a plain name using {{name}} (e.g. .{{name}}.part)")
        return value


@dataclass
class SftpDestination:
    """Uploads payloads to one SFTP server; one connection kept between deliveries, dropped on any error."""

    name: str
    endpoint: Endpoint
    config: SftpConfig
    session: Session | None = None

    def remote_name(self, payload: Payload) -> str:
        return self.config.name.format(**{k: _safe(v) for k, v in payload.names().items()})

    def deliver(self, payload: Payload) -> Outcome:
        """Upload one payload: temp name, size check, rename."""
        final = self.remote_name(payload)
        temp = self.config.temp.format(name=final) if self.config.rename else final
        data = payload.document_bytes()
        try:
            if self.session is None:
                self.session = connect(self.endpoint)
            if self.config.rename:
                size = self.session.upload(data, self.config.remote_dir, final, temp)
            else:
                size = self.session.upload_in_place(data, self.config.remote_dir, final)
        except SftpError as exc:
            self.close()
            if exc.kind == "name":
                return Rejected(f"destination {self.name}: {exc}")
            return RetryLater(f"destination {self.name}: {exc}")
        path = f"{self.config.remote_dir.rstrip('/')}/{final}"
        return Delivered({"host": self.endpoint.label, "path": path, "size": size})

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None


PARTNER_NAME = "{doc_type}-{control}.x12"
"""The remote name of what goes to a partner's own ``outbound: {channel: sftp}`` server."""


@dataclass
class ByPartner:
    """``partner-outbox`` when some partners want their acknowledgments and 850s on their own SFTP server
    (``outbound: {channel: sftp}`` in the profile): their payloads are uploaded there, everyone else's
    go to the destination it wraps. Retries, dead letters and retransmissions are the delivery's, as ever."""

    name: str
    fallback: Destination
    channels: dict[str, SftpDestination]

    def _for(self, payload: Payload) -> Destination:
        return self.channels.get(payload.partner_id or "", self.fallback)

    def deliver(self, payload: Payload) -> Outcome:
        return self._for(payload).deliver(payload)

    def deliver_batch(self, payloads: list[Payload]) -> list[Outcome]:
        out: dict[int, Outcome] = {}
        rest = [(n, p) for n, p in enumerate(payloads) if self._for(p) is self.fallback]
        for n, p in enumerate(payloads):
            if self._for(p) is not self.fallback:
                out[n] = self._for(p).deliver(p)
        if rest:
            batch = getattr(self.fallback, "deliver_batch", None)
            done = batch([p for _, p in rest]) if batch else [self.fallback.deliver(p) for _, p in rest]
            out.update({n: o for (n, _), o in zip(rest, done, strict=True)})
        return [out[n] for n in range(len(payloads))]

    def close(self) -> None:
        self.fallback.close()
        for channel in self.channels.values():
            channel.close()


def by_partner(name: str, fallback: Destination, partners: PartnerDirectory, home: Path) -> Destination:
    """``fallback`` wrapped so partners with ``outbound: {channel: sftp}`` get theirs on their server
    (``fallback`` itself when no partner has one)."""
    channels = {}
    for profile in partners.profiles.values():
        channel = profile.outbound
        if channel is None or channel.channel != "sftp":
            continue
        options = channel.sftp or SftpOptions()
        config = SftpConfig(
            host=channel.host or "",
            port=channel.port,
            username=channel.username or "",
            host_key=channel.host_key,
            remote_dir=options.upload_dir or channel.remote_dir or ".",
            name=PARTNER_NAME,
            sftp=options,
        )
        channels[profile.id] = build(f"{name}:{profile.id}", config, _Home(home))
    return ByPartner(name, fallback, channels) if channels else fallback


@dataclass(frozen=True)
class _Home:
    home: Path


def build(name: str, config: SftpConfig, context: object) -> SftpDestination:
    """Phase two: key and known_hosts paths are taken from the deployment folder (``context.home``)."""
    home = Path(str(getattr(context, "home", ".")))
    ep = endpoint_of(
        host=config.host,
        port=config.port,
        username=config.username,
        host_key=config.host_key,
        options=config.sftp,
        home=home,
    )
    return SftpDestination(name, ep, config)


def register(registry: Registry) -> None:
    """Register ``sftp``."""
    registry.register("destination", "sftp", SftpConfig, build, "upload each payload to an SFTP server")
