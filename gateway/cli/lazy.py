"""A click group whose commands are imported when they are run (or listed by ``--help``), not at start-up.

Why: ``gateway translate`` on a file needs the X12 engine and the maps, not SQLAlchemy, the store,
the runtime or the outbound renderer; importing those for every command cost about a second of each
process (measured with ``python -X importtime``, see docs/performance.md).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import click


class LazyGroup(click.Group):
    """A :class:`click.Group` that also knows commands by ``"module:attribute"``, imported on first use.

    Eager commands (``add_command``, ``@group.command``) work as in any group; a lazy one is only a
    name until :meth:`get_command` asks for it, and ``--help`` lists both alike.
    """

    def __init__(self, *args: Any, lazy_commands: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command name, eager and lazy, sorted (as click lists a plain group's)."""
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command ``cmd_name``, importing its module the first time a lazy one is asked for."""
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name not in self.lazy_commands:
            return command
        module_name, _, attribute = self.lazy_commands[cmd_name].partition(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.lazy_commands[cmd_name]} is not a click command")
        self.add_command(command, cmd_name)  # imported once: later lookups are the eager path
        return command


__all__ = ["LazyGroup"]
