"""``gateway render``'s control numbers and input (issue 9).

Every interchange we send a partner draws its ISA13/GS06 from the one persisted per-partner sequence,
the runtime's acks included: a rendered 850 and a 997 never share a number. Without a store the command
refuses, unless ``--test-control N`` asks for a test interchange. It reads what ``gateway translate
--json`` prints, and the shipped sample canonical purchase order.
"""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result
from runtimekit import (  # noqa: F401 (pytest fixtures)
    REPO,
    Home,
    case,
    gateway,
    make_home,
    pg_admin_fixture,
    pg_url_fixture,
    store_url_fixture,
)
from sqlalchemy import create_engine, text

from gateway.cli.main import main
from gateway.store.archive import Archive
from gateway.x12.schema.catalog import Catalog
from gateway.x12.validate.validator import Validator

SAMPLE_PO = REPO / "samples" / "canonical" / "purchase-order.json"
SAMPLE_850 = REPO / "samples" / "x12" / "850-4010-mercy-to-medsupply.edi"


def cli(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=stdin)


def isa13(data: str) -> str:
    return data[90:99]


def home_with_store(tmp_path: Path) -> Home:
    return make_home(tmp_path / "home", f"sqlite:///{tmp_path / 'home' / 'var' / 'gateway.sqlite'}")


def test_render_without_a_store_refuses(tmp_path: Path) -> None:
    home = home_with_store(tmp_path)
    result = cli("render", "--partner", "medsupply", str(SAMPLE_PO), "--home", str(home.path))
    assert result.exit_code == 2 and result.stdout == ""
    assert "no store at sqlite:///" in result.stderr and "--test-control" in result.stderr
    assert not (home.path / "var" / "gateway.sqlite").exists()  # not created: it would restart the numbering


def test_test_control_is_a_test_interchange(catalog: Catalog, tmp_path: Path) -> None:
    home = home_with_store(tmp_path)
    result = cli("render", "--partner", "medsupply", str(SAMPLE_PO), "--test-control", "7", "--home", str(home.path))
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert isa13(out) == "000000007" and "*ZZ*MEDSUPPLYTEST  *" in out and "*0*T*>~" in out[:110]
    assert "warning: test interchange" in result.stderr and "not for production" in result.stderr
    assert Validator(catalog).validate(out.encode()).valid
    assert not (home.path / "var" / "gateway.sqlite").exists()


def test_render_and_acks_share_the_partners_sequence(catalog: Catalog, store_url: str, tmp_path: Path) -> None:
    """The 997 the runtime sends medsupply, the 850 we render for it, the next 997: 1, 2, 3 (both stores)."""
    home = make_home(tmp_path / "home", store_url)
    home.drop("one.edi", case("medsupply", "810-invoice.edi"), "medsupply")
    assert gateway(home, "run", "--once").returncode in (0, 1)
    (first,) = sorted((home.outbox / "medsupply").glob("997-*.x12"))
    assert isa13(first.read_text()) == "000000001"

    result = cli("render", "--partner", "medsupply", str(SAMPLE_PO), "--home", str(home.path))
    assert result.exit_code == 0, result.stderr
    rendered = result.stdout
    assert isa13(rendered) == "000000002" and "\nGS*PO*MERCYHOSP*MEDSUPPLY*" in rendered
    assert "*2*X*004010~" in rendered and "ST*850*0001~" in rendered and "*0*P*>~" in rendered[:110]
    assert Validator(catalog).validate(rendered.encode()).valid

    home.drop("two.edi", case("medsupply", "810-invoice.edi").replace(b"000000413", b"000000414"), "medsupply")
    assert gateway(home, "run", "--once").returncode in (0, 1)
    numbers = sorted(isa13(p.read_text()) for p in (home.outbox / "medsupply").glob("997-*.x12"))
    assert numbers == ["000000001", "000000003"]

    store = home.store()
    try:
        (sent,) = [o for o in store.list_outbound(partner_id="medsupply") if o.kind == "850"]
        assert (sent.control_number, sent.group_control_number) == ("000000002", "2")
        assert Archive(home.archive).read(sent.sha256) == rendered.encode()
    finally:
        store.close()


def test_render_reads_what_translate_json_prints(catalog: Catalog, tmp_path: Path) -> None:
    """translate --json | render: the purchase order comes back as an 850 with the same order."""
    home = home_with_store(tmp_path)
    translated = cli("translate", "--json", str(SAMPLE_850), "--home", str(REPO))
    assert translated.exit_code == 0, translated.stderr
    saved = tmp_path / "translated.json"
    saved.write_text(translated.stdout)
    for args, stdin in (([str(saved)], None), (["-"], translated.stdout)):
        result = cli(
            "render", "--partner", "medsupply", *args, "--test-control", "9", "--home", str(home.path), stdin=stdin
        )
        assert result.exit_code == 0, result.stderr
        out = result.stdout
        assert "BEG*00*SA*4500012345**20261123~" in out and out.count("PO1*") == 3
        assert Validator(catalog).validate(out.encode()).valid


def test_the_sample_purchase_order_renders_a_valid_850(catalog: Catalog, tmp_path: Path) -> None:
    home = home_with_store(tmp_path)
    home.store().close()  # the deployment's store exists (as after a first `gateway run`)
    target = tmp_path / "po.edi"
    result = cli("render", "--partner", "medsupply", str(SAMPLE_PO), "--out", str(target), "--home", str(home.path))
    assert result.exit_code == 0, result.stderr
    assert "850 for medsupply (map x12-850-004010-out), PO 4500012345, 3 line(s)" in result.stdout
    data = target.read_bytes()
    assert isa13(data.decode()) == "000000001" and Validator(catalog).validate(data).valid
    engine = create_engine(home.store_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT kind, control_number FROM outbound")).all() == [("850", "000000001")]
    engine.dispose()
