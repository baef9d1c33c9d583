"""The packaged definitions load, compile, and accept the shipped samples."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPO

from gateway.errors import DefinitionError
from gateway.resources import definition_texts
from gateway.x12.schema.catalog import Catalog, resolve_version
from gateway.x12.validate.validator import Validator


def test_all_sets_compile(catalog: Catalog) -> None:
    catalog.check()
    assert catalog.versions == ["004010", "005010"]
    for version in catalog.versions:
        assert {"850", "855", "856", "810", "997"} <= set(catalog.set_ids(version))
    assert "999" in catalog.set_ids("005010")
    for seg in ("ISA", "IEA", "GS", "GE", "ST", "SE", "TA1"):
        assert catalog.segment("004010", seg) is not None
    hl = catalog.definition("004010", "856")
    assert hl is not None


def test_version_aliases() -> None:
    assert resolve_version("004010VICS") == "004010"
    assert resolve_version("004010UCS") == "004010"
    assert resolve_version("005010X231A1") == "005010"


def test_broken_definition_is_a_clear_error() -> None:
    texts = definition_texts()
    texts["004010/sets/850.yaml"] = texts["004010/sets/850.yaml"].replace("seg: BEG", "seg: BGE", 1)
    with pytest.raises(DefinitionError) as err:
        Catalog.from_texts(texts).check()
    assert "BGE" in str(err.value) and "850" in str(err.value)
    texts = definition_texts()
    texts["004010/segments.yaml"] = texts["004010/segments.yaml"] + "\n  oops: [\n"
    with pytest.raises(DefinitionError) as err2:
        Catalog.from_texts(texts)
    assert "004010/segments.yaml" in str(err2.value)


@pytest.mark.parametrize("path", sorted((REPO / "samples" / "x12").glob("*.edi")), ids=lambda p: p.name)
def test_samples_are_valid(catalog: Catalog, path: Path) -> None:
    report = Validator(catalog).validate(path.read_bytes())
    assert report.valid, [str(f) for s in report.sets() for f in s.findings]


def test_bad_sample_is_invalid(catalog: Catalog) -> None:
    report = Validator(catalog).validate((REPO / "samples" / "x12" / "bad" / "855-errors.edi").read_bytes())
    assert not report.valid
