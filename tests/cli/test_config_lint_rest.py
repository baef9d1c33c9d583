"""``gateway config lint`` finds what a REST or SQL destination's build would refuse (CFG-043), located: a CA
bundle that is missing or not PEM (relative to the deployment, as the build takes it), an HMAC secret
that is set but is not a Standard Webhooks secret; for the SQL staging loader, a driver that is not
installed, a dialect SQLAlchemy does not have, a SQLite file nothing would create."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway.cli.config_cli import default_registry, lint_config
from gateway.cli.main import main

REST = """\
destinations:
  canonical-json: {type: files}
  ap-api:
    type: rest
    url: https://ap.example/invoices
    verify: certs/ap-ca.pem
    auth: {type: hmac, secret: {env: LINT_REST_SECRET}}
"""


def test_lint_reports_what_the_rest_build_would_refuse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINT_REST_SECRET", "not base64 at all!")
    (tmp_path / "gateway.yaml").write_text(REST, "utf-8")
    checked = lint_config(tmp_path, default_registry())
    found = sorted((p.code, p.mark.line if p.mark else 0, p.path) for p in checked.problems.items)
    assert found == [
        ("CFG-043", 6, "destinations.ap-api.verify"),
        ("CFG-043", 7, "destinations.ap-api.auth.secret"),
    ]
    text = "\n".join(str(p) for p in checked.problems.items)
    assert f"CA bundle {tmp_path}/certs/ap-ca.pem does not exist" in text and "not base64" in text
    assert "not base64 at all!" not in text  # the secret itself is never shown

    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ap-ca.pem").write_text("not a certificate\n", "utf-8")
    monkeypatch.setenv("LINT_REST_SECRET", "whsec_c2VjcmV0LWJ5dGVzLWZvci10ZXN0cw==")
    result = CliRunner().invoke(main, ["config", "lint", "--home", str(tmp_path)])
    assert result.exit_code == 2 and "cannot load the CA bundle" in result.stderr and "gateway.yaml:6:" in result.stderr
    assert result.stderr.count("CFG-043") == 1


SQL = """\
destinations:
  canonical-json: {type: files}
  erp-pg2:
    type: sql
    url: postgresql+psycopg2://loader@erp-db.example.org/erp
  erp-typo:
    type: sql
    url: postgresql+psycopgg://loader@erp-db.example.org/erp
  erp-file:
    type: sql
    url: sqlite:///var/staging.db
  erp-bad:
    type: sql
    url: "oracle://loader@erp-db.example.org/erp"
  erp-new:
    type: sql
    url: sqlite:///var/new-staging.db
    upgrade: true
"""


def test_lint_reports_what_the_sql_build_would_refuse(tmp_path: Path) -> None:
    """The staging loader's checks, each at its url's line: a driver not installed (psycopg2 is not, on
    this machine: the gateway uses psycopg 3), a dialect SQLAlchemy does not have, a SQLite file that is
    not there while nothing would create its tables; an unsupported database is the model's CFG-012. A
    SQLite file that `upgrade: true` creates is fine."""
    pytest.importorskip("psycopg")
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("psycopg2 is installed here: its absence cannot be shown")
    (tmp_path / "gateway.yaml").write_text(SQL, "utf-8")
    checked = lint_config(tmp_path, default_registry())
    found = {(p.code, str(p.mark)): p.message for p in checked.problems.items}
    assert set(found) == {
        ("CFG-043", "gateway.yaml:5:5"),
        ("CFG-043", "gateway.yaml:8:5"),
        ("CFG-043", "gateway.yaml:11:5"),
        ("CFG-012", "gateway.yaml:14:5"),
    }, found
    assert "postgresql+psycopg2 driver is not installed" in found[("CFG-043", "gateway.yaml:5:5")]
    assert "use postgresql+psycopg://" in found[("CFG-043", "gateway.yaml:5:5")]
    assert "no dialect 'postgresql+psycopgg'" in found[("CFG-043", "gateway.yaml:8:5")]
    assert f"SQLite file {tmp_path}/var/staging.db does not exist" in found[("CFG-043", "gateway.yaml:11:5")]
    assert "unsupported database 'oracle'" in found[("CFG-012", "gateway.yaml:14:5")]
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "staging.db").touch()
    text = "\n".join(str(p) for p in lint_config(tmp_path, default_registry()).problems.items)
    assert "staging.db" not in text and text.count("CFG-043") == 2, text
