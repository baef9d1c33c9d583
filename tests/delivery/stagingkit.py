"""Fixtures for the staging loader's tests: one empty database per test on each backend.

Not a ``conftest.py`` (see tests/store/storekit.py for why); test modules import what they use.
SQLite is a fresh file; PostgreSQL a fresh schema of db ``test`` reached through ``search_path``;
MariaDB a fresh table prefix in db ``test``, its tables dropped afterwards, so runs repeat and
never meet other tests' tables. A server that is absent skips its cases (fails under CI=true).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import MYSQL_URL, REPO, mysql_admin_fixture, pg_admin_fixture, schema_url  # noqa: F401 - fixtures
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.pool import NullPool

from gateway.delivery.base import Payload
from gateway.delivery.staging import StagingConfig, StagingDestination

BACKENDS = ["sqlite", "postgresql", "mariadb"]


@dataclass(frozen=True)
class Target:
    """Where one test's staging tables are."""

    backend: str
    url: str
    prefix: str

    def config(self, **more: Any) -> StagingConfig:
        """A loader config for this target (``upgrade: true`` unless told otherwise)."""
        return StagingConfig(url=self.url, **{"table_prefix": self.prefix, "upgrade": True, **more})

    def engine(self) -> Engine:
        """A plain engine to look at the tables with."""
        return create_engine(self.url, poolclass=NullPool)


@pytest.fixture(name="target", params=BACKENDS)
def target_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    """An empty database on each backend."""
    if request.param == "sqlite":
        yield Target("sqlite", f"sqlite:///{tmp_path / 'erp.sqlite'}", "stg_")
        return
    if request.param == "postgresql":
        admin: Engine = request.getfixturevalue("pg_admin")
        schema = f"gw_stg_{uuid.uuid4().hex[:12]}"
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            yield Target("postgresql", schema_url(schema), "stg_")
        finally:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        return
    admin = request.getfixturevalue("mysql_admin")
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    try:
        yield Target("mariadb", MYSQL_URL, prefix)
    finally:
        drop_prefixed(admin, prefix)


def drop_prefixed(engine: Engine, prefix: str) -> None:
    """Drop every table whose name starts with ``prefix`` (MariaDB: foreign keys off meanwhile)."""
    with engine.begin() as conn:
        names = [t for t in inspect(conn).get_table_names() if t.startswith(prefix)]
        if names:
            conn.execute(text("SET FOREIGN_KEY_CHECKS = 0"))
            conn.execute(text("DROP TABLE " + ", ".join(f"`{n}`" for n in names)))
            conn.execute(text("SET FOREIGN_KEY_CHECKS = 1"))


@pytest.fixture(name="loader")
def loader_fixture(target: Target) -> Iterator[StagingDestination]:
    """A loader on the target, its tables migrated."""
    destination = StagingDestination("erp", target.config())
    try:
        yield destination
    finally:
        destination.close()


def golden(path: str, index: int = 0) -> dict[str, Any]:
    """A canonical document from a partner's golden case (``partners/<partner>/cases/<file>``)."""
    docs = json.loads((REPO / "partners" / path).read_text("utf-8"))
    return docs[index]


def golden_documents() -> list[tuple[str, dict[str, Any]]]:
    """Every canonical document of the sample partners' golden cases, with its partner."""
    out = []
    for path in sorted((REPO / "partners").glob("*/cases/*.json")):
        for doc in json.loads(path.read_text("utf-8")):
            if "document_type" in doc:
                out.append((path.parent.parent.name, doc))
    return out


_next = iter(range(1, 1_000_000))


def payload(doc: dict[str, Any], key: str | None = None, partner: str | None = None, **more: Any) -> Payload:
    """A delivery of ``doc`` (a new idempotency key unless ``key`` is given)."""
    n = next(_next)
    values: dict[str, Any] = {
        "kind": "document",
        "doc_type": doc["document_type"],
        "partner_id": partner or doc.get("provenance", {}).get("partner") or "acme",
        "correlation_id": f"corr-{n}",
        "idempotency_key": key or f"idem-{uuid.uuid4().hex}",
        "delivery_id": n,
        "document_id": n,
        "document": doc,
    }
    values.update(more)
    return Payload(**values)
