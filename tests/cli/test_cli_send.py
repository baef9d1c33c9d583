"""`gateway send`: a canonical purchase order rendered as the partner's 850, numbered from the persisted
sequence, archived, recorded and delivered to the partner's outbox, as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))
from runtimekit import GATEWAY, REPO, make_home

from gateway.x12.schema.catalog import Catalog
from gateway.x12.validate.validator import Validator

ORDER = REPO / "samples" / "canonical" / "purchase-order.json"


def test_send_numbers_records_and_delivers_a_valid_850(catalog: Catalog, tmp_path: Path) -> None:
    home = make_home(tmp_path, f"sqlite:///{tmp_path / 'var' / 'gateway.sqlite'}")

    def send() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*GATEWAY, "send", "--partner", "medsupply", str(ORDER), "--home", str(home.path)],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip

    first, second = send(), send()
    assert first.returncode == 0, first.stdout + first.stderr
    assert "delivered 1 of 1 to partner-outbox" in first.stdout
    sent = sorted((home.outbox / "medsupply").glob("850-*.x12"))
    assert [p.name for p in sent] == ["850-000000001.x12", "850-000000002.x12"], second.stdout + second.stderr
    for path in sent:
        assert Validator(catalog).validate(path.read_bytes()).valid, path
