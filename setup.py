"""Build hook: ship the base maps, code tables and outbound maps (``maps/``) inside the package.

Everything else is declared in ``pyproject.toml``. ``maps/`` stays at the top of the checkout,
where it is edited and reviewed; the wheel carries a copy as ``gateway/_maps`` (golden cases
left out), found at run time by :func:`gateway.resources.shipped_maps`.
"""

from __future__ import annotations

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


setup(cmdclass={"build_py": BuildWithMaps})
