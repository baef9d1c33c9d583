"""The store's errors, under :class:`gateway.errors.GatewayError`.

::

    GatewayError
    └── StoreError                    STORE-001  a database statement failed (a bug or a broken database)
        ├── StoreUnavailableError     STORE-002  transient: cannot connect, or the database stayed locked; retry
        ├── SchemaError               STORE-003  the database lags the code's migrations: run ``gateway db upgrade``
        ├── NotFoundError             STORE-004  no row with that id
        ├── LeaseError                STORE-005  the caller does not hold the file's lease (another worker took it over)
        ├── TransitionError           STORE-006  a status change the state machine does not allow
        ├── StoreValueError           STORE-007  an argument the store cannot take (unknown status, naive datetime...)
        └── ArchiveError              STORE-010  the archive could not read or write a blob
            ├── InvalidDigestError    STORE-011  not a lowercase 64-hex sha256 (never used as a path)
            ├── BlobNotFoundError     STORE-012  no blob with that digest
            └── BlobCorruptError      STORE-013  a blob's bytes no longer hash to its name

Database driver errors are translated at the boundary (``raise ... from exc``),
so callers only ever see these types. ``transient`` says whether retrying the
same call later may succeed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from gateway.errors import GatewayError


@dataclass(eq=False)
class StoreError(GatewayError):
    """A database statement failed; not expected to succeed if retried as is."""

    code: str = "STORE-001"
    transient: ClassVar[bool] = False


@dataclass(eq=False)
class StoreUnavailableError(StoreError):
    """The database cannot be reached or stayed locked past the busy timeout: retry later."""

    code: str = "STORE-002"
    transient: ClassVar[bool] = True


@dataclass(eq=False)
class SchemaError(StoreError):
    """The database schema is not the one this code expects."""

    code: str = "STORE-003"


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


@dataclass(eq=False)
class InvalidDigestError(ArchiveError):
    """A digest that is not 64 lowercase hex characters; it is never turned into a path."""

    code: str = "STORE-011"


@dataclass(eq=False)
class BlobNotFoundError(ArchiveError):
    """The archive holds no blob with that digest."""

    code: str = "STORE-012"


@dataclass(eq=False)
class BlobCorruptError(ArchiveError):
    """A blob's content does not hash to its name (tampering or disk corruption)."""

    code: str = "STORE-013"
