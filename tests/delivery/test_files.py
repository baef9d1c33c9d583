"""The ``files`` destination: templated names, temp-then-rename, identical bytes not rewritten."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.components import BuildContext, build_destinations, default_registry
from gateway.delivery.base import Delivered, Payload, RetryLater
from gateway.delivery.files import FilesConfig, FilesDestination
from gateway.errors import ConfigError


def payload(n: int = 1, data: bytes = b'{"a":1}', partner: str | None = "medsupply", **kw: object) -> Payload:
    values: dict[str, object] = {
        "kind": "document",
        "doc_type": "invoice",
        "partner_id": partner,
        "correlation_id": f"c-{n}",
        "idempotency_key": f"k-{n}",
        "delivery_id": n,
        "file_id": 7,
        "position": n,
        "data": data,
    }
    values.update(kw)
    return Payload(**values)  # type: ignore[arg-type]


def test_writes_under_the_template_and_leaves_no_temporaries(tmp_path: Path) -> None:
    dest = FilesDestination("out", tmp_path, "{partner}/{doc_type}-{file_id}-{position}.json")
    outcomes = dest.deliver_batch([payload(1), payload(2, b"{}")])
    assert all(isinstance(o, Delivered) for o in outcomes)
    assert (tmp_path / "medsupply" / "invoice-7-1.json").read_bytes() == b'{"a":1}'
    assert (tmp_path / "medsupply" / "invoice-7-2.json").read_bytes() == b"{}"
    assert not any((tmp_path / ".tmp").iterdir())


def test_identical_bytes_are_not_rewritten_and_different_ones_replace(tmp_path: Path) -> None:
    dest = FilesDestination("out", tmp_path, "{partner}/{position}.json")
    dest.deliver(payload(1))
    target = tmp_path / "medsupply" / "1.json"
    inode = target.stat().st_ino
    again = dest.deliver(payload(1))
    assert isinstance(again, Delivered) and again.response.get("unchanged") is True
    assert target.stat().st_ino == inode, "an identical redelivery rewrote the file"
    changed = dest.deliver(payload(1, b'{"a":2}'))
    assert isinstance(changed, Delivered) and "unchanged" not in changed.response
    assert target.read_bytes() == b'{"a":2}'


def test_values_cannot_escape_the_folder(tmp_path: Path) -> None:
    dest = FilesDestination("out", tmp_path / "box", "{partner}/{control}.x12")
    dest.deliver(payload(1, b"ISA", partner="../../etc", control_number="../x"))
    written = [p for p in (tmp_path / "box").rglob("*") if p.is_file()]
    assert len(written) == 1 and (tmp_path / "box") in written[0].parents


@pytest.mark.parametrize("batch", [False, True], ids=["one-by-one", "batch"])
def test_a_symbolic_link_is_followed_and_may_not_lead_out_of_the_folder(tmp_path: Path, batch: bool) -> None:
    """A batch resolves each subfolder once and checks each file's own name; the result is that of resolving
    every path in full: a link to a folder inside is followed, a subfolder or a file name that is a link to
    somewhere outside is refused (CFG-031)."""
    box, outside = tmp_path / "box", tmp_path / "outside"
    (box / "real").mkdir(parents=True)
    outside.mkdir()
    (box / "inside").symlink_to(box / "real")
    (box / "away").symlink_to(outside)
    (box / "real" / "2.json").symlink_to(outside / "2.json")
    dest = FilesDestination("out", box, "{partner}/{position}.json")

    def where(*payloads: Payload) -> list[Path]:
        if not batch:
            return [dest.target(p) for p in payloads]
        root, folders = box.resolve(), {}
        return [dest.target(p, root, folders) for p in payloads]

    assert where(payload(1, partner="inside"), payload(3, partner="inside")) == [
        box.resolve() / "real" / "1.json",
        box.resolve() / "real" / "3.json",
    ]
    for leaving in (payload(1, partner="away"), payload(2, partner="real"), payload(2, partner="inside")):
        with pytest.raises(ConfigError) as caught:
            where(payload(1, partner="inside"), leaving)
        assert caught.value.code == "CFG-031"
    assert not any(outside.iterdir())
    # Dots in the template and an empty value may render "..": refused, not taken for a file name (review).
    dotted = FilesDestination("out", box, "{partner}/.{position:.0}.")
    with pytest.raises(ConfigError, match="leaves"):
        dotted.target(payload(1, partner="real"), *((box.resolve(), {}) if batch else ()))


@pytest.mark.parametrize("batch", [False, True], ids=["one-by-one", "batch"])
def test_a_field_inside_a_format_spec_is_filled(tmp_path: Path, batch: bool) -> None:
    dest = FilesDestination("out", tmp_path, "{partner:>{file_id}}/{position}.json")
    where = dest.target(payload(1, partner="ab"), *((tmp_path.resolve(), {}) if batch else ()))
    assert where == tmp_path.resolve() / "     ab" / "1.json"


def test_an_unwritable_folder_is_a_retry_not_an_error(tmp_path: Path) -> None:
    blocker = tmp_path / "box"
    blocker.write_text("a file where the folder should be")
    outcome = FilesDestination("out", blocker, "{position}.json").deliver(payload())
    assert isinstance(outcome, RetryLater) and str(blocker) in outcome.reason


@pytest.mark.parametrize(
    ("name", "why"),
    [("{partner}/{nope}.json", "unknown field"), ("/abs/{position}", "inside the folder"), ("../{position}", "inside")],
)
def test_bad_templates_are_refused_with_the_reason(name: str, why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        FilesConfig(name=name)


def test_unknown_keys_are_refused() -> None:
    with pytest.raises(ValidationError, match="extra"):
        FilesConfig.model_validate({"type": "files", "folder": "x", "colour": "blue"})


def test_the_built_in_destinations_exist_and_can_be_redefined(tmp_path: Path) -> None:
    built, _ = build_destinations({}, default_registry(), BuildContext(tmp_path))
    assert set(built) == {"canonical-json", "partner-outbox"}
    redefined, _ = build_destinations(
        {"canonical-json": {"type": "files", "folder": "erp/in", "retry": {"delays": [1, 5]}}},
        default_registry(),
        BuildContext(tmp_path),
    )
    assert isinstance(redefined["canonical-json"], FilesDestination)
    assert redefined["canonical-json"].folder == tmp_path / "erp/in"


@pytest.mark.parametrize(
    ("doc_type", "document", "number"),
    [
        ("purchase_order", {"po_number": "4500012390", "purpose": "change"}, "4500012390"),
        ("po_acknowledgment", {"po_number": "4500012390"}, "4500012390"),
        ("ship_notice", {"shipment_id": "ASN/77001", "purpose": "replace"}, "ASN-77001"),
        ("invoice", {"invoice_number": "INV-9", "purpose": "replace"}, "INV-9"),
        ("invoice", {"invoice_number": "INV-9", "credit_memo": True}, "INV-9-credit"),
        ("997", None, ""),
    ],
)
def test_number_is_the_documents_own_number_whatever_its_purpose(
    tmp_path: Path, doc_type: str, document: dict[str, object] | None, number: str
) -> None:
    # `{business_key}` carries the type and the purpose (856-ASN-77001-replace): a replacement notice would go to
    # another URL or file than the original. `{number}` stays the same for a document and its corrections.
    values = {"doc_type": doc_type, "document": document, "data": None if document else b"ISA*"}
    assert payload(1, **values).names()["number"] == number
    dest = FilesDestination("out", tmp_path, "{doc_type}-{number}.{ext}")
    if document is not None:
        outcome = dest.deliver(payload(1, **values))
        assert isinstance(outcome, Delivered)
        assert (tmp_path / f"{doc_type}-{number}.json").is_file()
