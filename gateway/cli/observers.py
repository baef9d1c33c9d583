"""What ``gateway run`` starts beside the service: the state file for ``gateway status`` and, with
``--metrics-port``, the ``/metrics`` and ``/healthz`` server (see :mod:`gateway.runtime.observe`)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

from gateway.runtime.service import Service
from gateway.runtime.sftp_pull import read_states as read_channel_states
from gateway.runtime.state import ServiceView, StateFile
from gateway.settings import Deployment
from gateway.store.store import Store

if TYPE_CHECKING:
    from gateway.runtime.observe import HealthServer

__all__ = ["Observers"]

log = logging.getLogger("gateway.run")


@dataclass
class Observers:
    """The running observers; :meth:`stop` stops them all."""

    state: StateFile | None = None
    server: HealthServer | None = None
    store: Store | None = None

    @classmethod
    def start(
        cls, service: Service, deployment: Deployment, url: str, host: str, port: int | None, *, state: bool
    ) -> Observers:
        """Start the state file (``state``) and the metrics server (``port`` given). The loop counts as stuck
        after twice the lease (a file processed longer than its lease is taken over anyway), a minute at least."""
        cfg = deployment.settings.processing
        processor = service.processor

        def busy() -> float | None:
            return time.monotonic() - processor.renewed_at if processor.renewed_at else None

        stale = max(60.0, 2 * cfg.lease_seconds)
        inbox = service.inbox
        run_folder = deployment.path("run")
        view = ServiceView(
            service.worker,
            service.beats,
            service.deliverer.paused,
            stale,
            busy,
            lambda: len(dict(inbox.pending)),
            lambda: read_channel_states(run_folder),
            service.store.database.write_totals,
        )
        out = cls()
        if port is not None:
            from gateway.runtime.observe import HealthServer, LedgerMetrics  # prometheus_client: only when asked

            out.store = Store(url)  # its own pool: a scrape never waits behind the service, nor is cut with it
            try:
                out.server = HealthServer(host, port, LedgerMetrics(out.store, view), view, out.store).start()
            except OSError as exc:
                out.store.close()
                raise click.UsageError(f"--metrics-port {port}: cannot listen on {host}:{port}: {exc}") from exc
            url = f"http://{host}:{out.server.port}"
            log.info("metrics on %s/metrics, health on %s/healthz", url, url)
        if state:
            extra = {"metrics": f"http://{host}:{out.server.port}/metrics"} if out.server else {}
            out.state = StateFile(deployment.path("run"), view, extra=extra).start()
        return out

    def stop(self) -> None:
        if self.state is not None:
            self.state.stop()
        if self.server is not None:
            self.server.stop()
        if self.store is not None:
            self.store.close()
