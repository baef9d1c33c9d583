"""The settings of a ``sql`` destination (the ERP staging loader), checked without connecting.

Example (``gateway.yaml``)::

    destinations:
      erp_staging:
        type: sql
        url: postgresql://gateway_loader@erp-db.example.org:5432/erp
        password: {env: ERP_STAGING_PASSWORD}
        table_prefix: stg_
        upgrade: true

The password never sits in YAML: a URL carrying one is refused, and ``password`` names where it
is kept (:class:`~gateway.delivery.base.SecretRef`); it is merged into the URL when the loader is
built. A relative SQLite path (``sqlite:///var/staging.db``) is taken from the deployment folder,
as the ledger's is, never from the current directory. ``postgresql://`` uses psycopg 3,
``mysql://`` and ``mariadb://`` use PyMySQL (``pip install 'hospital-edi-gateway[mysql]'``);
another driver may be named explicitly.

``gateway config lint`` asks :meth:`StagingConfig.lint` what the build would refuse, without
connecting: a driver that is not installed, a SQLite file that is not there while ``upgrade`` is off.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from gateway.delivery.base import DestinationConfig, SecretRef

__all__ = ["BACKENDS", "StagingConfig", "normalize_url", "resolve_sqlite", "sqlite_file"]

BACKENDS = {"sqlite": None, "postgresql": "psycopg", "mysql": "pymysql", "mariadb": "pymysql"}
"""Supported backends and the driver used when the URL names none."""


def normalize_url(url: str) -> URL:
    """Parse ``url`` and give it its default driver; ValueError for an unsupported one."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ValueError(f"not a database URL: {url!r}") from exc
    backend = parsed.get_backend_name()
    if backend not in BACKENDS:
        raise ValueError(f"unsupported database {backend!r}: use sqlite, postgresql, mysql or mariadb")
    driver = BACKENDS[backend]
    if driver is not None and "+" not in parsed.drivername:
        parsed = parsed.set(drivername=f"{backend}+{driver}")
    if backend in ("mysql", "mariadb") and "charset" not in parsed.query:
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})  # names and descriptions are not all ASCII
    return parsed


def sqlite_file(url: URL) -> Path | None:
    """The file of a SQLite URL (None: another backend, in memory, or a ``file:`` URI)."""
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def resolve_sqlite(url: URL, home: Path | None) -> URL:
    """``url`` with a relative SQLite file taken from ``home`` (the deployment folder); others unchanged."""
    path = sqlite_file(url)
    if home is None or path is None or path.is_absolute():
        return url
    return url.set(database=str(Path(home) / path))


class StagingConfig(DestinationConfig):
    """Where the staging tables are and how to talk to that database."""

    type: Literal["sql"] = "sql"
    url: str = Field(description="SQLAlchemy URL of the ERP's database, without a password.")
    password: SecretRef | None = Field(default=None, description="{env: NAME} or {file: PATH}; merged into url.")
    table_prefix: str = Field(
        default="stg_",
        pattern=r"^[a-z][a-z0-9_]{0,15}$",
        description="Prepended to every table name, e.g. stg_document; lowercase, at most 16 characters.",
    )
    upgrade: bool = Field(
        default=False,
        description="Create or upgrade the staging tables when the loader is built. Off: they must be at "
        "the code's revision already (a DBA ran the migrations), else the gateway refuses to start.",
    )
    pool_size: int = Field(default=5, ge=1, le=100, description="Connections kept open.")
    max_overflow: int = Field(default=5, ge=0, le=100, description="Connections opened past pool_size at peaks.")
    pool_timeout_seconds: float = Field(default=30.0, gt=0, description="Wait for a free pooled connection.")
    connect_timeout_seconds: int = Field(default=10, ge=1, le=300, description="Give up connecting after this.")
    statement_timeout_seconds: int = Field(
        default=60, ge=1, le=3600, description="The server cancels a statement running longer (retried later)."
    )
    lock_timeout_seconds: int = Field(
        default=10, ge=1, le=3600, description="Wait for a row another transaction holds (retried later)."
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parsed = normalize_url(value)
        if parsed.password:
            raise ValueError("the URL carries a password: remove it and set password: {env: NAME}")
        return value

    def engine_url(self, home: Path | None = None) -> URL:
        """The URL to connect with (phase two): driver set, a relative SQLite file under ``home``, the
        password read from its secret."""
        url = resolve_sqlite(normalize_url(self.url), home)
        if self.password is not None:
            url = url.set(password=self.password.value())
        return url

    def lint(self, home: str | None = None) -> list[tuple[tuple[str, ...], str]]:
        """What the build would refuse, with the keys it sits at, found without connecting: the URL's
        driver not installed (or no such SQLAlchemy dialect); a SQLite file that does not exist while
        ``upgrade`` is off (nobody would create the tables). Imports the driver: for lint, not validation."""
        url = resolve_sqlite(normalize_url(self.url), Path(home) if home is not None else None)
        try:
            url.get_dialect().import_dbapi()
        except NoSuchModuleError:
            return [(("url",), f"SQLAlchemy has no dialect {url.drivername!r}: check the URL's scheme")]
        except ImportError as exc:
            hint = _INSTALL.get(url.drivername.partition("+")[2], "install it")
            return [(("url",), f"the {url.drivername} driver is not installed ({exc}): {hint}")]
        path = sqlite_file(url)
        if path is not None and not self.upgrade and not path.is_file():
            return [(("url",), f"SQLite file {path} does not exist, and upgrade is off: create the staging "
                               "tables there (`gateway staging upgrade`) or set upgrade: true")]  # fmt: skip
        return []


_INSTALL = {
    "psycopg": "pip install 'psycopg[binary]'",
    "psycopg2": "pip install psycopg2-binary, or use postgresql+psycopg://",
    "pymysql": "pip install 'hospital-edi-gateway[mysql]'",
    "mysqldb": "pip install mysqlclient, or use mysql+pymysql://",
    "mariadbconnector": "pip install mariadb, or use mariadb+pymysql://",
}
"""How to install the drivers a staging URL may name."""
