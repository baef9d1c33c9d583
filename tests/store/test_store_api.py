"""The public surface of ``gateway.store``: exports, error classes, URL handling."""

from __future__ import annotations

import click
import pytest

import gateway.store
from gateway.cli.db import db
from gateway.errors import GatewayError
from gateway.store import (
    ArchiveError,
    SchemaError,
    Store,
    StoreError,
    StoreUnavailableError,
    StoreValueError,
)
from gateway.store import errors as store_errors


def test_public_api_is_pinned() -> None:
    assert sorted(gateway.store.__all__) == [
        "Archive",
        "ArchiveError",
        "BlobCorruptError",
        "BlobNotFoundError",
        "CONTROL_NUMBER_MAX",
        "Clock",
        "DEFAULT_URL",
        "DedupeKind",
        "DedupeRow",
        "DocumentRow",
        "DocumentStatus",
        "EntityKind",
        "EnvelopeStatus",
        "EventAction",
        "EventRow",
        "ExpectedAck",
        "FILE_FINAL",
        "FILE_TRANSITIONS",
        "FileFormat",
        "FileRow",
        "FileStatus",
        "FileTree",
        "GroupNode",
        "GroupRow",
        "InterchangeNode",
        "InterchangeRow",
        "InvalidDigestError",
        "LeaseError",
        "NotFoundError",
        "OutboundRow",
        "OutboundStatus",
        "SchemaError",
        "SetNode",
        "SetRow",
        "SetStatus",
        "Store",
        "StoreError",
        "StoreUnavailableError",
        "StoreValueError",
        "TransitionError",
        "utc_now",
    ]
    for name in gateway.store.__all__:
        assert hasattr(gateway.store, name), name


def test_errors_have_distinct_codes_under_gateway_error() -> None:
    classes = [
        obj
        for obj in vars(store_errors).values()
        if isinstance(obj, type) and issubclass(obj, StoreError) and obj.__module__ == store_errors.__name__
    ]
    codes = [cls("x").code for cls in classes]
    assert len(classes) == 11 and len(set(codes)) == len(codes)
    assert all(code.startswith("STORE-") for code in codes)
    assert all(issubclass(cls, GatewayError) for cls in classes)
    # One classification: the runtime and the store agree (a disk failure may pass; a missing blob will not).
    assert StoreUnavailableError.transient and not StoreError.transient and ArchiveError.transient
    assert not store_errors.BlobNotFoundError.transient and not store_errors.BlobCorruptError.transient
    assert str(SchemaError("run it")) == "[STORE-003] run it"


def test_urls() -> None:
    with pytest.raises(StoreValueError, match="unsupported database 'mysql'"):
        Store("mysql://root@localhost/gw")
    with pytest.raises(StoreValueError, match="not a database URL"):
        Store("not a url")
    store = Store("postgresql://postgres:secret@127.0.0.1:1/none")
    assert store.dialect == "postgresql" and "secret" not in repr(store)
    assert store.url.startswith("postgresql+psycopg://")


def test_an_unreachable_database_is_a_transient_error() -> None:
    with (
        Store("postgresql://postgres@127.0.0.1:1/none?connect_timeout=2") as store,
        pytest.raises(StoreUnavailableError) as info,
    ):
        store.list_files()
    assert info.value.transient and info.value.code == "STORE-002"
    assert isinstance(info.value.__cause__, Exception)


def test_db_is_a_click_group_for_the_main_command() -> None:
    assert isinstance(db, click.Group)
    assert sorted(db.commands) == ["current", "upgrade"]
