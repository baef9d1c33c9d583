"""Compile the gateway's modules to bytecode before a benchmark times whole processes.

An installed gateway (``pip install``) has its ``.pyc`` files: pip compiles them. A checkout run with
``PYTHONDONTWRITEBYTECODE=1`` (set on some machines, this project's sandbox among them) has none, and then
every ``gateway ...`` process compiles about a hundred modules from source first (0.2-0.3 s of each start-up
here), which is not what a user's process does. ``compileall`` writes them whatever that variable says.
"""

from __future__ import annotations

import compileall
import sys
from pathlib import Path


def compile_gateway(*checkouts: Path) -> None:
    """Bytecode for ``gateway/`` in each checkout (quietly; a module already compiled is left as it is)."""
    for root in checkouts:
        package = root / "gateway"
        if not compileall.compile_dir(package, quiet=1, workers=0):
            print(f"bytecode: some modules of {package} did not compile", file=sys.stderr)
