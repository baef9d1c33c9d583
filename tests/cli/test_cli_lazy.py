"""The CLI imports the store, the runtime and the outbound renderer only for the commands that use them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
from click.testing import CliRunner

from gateway.cli.lazy import LazyGroup
from gateway.cli.main import LAZY_COMMANDS, main

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "x12" / "856-4010-medsupply-asn.edi"


def test_translate_and_validate_do_not_import_the_store_or_the_runtime() -> None:
    code = (
        "import sys\n"
        "from gateway.cli.main import main\n"
        "for command in ('translate', 'validate'):\n"
        "    try:\n"
        "        main([command, sys.argv[1], '--home', sys.argv[2]])\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code in (0, None), exc.code\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'starlette', 'uvicorn', 'argon2')\n"
        "               or m.startswith(('gateway.store', 'gateway.runtime', 'gateway.outbound.')))\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(SAMPLE), str(REPO)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_every_lazy_command_resolves_and_is_listed() -> None:
    ctx = click.Context(main)
    assert set(LAZY_COMMANDS) <= set(main.list_commands(ctx))
    for name in LAZY_COMMANDS:
        command = main.get_command(ctx, name)
        assert isinstance(command, click.Command), name
    assert main.get_command(ctx, "no-such-command") is None


def test_a_lazy_entry_that_is_not_a_command_is_refused() -> None:
    group = LazyGroup(name="g", lazy_commands={"bad": "gateway.cli.lazy:__all__"})
    result = CliRunner().invoke(group, ["bad"])
    assert isinstance(result.exception, TypeError)
