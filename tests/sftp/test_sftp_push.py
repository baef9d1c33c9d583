"""Pushing to a partner's SFTP server: our 997s and 850s through the delivery machinery (temp name, size check,
rename), retried while the server is down, dead-lettered and retransmitted like any delivery."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from ackcheck import check_ack
from click.testing import CliRunner
from sftpkit import REPO, SAMPLE_856, channel, endpoint_for, gateway, sftp_home, sshd_fixture  # noqa: F401

from gateway.channels.sftp import SftpError, connect
from gateway.cli.main import main
from gateway.delivery.base import Delivered, Payload, Rejected, RetryLater
from gateway.delivery.sftp import SftpConfig, build
from tests.support.sshd import Sshd, free_port


def _set_outbound(home: Any, partner: str, block: dict[str, Any]) -> None:
    path = home.path / "partners" / f"{partner}.yaml"
    profile = yaml.safe_load(path.read_text())
    profile["outbound"] = block
    path.write_text(yaml.safe_dump(profile, sort_keys=False))


def test_the_997_waits_while_the_server_is_down_then_is_uploaded(tmp_path: Path, sshd: Sshd) -> None:
    home, remote = sftp_home(tmp_path, sshd)
    (home.path / "partners" / "medsupply.yaml").write_text(
        (home.path / "partners" / "medsupply.yaml").read_text().split("inbound:")[0]
    )
    upload = remote / "up"
    upload.mkdir()
    _set_outbound(home, "medsupply", channel(sshd, upload, port=free_port()))
    home.drop("asn.edi", SAMPLE_856, "medsupply")
    first = home.service().run_once()
    listed = json.loads(CliRunner().invoke(main, ["deliveries", "list", "--json", "--home", str(home.path)]).output)
    waiting = [d for d in listed if d["destination"] == "partner-outbox"]
    assert [d["status"] for d in waiting] == ["pending"], first
    assert "cannot connect" in (waiting[0]["last_error"] or "")
    _set_outbound(home, "medsupply", channel(sshd, upload))
    assert not list(upload.iterdir())
    again = CliRunner().invoke(main, ["deliver", "--now", "--home", str(home.path)])
    assert again.exit_code == 0, again.output
    sent = sorted(upload.iterdir())
    assert [p.name.split("-")[0] for p in sent] == ["997"], sent  # renamed into place: no temp name left
    check_ack(sent[0].read_bytes())
    assert not list((home.outbox / "medsupply").glob("*.x12"))  # went to the server, not the local outbox
    listed = json.loads(CliRunner().invoke(main, ["deliveries", "list", "--json", "--home", str(home.path)]).output)
    assert [d["status"] for d in listed if d["destination"] == "partner-outbox"] == ["delivered"]


def _payload(data: bytes = b"ISA*...~") -> Payload:
    return Payload(
        kind="outbound", doc_type="997", partner_id="medsupply", correlation_id="c", idempotency_key="k",
        delivery_id=7, control_number="000000042", data=data,
    )  # fmt: skip


def test_upload_uses_a_temp_name_checks_size_and_replaces_on_retry(tmp_path: Path, sshd: Sshd) -> None:
    config = SftpConfig(
        host="127.0.0.1", port=sshd.port, username=sshd.user, host_key=sshd.host_public, remote_dir=str(tmp_path),
        sftp={"key_file": str(sshd.user_key), "timeout_seconds": 5},
    )  # fmt: skip
    dest = build("partner-sftp", config, None)
    try:
        first = dest.deliver(_payload(b"first"))
        assert isinstance(first, Delivered) and first.response["size"] == 5
        again = dest.deliver(_payload(b"second!"))
        assert isinstance(again, Delivered)
    finally:
        dest.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["997-000000042-7.x12"]
    assert (tmp_path / "997-000000042-7.x12").read_bytes() == b"second!"


def test_a_refused_host_key_is_a_retry_naming_it(tmp_path: Path, sshd: Sshd) -> None:
    other = (Path(__file__).parent / "data" / "other_host.pub").read_text().split()
    config = SftpConfig(
        host="127.0.0.1", port=sshd.port, username=sshd.user, host_key=f"{other[0]} {other[1]}",
        remote_dir=str(tmp_path), sftp={"key_file": str(sshd.user_key)},
    )  # fmt: skip
    outcome = build("x", config, None).deliver(_payload())
    assert isinstance(outcome, RetryLater) and "HOST KEY CHANGED" in outcome.reason
    assert list(tmp_path.iterdir()) == []


def test_a_missing_folder_is_reported_and_a_bad_template_refused(tmp_path: Path, sshd: Sshd) -> None:
    config = SftpConfig(
        host="127.0.0.1", port=sshd.port, username=sshd.user, host_key=sshd.host_public,
        remote_dir=str(tmp_path / "nope"), sftp={"key_file": str(sshd.user_key)},
    )  # fmt: skip
    outcome = build("x", config, None).deliver(_payload())
    assert isinstance(outcome, RetryLater) and "no such file" in outcome.reason
    with pytest.raises(ValueError, match="one file name"):
        SftpConfig(host="h", username="u", name="{partner}/{doc_type}.x12")
    assert Rejected  # a name the server would take outside its folder is refused before any connection


@pytest.mark.parametrize("kind", ["ecdsa", "rsa"])
def test_key_auth_with_a_passphrase_from_the_environment_or_a_file(
    tmp_path: Path, sshd: Sshd, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support.sshd import keygen

    key = keygen(tmp_path / f"user_{kind}", kind, passphrase="s3cret phrase")
    authorized = sshd.authorized.read_text()
    sshd.authorized.write_text(authorized + (tmp_path / f"user_{kind}.pub").read_text())
    try:
        from gateway.partners.sftp_options import Secret

        monkeypatch.setenv("SFTP_TEST_PASSPHRASE", "s3cret phrase")
        (tmp_path / "pass").write_text("s3cret phrase\n")
        for secret in (Secret(env="SFTP_TEST_PASSPHRASE"), Secret(file=str(tmp_path / "pass"))):
            with connect(endpoint_for(sshd, key_file=key, passphrase=secret)) as session:
                assert session.listdir(str(tmp_path))
        with pytest.raises(SftpError, match="NOT_SET_ANYWHERE_X is not set"):
            connect(endpoint_for(sshd, key_file=key, passphrase=Secret(env="NOT_SET_ANYWHERE_X")))
        (tmp_path / "wrong").write_text("not it")
        with pytest.raises(SftpError, match="cannot read key"):
            connect(endpoint_for(sshd, key_file=key, passphrase=Secret(file=str(tmp_path / "wrong"))))
    finally:
        sshd.authorized.write_text(authorized)


def test_a_key_the_server_does_not_know_is_refused_clearly(tmp_path: Path, sshd: Sshd) -> None:
    from tests.support.sshd import keygen

    stranger = keygen(tmp_path / "stranger")
    with pytest.raises(SftpError, match="authentication refused") as caught:
        connect(endpoint_for(sshd, key_file=stranger))
    assert caught.value.kind == "auth"
    assert REPO.exists()


def test_gateway_send_uploads_the_850_to_the_partners_server(tmp_path: Path, sshd: Sshd) -> None:
    from gateway.resources import load_catalog
    from gateway.x12.validate.validator import Validator

    home, remote = sftp_home(tmp_path, sshd)
    upload = remote / "orders"
    upload.mkdir()
    _set_outbound(home, "medsupply", channel(sshd, upload))
    order = REPO / "samples" / "canonical" / "purchase-order.json"
    done = CliRunner().invoke(main, ["send", "--partner", "medsupply", str(order), "--home", str(home.path)])
    assert done.exit_code == 0, done.output
    sent = sorted(upload.iterdir())
    assert [p.name.split("-")[0] for p in sent] == ["850"], sent
    report = Validator(load_catalog()).validate(sent[0].read_bytes())
    assert report.valid and [s.header.set_id for s in report.sets()] == ["850"]
    assert not list((home.outbox / "medsupply").glob("*.x12"))
