"""The store's errors, under :class:`gateway.errors.GatewayError`.

::

    GatewayError
    └── StoreError                    STORE-001  a database statement failed (a bug or a broken database)  FAIL
        ├── StoreUnavailableError     STORE-002  cannot connect, or the database stayed locked           RETRY
        ├── SchemaError               STORE-003  the database lags the migrations (``gateway db upgrade``) RETRY
        ├── NotFoundError             STORE-004  no row with that id
        ├── LeaseError                STORE-005  the caller does not hold the file's lease (another worker took it over)
        ├── TransitionError           STORE-006  a status change the state machine does not allow
        ├── StoreValueError           STORE-007  an argument the store cannot take (unknown status, naive datetime...)
        └── ArchiveError              STORE-010  the archive could not read or write a blob                 RETRY
            ├── InvalidDigestError    STORE-011  not a lowercase 64-hex sha256 (never used as a path)        FAIL
            ├── BlobNotFoundError     STORE-012  no blob with that digest                                   FAIL
            └── BlobCorruptError      STORE-013  a blob's bytes no longer hash to its name                  FAIL

Database driver errors are translated at the boundary (``raise ... from exc``),
so callers only ever see these types. ``disposition`` (see :mod:`gateway.errors`) says what the
caller does; ``transient`` is the same answer as a boolean (``disposition is RETRY``). A schema
behind the code is RETRY for a running worker (the file is released while an operator runs
``gateway db upgrade``); the CLI reports it as a usage error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from gateway.errors import Disposition, GatewayError


@dataclass(eq=False)
class StoreError(GatewayError):
    """A database statement failed; not expected to succeed if retried as is."""

    code: str = "STORE-001"
    transient: ClassVar[bool] = False  # kept equal to ``disposition is RETRY`` by __init_subclass__

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.transient = cls.disposition is Disposition.RETRY


@dataclass(eq=False)
class StoreUnavailableError(StoreError):
    """The database cannot be reached or stayed locked past the busy timeout: retry later."""

    code: str = "STORE-002"
    disposition: ClassVar[Disposition] = Disposition.RETRY


@dataclass(eq=False)
class SchemaError(StoreError):
    """The database schema is not the one this code expects."""

    code: str = "STORE-003"
    disposition: ClassVar[Disposition] = Disposition.RETRY


@dataclass(eq=False)
class NotFoundError(StoreError):
    """No row with the given id."""

    code: str = "STORE-004"


@dataclass(eq=False)
class LeaseError(StoreError):
    """The caller does not hold the lease on the file it tries to change."""

    code: str = "STORE-005"


@dataclass(eq=False)
class TransitionError(StoreError):
    """The status change is not allowed from the entity's current status."""

    code: str = "STORE-006"


@dataclass(eq=False)
class StoreValueError(StoreError):
    """An argument value the store cannot take."""

    code: str = "STORE-007"


@dataclass(eq=False)
class ArchiveError(StoreError):
    """Reading or writing the content-addressed archive failed."""

    code: str = "STORE-010"
    disposition: ClassVar[Disposition] = Disposition.RETRY


@dataclass(eq=False)
class InvalidDigestError(ArchiveError):
    """A digest that is not 64 lowercase hex characters; it is never turned into a path."""

    code: str = "STORE-011"
    disposition: ClassVar[Disposition] = Disposition.FAIL


@dataclass(eq=False)
class BlobNotFoundError(ArchiveError):
    """The archive holds no blob with that digest."""

    code: str = "STORE-012"
    disposition: ClassVar[Disposition] = Disposition.FAIL


@dataclass(eq=False)
class BlobCorruptError(ArchiveError):
    """A blob's content does not hash to its name (tampering or disk corruption)."""

    code: str = "STORE-013"
    disposition: ClassVar[Disposition] = Disposition.FAIL
