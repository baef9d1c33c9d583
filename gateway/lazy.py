"""A third-party module loaded on its first use, not when the module naming it is imported.

Why: ``gateway run`` imports every component the registry knows (SFTP, REST), but a deployment that
routes nothing to them never touches paramiko or httpx (which pulls in rich): about 0.3 s of every
process, and the test suite starts hundreds (docs/performance.md, "Delivery"). This is the standard
library's recipe (:class:`importlib.util.LazyLoader`): the module object exists at once and is executed
on its first attribute access. Under ``TYPE_CHECKING`` callers import the module plainly, for the types.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

__all__ = ["lazy_module"]


def lazy_module(name: str) -> ModuleType:
    """``name``, already imported, or registered to be executed when an attribute of it is first read."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"no module named {name!r}", name=name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module
