"""Regressions for the review of the runtime and the translator (each test names the finding)."""

from __future__ import annotations

from pathlib import Path

from runtimekit import (  # noqa: F401 (pytest fixtures)
    Home,
    case,
    make_home,
    pg_admin_fixture,
    pg_url_fixture,
    store_url_fixture,
    workspace_fixture,
)

from gateway.store import Store
from gateway.workspace import Workspace


def segments(data: bytes) -> list[str]:
    return [s.strip() for s in data.decode().split("~") if s.strip()]


def join(segs: list[str]) -> bytes:
    return ("~\n".join(segs) + "~\n").encode()


def tree_of(home: Home, name: str):  # type: ignore[no-untyped-def]
    with Store(home.store_url) as store:
        row = next(f for f in store.list_files(limit=100) if f.name == name)
        return row, store.file_tree(row.id)


def test_an_ack_goes_to_the_groups_whose_policy_asks(store_url: str, tmp_path: Path, workspace: Workspace) -> None:
    """orthosupply: ack always, but its 810s only on error. One interchange with an 856 group and a clean
    810 group gets a 999 for the 856 group alone (it used to get none: the 810 setting won for all)."""
    asn, inv = segments(case("orthosupply", "856-implants-tare.edi")), segments(case("orthosupply", "810-implants.edi"))
    isa = asn[0]
    body = [s for s in asn[1:] if not s.startswith("IEA")] + [s for s in inv[1:] if not s.startswith("IEA")]
    data = join([isa, *body, f"IEA|2|{isa.split('|')[13]}"])
    home = make_home(tmp_path, store_url)
    home.drop("mixed.edi", data, "orthosupply")
    home.service(workspace).run_once()
    row, _ = tree_of(home, "mixed.edi")
    assert row.status == "processed"
    acks = home.acks()
    assert len(acks) == 1
    (fa,) = next(iter(acks.values()))
    assert fa.kind == "999" and fa.group_control == "521"


def test_sets_of_a_rejected_interchange_are_not_passed_on(store_url: str, tmp_path: Path, workspace: Workspace) -> None:
    """An IEA whose control number does not match ISA13: TA1 rejects it, so its invoice is not delivered."""
    segs = segments(case("medsupply", "810-invoice.edi"))
    segs[-1] = "IEA*1*000000999"
    home = make_home(tmp_path, store_url)
    home.drop("bad-iea.edi", join(segs), "medsupply")
    home.service(workspace).run_once()
    row, tree = tree_of(home, "bad-iea.edi")
    (ic,) = tree.interchanges
    assert ic.row.status == "rejected"
    statuses = [s.row.status for g in ic.groups for s in g.sets]
    assert statuses == ["rejected"] and row.status == "failed"
    assert home.canonical() == {}
    assert all(not s.documents for g in ic.groups for s in g.sets)
    assert [name.split("/")[1].split("-")[0] for name in home.acks()] in ([], ["TA1"])


def test_a_loose_document_is_recorded_once_in_a_file_of_two_interchanges(
    store_url: str, tmp_path: Path, workspace: Workspace
) -> None:
    """Garbage between two interchanges gives one failed document row, not one per later batch."""
    first = case("medsupply", "810-invoice.edi")
    second = first.replace(b"000000413", b"000000414").replace(b"INV-0042377", b"INV-0042378")
    home = make_home(tmp_path, store_url)
    home.drop("two.edi", first + b"HELLO THERE~\n" + second, "medsupply")
    home.service(workspace).run_once()
    _, tree = tree_of(home, "two.edi")
    assert len(tree.interchanges) == 2
    assert len(tree.documents) == 1 and tree.documents[0].status == "failed"
    assert len(home.canonical()) == 2
