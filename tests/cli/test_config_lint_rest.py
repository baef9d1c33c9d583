"""``gateway config lint`` finds what a REST destination's build would refuse (CFG-043), located: a CA
bundle that is missing or not PEM (relative to the deployment, as the build takes it), an HMAC secret
that is set but is not a Standard Webhooks secret."""

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
