"""Build hook: ship the base maps, code tables and outbound maps (``maps/``) inside the package.

Everything else is declared in ``pyproject.toml``. ``maps/`` stays at the top of the checkout,
where it is edited and reviewed; the wheel carries a copy as ``gateway/_maps`` (golden cases
left out), found at run time by :func:`gateway.resources.shipped_maps`.

``GATEWAY_COMPILE=1`` (opt-in, needs mypy's ``mypyc`` and a C compiler at build time) also compiles
the X12 read/validate kernel (:data:`KERNEL`) with mypyc: the same source, as C extension modules
that Python imports instead of the ``.py`` files next to them. Without it, or for any module not
built, the pure-Python source is what runs: it is the fallback and the reference the tests check.
Build it into a wheel (``GATEWAY_COMPILE=1 pip wheel .``), never in place in a checkout you edit: a
compiled module shadows its ``.py``, so later edits to that file would not be run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithMaps(build_py):
    """``build_py`` plus a copy of ``maps/`` (without ``cases/``) as the package's ``_maps``."""

    def run(self) -> None:
        super().run()
        source = Path(__file__).resolve().parent / "maps"
        if not source.is_dir():  # building from an sdist without maps/ would ship no base maps
            raise SystemExit(f"cannot build: {source} is missing")
        target = Path(self.build_lib) / "gateway" / "_maps"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("cases", "__pycache__", ".*"))


#: The modules compiled by ``GATEWAY_COMPILE=1``: the per-segment loop of ``translate`` and ``run``
#: (reader, envelope, validator, structure matcher) and the scope tree maps read (docs/performance.md).
KERNEL = [
    "gateway/x12/reader.py",
    "gateway/x12/envelope.py",
    "gateway/x12/validate/validator.py",
    "gateway/x12/validate/structure.py",
    "gateway/mapping/x12scope.py",
]


def _extensions() -> list[object]:
    if os.environ.get("GATEWAY_COMPILE") != "1":
        return []
    from mypyc.build import mypycify  # only when asked for: a plain build needs no compiler

    return list(mypycify(["--ignore-missing-imports", *KERNEL], opt_level="3"))


setup(cmdclass={"build_py": BuildWithMaps}, ext_modules=_extensions())
