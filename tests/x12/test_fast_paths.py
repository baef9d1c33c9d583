"""The validator's fast paths (step table, loop repeat, generated checks) agree with the general ones.

Each file is validated twice: as shipped, and with every fast path switched off
(empty step tables, no loop-repeat shortcut, generated checks that always say
"look closer"); the findings must be identical.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CORPUS, REPO

from gateway.resources import load_catalog
from gateway.x12.schema.catalog import Catalog
from gateway.x12.schema.compiled import LoopNode
from gateway.x12.validate.validator import Validator

FILES = sorted((REPO / "samples" / "x12").rglob("*.edi"))
if (CORPUS / "x12").is_dir():
    FILES += sorted(p for p in (CORPUS / "x12").rglob("*") if p.is_file())


def _slow_catalog() -> Catalog:
    catalog = load_catalog()
    for version in catalog.versions:
        for set_id in catalog.set_ids(version):
            definition = catalog.definition(version, set_id)
            assert definition is not None
            stack = [definition.root]
            while stack:
                loop = stack.pop()
                loop.step = [{} for _ in loop.step]
                loop.repeat_after = None
                stack.extend(c for c in loop.children if isinstance(c, LoopNode))
    return catalog


def _findings(validator: Validator, path: Path) -> list[tuple[object, ...]]:
    report = validator.validate(path.read_bytes())
    out = []
    for s in report.sets():
        for f in s.findings:
            loc = f.location
            out.append(
                (
                    s.header.control_number,
                    f.code,
                    loc.segment_id,
                    loc.segment_index,
                    loc.element,
                    loc.component,
                    loc.byte_offset,
                    f.value,
                )
            )
    return out


@pytest.fixture(scope="module")
def validators() -> tuple[Validator, Validator]:
    return Validator(load_catalog()), Validator(_slow_catalog(), fast_checks=False)


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fast_and_general_paths_agree(validators: tuple[Validator, Validator], path: Path) -> None:
    fast, slow = validators
    assert _findings(fast, path) == _findings(slow, path)


def test_synthetic_ship_notices_agree(validators: tuple[Validator, Validator], tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(REPO / "bench"))
    from gen_856 import generate

    path = tmp_path / "856.edi"
    generate(str(path), segments=5000)
    fast, slow = validators
    data = path.read_bytes().replace(b"HL*7*3*I", b"HL*7*9*I").replace(b"SN1**8*EA", b"SN1*8*EA")
    path.write_bytes(data)
    assert _findings(fast, path) == _findings(slow, path)
    assert _findings(fast, path)  # the edits are caught
