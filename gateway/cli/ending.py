"""How a ``gateway`` process ends once a command has finished all of its work.

An interpreter's normal end tears down every module and object: for ``gateway run``, whose heap holds
the maps, the X12 definitions, SQLAlchemy and the store, that took 0.4 s after the last line was
printed, and a service waits for its delivery processes' teardown as well (an empty ``gateway run
--once`` with one delivery process: 3.4-3.6 s with those teardowns, 2.6-3.3 s without; see
docs/performance.md).

``gateway run --once`` (and its delivery processes), having joined its work, closed its store and
printed its summary, raises :class:`Finished` instead of :class:`SystemExit`; the program's entry point
(:func:`gateway.cli.main.entry`) then ends the process at once, after flushing what was logged and
printed. Everything else ends the usual way: a service stopped by a signal (Python's end lets an SFTP
download still under way on a pool's thread finish), an error, another command, and a command run
in-process through ``main`` (a test's CliRunner), for which :class:`Finished` *is* a
:class:`SystemExit` with the same code.
"""

from __future__ import annotations

__all__ = ["Finished"]


class Finished(SystemExit):
    """The command's work is done and closed: the exit ``code`` may end the process without teardown."""
