"""An HL hierarchy nested deeper than any real one is refused with a located error (MAP-410), before a map
walks it: a million nested levels must not cost memory and recursion."""

from __future__ import annotations

import pytest
from conftest import REPO

from gateway.mapping import x12scope
from gateway.mapping.x12scope import MAX_HL_DEPTH, HierarchyTooDeepError, build_scopes
from gateway.translate import FileInput, Translation
from gateway.workspace import load_workspace
from gateway.x12.schema.catalog import Catalog
from gateway.x12.sets import iter_transaction_sets

ISA = b"ISA*00*          *00*          *ZZ*MEDSUPPLY      *ZZ*MERCYHOSP      *261123*0930*U*00401*000000001*0*P*>~"


def chain(depth: int) -> bytes:
    """An 856 whose HLs each sit under the one before: ``depth`` levels."""
    hls = b"".join(f"HL*{n}*{n - 1 if n > 1 else ''}*{'S' if n == 1 else 'I'}~".encode() for n in range(1, depth + 1))
    body = b"ST*856*0001~BSN*00*S1*20261123*1000~" + hls + f"SE*{depth + 3}*0001~".encode()
    return ISA + b"GS*SH*MEDSUPPLY*MERCYHOSP*20261123*0930*1*X*004010~" + body + b"GE*1*1~IEA*1*000000001~"


def scopes(catalog: Catalog, data: bytes) -> x12scope.X12Scope:
    (ts,) = list(iter_transaction_sets(data))
    return build_scopes(ts.segments, catalog.definition("004010", "856"))


def test_a_chain_at_the_limit_nests(catalog: Catalog) -> None:
    node = scopes(catalog, chain(MAX_HL_DEPTH)).loops["HL"][0]
    depth = 1
    while node.loops.get("HL"):
        (node,) = node.loops["HL"]
        depth += 1
    assert depth == MAX_HL_DEPTH


def test_one_level_more_is_refused_on_the_hl_past_the_limit(catalog: Catalog) -> None:
    with pytest.raises(HierarchyTooDeepError) as caught:
        scopes(catalog, chain(MAX_HL_DEPTH + 1))
    exc = caught.value
    assert exc.code == "MAP-410"
    assert (exc.location.segment_id, exc.location.element) == ("HL", 2)
    assert exc.location.interchange_index == MAX_HL_DEPTH + 5  # ISA is 1, then GS, ST, BSN and the HLs
    assert f"HL '{MAX_HL_DEPTH + 1}'" in exc.message


def test_translate_reports_it_located_in_the_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """A valid 856 (S > O > P > I) under a limit of 2 levels: the set fails with MAP-410 on its third HL."""
    monkeypatch.setattr(x12scope, "MAX_HL_DEPTH", 2)
    workspace = load_workspace(REPO)
    data = (workspace.root / "partners/medsupply/cases/856-xref-and-uom.edi").read_bytes()
    (result,) = [
        r
        for r in workspace.translator().translate(data, FileInput(name="deep.edi", partner_id="medsupply"))
        if isinstance(r, Translation)
    ]
    assert not result.ok
    (error,) = result.errors
    loc = error.location
    assert (error.code, loc.file, loc.partner, loc.segment_id, loc.element) == (
        "MAP-410",
        "deep.edi",
        "medsupply",
        "HL",
        2,
    )
    assert loc.transaction_set is not None and loc.segment_index is not None and loc.segment_index > 3


def test_a_set_of_more_segments_than_one_set_may_have_is_not_translated() -> None:
    """Checked per buffer while reading (the set is not kept whole) and at the set's end: MAP-411 on its ST."""
    translator = load_workspace(REPO).translator()
    data = (REPO / "partners/medsupply/cases/856-xref-and-uom.edi").read_bytes()
    info = FileInput(name="big-set.edi", partner_id="medsupply")
    (whole,) = [r for r in translator.translate(data, info) if isinstance(r, Translation)]
    assert whole.ok
    translator.max_set_segments = 10
    (result,) = [r for r in translator.translate(data, info) if isinstance(r, Translation)]
    (error,) = result.errors
    assert (error.code, error.location.segment_id, error.location.segment_index) == ("MAP-411", "ST", 1)
    assert "more than the 10 one set may have" in error.message
