"""The content-addressed archive: layout, idempotence, atomic writes, read-only blobs, digest checks."""

from __future__ import annotations

import hashlib
import io
import os
import stat
from pathlib import Path

import pytest
from storekit import archive_fixture  # noqa: F401 (pytest fixture)

from gateway.store import (
    Archive,
    ArchiveError,
    BlobCorruptError,
    BlobNotFoundError,
    InvalidDigestError,
)
from gateway.store.archive import CHUNK_SIZE

DATA = b"ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *261123*1200*U*00401*000000905*0*P*>~"


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_put_names_the_blob_by_its_sha256(archive: Archive) -> None:
    sha = archive.put(DATA)
    assert sha == hashlib.sha256(DATA).hexdigest()
    assert archive.path(sha) == archive.root / sha[:2] / sha
    assert archive.read(sha) == DATA
    assert archive.exists(sha)
    assert _files(archive.root) == [archive.path(sha)]  # no temporary file left behind


def test_put_is_idempotent(archive: Archive) -> None:
    sha = archive.put(DATA)
    before = os.stat(archive.path(sha))
    assert archive.put(DATA) == sha
    assert archive.put_stream(io.BytesIO(DATA)) == (sha, len(DATA))
    after = os.stat(archive.path(sha))
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert _files(archive.root) == [archive.path(sha)]


def test_blobs_are_read_only(archive: Archive) -> None:
    sha = archive.put(DATA)
    mode = stat.S_IMODE(os.stat(archive.path(sha)).st_mode)
    assert mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) == 0


def test_put_file_streams_in_chunks(archive: Archive, tmp_path: Path) -> None:
    big = os.urandom(CHUNK_SIZE * 2 + 123)
    source = tmp_path / "big.edi"
    source.write_bytes(big)
    sha, size = archive.put_file(source)
    assert (sha, size) == (hashlib.sha256(big).hexdigest(), len(big))
    assert archive.verify(sha)
    with archive.open(sha) as stream:
        assert stream.read(10) == big[:10]
    assert _files(archive.root) == [archive.path(sha)]  # the streamed temp file in tmp/ is gone


def test_empty_content(archive: Archive) -> None:
    sha = archive.put(b"")
    assert archive.read(sha) == b"" and archive.verify(sha)


@pytest.mark.parametrize(
    "bad",
    [
        "../../etc/passwd",
        "../" + "a" * 61,
        "A" * 64,
        "a" * 63,
        "a" * 65,
        "/" + "a" * 63,
        "a" * 32 + "/" + "a" * 31,
        "g" * 64,
        "",
    ],
)
def test_malformed_digests_are_refused_before_any_path(archive: Archive, bad: str) -> None:
    for call in (archive.path, archive.exists, archive.open, archive.read, archive.verify):
        with pytest.raises(InvalidDigestError) as info:
            call(bad)
        assert info.value.code == "STORE-011"


def test_missing_blob(archive: Archive) -> None:
    missing = "0" * 64
    assert not archive.exists(missing)
    with pytest.raises(BlobNotFoundError):
        archive.read(missing)
    with pytest.raises(BlobNotFoundError):
        archive.verify(missing)


def test_verify_detects_tampering(archive: Archive) -> None:
    sha = archive.put(DATA)
    assert archive.verify(sha)
    path = archive.path(sha)
    path.chmod(0o644)
    path.write_bytes(DATA.replace(b"SENDER", b"EVILCO"))
    assert not archive.verify(sha)
    with pytest.raises(BlobCorruptError):
        archive.read(sha, check=True)


def test_a_failed_rename_leaves_no_blob_and_no_temp_file(archive: Archive, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(ArchiveError) as info:
        archive.put(DATA)
    assert "No space left" in str(info.value)
    with pytest.raises(ArchiveError):
        archive.put_stream(io.BytesIO(DATA))
    assert _files(archive.root) == []
    monkeypatch.undo()
    sha = archive.put(DATA)  # the next attempt succeeds
    assert archive.verify(sha)


def test_unreadable_source(archive: Archive, tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="cannot read"):
        archive.put_file(tmp_path / "missing.edi")
