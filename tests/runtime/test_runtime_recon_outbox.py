"""Exception alerts and billing events are a transactional outbox: written in the transaction that
records the exceptions (and bills the line), so a crash in between loses nothing. A crash is injected
inside that transaction (after the exceptions and a first alert are written, before the commit): nothing
of it is left, and the next run (a real `gateway recon run` process) records and POSTs every alert and
the billing event once, each with the idempotency key its delivery row was written with. SQLite and
PostgreSQL."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from runtimekit import REPO, gateway, make_home, pg_url_fixture, store_url_fixture  # noqa: F401 - fixtures
from support.httpd import Receiver
from test_runtime_recon import _drop, _numbered, _sample, hooks_destination, recon, recon_home, set_reconciliation
from test_runtime_recon_outputs import _posted

from gateway.cli.recon_cli import _Env
from gateway.store import Store


class Crash(BaseException):
    """Stands for the process dying: nothing after it runs, the open transaction is not committed."""


def _home(tmp_path: Path, store_url: str, hooks: Receiver, enabled: bool) -> Any:
    home = recon_home(tmp_path, store_url, "hooks", hooks_destination(hooks))
    _profile(home, enabled)
    return home


def _profile(home: Any, enabled: bool) -> None:
    set_reconciliation(home, enabled=enabled, chargeable={"items": ["IMP-HIP-52"]})


def _recorded(home: Any) -> tuple[int, Counter[str]]:
    """Exceptions stored, and the alerts and billing events recorded."""
    with Store(home.store_url) as store:
        exceptions = len(store.list_exceptions(limit=1000))
        kinds = Counter(
            o.kind for o in store.list_outbound(limit=1000) if o.kind in ("recon_exception", "billing_event")
        )
    return exceptions, kinds


def _recorded_chain(tmp_path: Path, store_url: str, hooks: Receiver, over_contract: bool = True) -> Any:
    """Our 850 sent, the supplier's 855 (the implant 45.00 over contract, unless not ``over_contract``)
    and 856 recorded by `gateway run --once` with reconciliation off for the partner; then turned on:
    nothing reconciled yet."""
    home = _home(tmp_path, store_url, hooks, enabled=False)
    _drop(
        home.path / "send" / "medsupply",
        "po.json",
        (REPO / "samples" / "canonical" / "purchase-order.json").read_bytes(),
    )
    inbox = home.inbox / "medsupply"
    ack = _sample("855-4010-medsupply-ack.edi")
    if over_contract:
        ack = ack.replace("PO1*3*2*EA*1450.00*", "PO1*3*2*EA*1495.00*")
    _drop(inbox, "855.edi", _numbered(ack, 201))
    _drop(inbox, "856.edi", _numbered(_sample("856-4010-medsupply-asn.edi"), 301))
    done = gateway(home, "run", "--once")
    assert done.returncode == 0, done.stdout + done.stderr
    assert _recorded(home) == (0, Counter())
    _profile(home, enabled=True)
    return home


def _check_keys(home: Any, hooks: Receiver) -> None:
    """Each POST once, with the idempotency key of its delivery row."""
    keys = [r.key for r in hooks.received]
    assert len(keys) == len(set(keys)) and None not in keys, keys
    with Store(home.store_url) as store:
        ledger = {d.idempotency_key for d in store.list_deliveries(limit=1000) if d.destination == "hooks"}
    assert set(keys) == ledger, "a POST carried a key other than its delivery row's"


def test_a_crash_between_recording_exceptions_and_their_alerts_loses_no_alert(tmp_path: Path, store_url: str) -> None:
    with Receiver() as hooks:
        home = _recorded_chain(tmp_path, store_url, hooks)
        env = _Env(home.path, None, None)
        with env.store:
            reconciler = env.reconciler()
            outputs = env.outputs(reconciler)
            outputs.alert = _Dies(outputs.alert, after=1)  # type: ignore[method-assign]
            with pytest.raises(Crash):
                reconciler.rerun()  # the exceptions and a first alert are written, then the process dies
            assert outputs.take_owed() == []
        assert _recorded(home) == (0, Counter()), "a part of the crashed transaction stayed"
        assert hooks.received == []

        again = recon(home, "run")  # another process, as after a restart
        assert again.exit_code == 0, again.output
        stored = json.loads(recon(home, "list", "--json").stdout)
        alerts = _posted(hooks, "recon_exception")
        assert sorted(a["exception_id"] for a in alerts) == sorted(e["id"] for e in stored), (alerts, stored)
        exceptions, kinds = _recorded(home)
        assert kinds["recon_exception"] == exceptions == len(alerts) >= 2, (exceptions, kinds)
        assert kinds["billing_event"] == 0  # withheld: the implant's line has an open price exception
        _check_keys(home, hooks)


def test_a_crash_while_a_waiver_releases_a_billing_event_keeps_both_undone(tmp_path: Path, store_url: str) -> None:
    with Receiver() as hooks:
        home = _recorded_chain(tmp_path, store_url, hooks)
        assert recon(home, "run").exit_code == 0
        price = next(e for e in json.loads(recon(home, "list", "--json").stdout) if e["kind"] == "ack_price")
        before = _recorded(home)
        env = _Env(home.path, None, None)
        with env.store:
            reconciler = env.reconciler()
            outputs = env.outputs(reconciler)
            outputs.billing_event = _Dies(outputs.billing_event, after=0)  # type: ignore[method-assign]
            with pytest.raises(Crash):
                reconciler.settle(price["id"], "waived", "price increase agreed")
        assert _recorded(home) == before, "the waiver or its billing event stayed without the other"
        assert json.loads(recon(home, "history", str(price["id"]), "--json").stdout)["status"] == "open"

        waived = recon(home, "waive", str(price["id"]), "--reason", "price increase agreed")
        assert waived.exit_code == 0 and "1 billing event(s) released" in waived.output, waived.output
        (event,) = _posted(hooks, "billing_event")
        assert (event["po_line"], event["lot"], event["serial"]) == ("3", "HX2611", "SN-0045512")
        assert _recorded(home)[1]["billing_event"] == 1
        assert recon(home, "run").exit_code == 0
        assert len(_posted(hooks, "billing_event")) == 1 and _recorded(home)[1]["billing_event"] == 1
        _check_keys(home, hooks)


class _Dies:
    """Wraps an outbox step: the call after ``after`` calls dies as a killed process would."""

    def __init__(self, step: Any, after: int) -> None:
        self.step, self.after, self.calls = step, after, 0

    def __call__(self, *args: Any) -> Any:
        self.calls += 1
        if self.calls > self.after:
            raise Crash(f"killed in the outbox after {self.after} item(s)")
        return self.step(*args)
