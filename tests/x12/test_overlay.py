"""Partner implementation-guide overlays narrow the base definition."""

from __future__ import annotations

import pytest
from conftest import PO_850, interchange

from gateway.errors import DefinitionError
from gateway.x12.schema.catalog import Catalog
from gateway.x12.validate.validator import Validator

OVERLAY = """
overlay: acme-850
set: "850"
version: "004010"
segments:
  PER: {req: M}
  TD5: {usage: never}
elements:
  PO103: {codes: [EA, BX]}
  REF02: {max: 5}
  N1/N104: {req: M}
"""


def validator_with(catalog: Catalog, text: str) -> Validator:
    definition = catalog.with_overlay(text, "partners/acme/850.overlay.yaml")

    def resolve(version: str, set_id: str, sender: str) -> object:
        if (version, set_id) == ("004010", "850"):
            return definition
        return catalog.definition(version, set_id)

    return Validator(catalog, resolver=resolve)  # type: ignore[arg-type]


def test_overlay_tightens(catalog: Catalog) -> None:
    v = validator_with(catalog, OVERLAY)
    report = v.validate(interchange([[*PO_850[:2], "TD5**2*FDEG", *PO_850[2:]]]))
    codes = {f.code: f for f in report.sets()[0].findings}
    assert "X12-V110" in codes and codes["X12-V110"].location.segment_id == "PER"
    assert "X12-V111" in codes  # TD5 never sent
    assert "X12-V222" not in codes
    po103 = [f for f in report.sets()[0].findings if f.code == "X12-V207"]
    assert po103 and po103[0].value == "CA"
    assert report.sets()[0].definition == "004010/850+acme-850"
    # the base definition is untouched
    assert Validator(catalog).validate(interchange([PO_850])).valid


def test_overlay_999_codes(catalog: Catalog) -> None:
    from datetime import datetime

    from gateway.x12.ack.build import build_acks

    v = validator_with(catalog, OVERLAY)
    report = v.validate(interchange([PO_850], version="004010"))
    out = build_acks(report.interchanges[0], lambda k: 1, datetime(2026, 1, 1))
    assert out is not None and b"AK3*PER" in out


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        (OVERLAY.replace("PER: {req: M}", "PRE: {req: M}"), "did you mean"),
        (OVERLAY.replace("REF02: {max: 5}", "REF02: {max: 500}"), "wider than the standard"),
        (OVERLAY.replace("PO103: {codes: [EA, BX]}", "PO199: {codes: [EA]}"), "has"),
        (OVERLAY.replace("segments:", "segmentz:"), "segmentz"),
    ],
)
def test_bad_overlays_fail_clearly(catalog: Catalog, text: str, hint: str) -> None:
    with pytest.raises(DefinitionError) as err:
        catalog.with_overlay(text, "acme.yaml")
    assert hint in str(err.value) and "acme.yaml" in str(err.value)
