"""The ERP SQL staging loader: the ``sql`` destination (SQLite, PostgreSQL, MariaDB/MySQL).

Canonical documents land in staging tables of the ERP's own database (``docs/erp-staging.md``
documents them for ERP teams): a header per document key and partner with a version counter and
its history, and child tables for lines, acknowledgment statuses, the ship-notice hierarchy,
charges, taxes, parties, references and dates. The package is small modules, one job each:

- :mod:`.config`: the pydantic settings (phase one, no connection);
- :mod:`.rows`: canonical document to rows (pure);
- :mod:`.schema`, :mod:`.types`: the tables, and the exact decimal every backend agrees on;
- :mod:`.migrate` and ``migrations/``: the tables' own Alembic migrations and version table;
- :mod:`.engine`: connections, timeouts and what a database error means;
- :mod:`.load`: one document inside a transaction (the upsert and version rules);
- :mod:`.batch`: a batch of documents in one transaction, each in a savepoint;
- :mod:`.destination`: the :class:`~gateway.delivery.base.Destination` itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.delivery.registry import Registry
from gateway.delivery.staging.config import StagingConfig

if TYPE_CHECKING:
    from gateway.delivery.staging.destination import StagingDestination

__all__ = ["TYPE", "StagingConfig", "StagingDestination", "register"]

TYPE = "sql"
"""The destination type name in ``gateway.yaml``."""


def __getattr__(name: str) -> Any:
    # The loader (its tables, every backend's types) is imported when first asked for, not by every
    # `gateway run` whose routes never stage anything: ~0.3 s of start-up (docs/performance.md).
    if name == "StagingDestination":
        from gateway.delivery.staging.destination import StagingDestination

        return StagingDestination
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _build(name: str, config: StagingConfig, context: Any) -> StagingDestination:
    # The composition root hands a clock (the loader's timestamps follow it) and the deployment folder
    # (a relative SQLite path is taken from it, as the ledger's is).
    from gateway.delivery.staging.destination import StagingDestination

    return StagingDestination(name, config, clock=getattr(context, "clock", None), home=getattr(context, "home", None))


def register(registry: Registry) -> None:
    """Register the ``sql`` destination on ``registry``."""
    registry.register(
        "destination", TYPE, StagingConfig, _build, "ERP staging tables in SQLite, PostgreSQL or MariaDB/MySQL"
    )
