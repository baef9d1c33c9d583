"""Reading the definitions and base maps shipped with the package (an I/O edge).

The pure :class:`~gateway.x12.schema.catalog.Catalog` takes texts; this
module finds them with :mod:`importlib.resources` so it works from a wheel
or a checkout alike. The base maps are found the same way (:func:`maps_folder`).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
import tempfile
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

import pydantic

from gateway.x12.schema import catalog as catalog_module
from gateway.x12.schema import compiled, files, overlay
from gateway.x12.schema.catalog import Catalog

CACHE_ENV = "GATEWAY_CACHE_DIR"
"""Where the parsed definitions are cached (default: ``$XDG_CACHE_HOME/hospital-edi-gateway``, else
``~/.cache/hospital-edi-gateway``); set it empty to read the YAML definitions every time."""


def definition_texts() -> dict[str, str]:
    """``{"004010/segments.yaml": text, ...}`` for every packaged definition file."""
    root = resources.files("gateway.x12") / "definitions"
    texts: dict[str, str] = {}
    for version_dir in root.iterdir():
        if not version_dir.is_dir() or version_dir.name.startswith(("_", ".")):
            continue
        for item in version_dir.iterdir():
            if item.name.endswith(".yaml"):
                texts[f"{version_dir.name}/{item.name}"] = item.read_text("utf-8")
            elif item.is_dir() and item.name == "sets":
                for set_file in item.iterdir():
                    if set_file.name.endswith(".yaml"):
                        texts[f"{version_dir.name}/sets/{set_file.name}"] = set_file.read_text("utf-8")
    return texts


def load_catalog() -> Catalog:
    """The catalog of the packaged definitions; the composition root calls this once.

    Parsing the YAML definitions and checking them costs about a quarter of a second of every
    process; the parsed catalog is kept in the cache folder (:data:`CACHE_ENV`) under a key made of
    the definitions' texts and the code that reads them, so a changed definition, a new gateway or
    another Python or pydantic is parsed afresh.
    """
    return cached_catalog(definition_texts(), cache_folder())


def cache_folder() -> Path | None:
    """The folder for the parsed definitions (None: no caching, :data:`CACHE_ENV` set empty)."""
    given = os.environ.get(CACHE_ENV)
    if given is not None:
        return Path(given) if given else None
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hospital-edi-gateway"


def catalog_key(texts: Mapping[str, str]) -> str:
    """A digest of everything the parsed catalog depends on: the texts, the modules whose objects
    it holds (a changed class must not meet an old pickle), the Python and pydantic versions."""
    digest = hashlib.sha256(f"{sys.version}\0{pydantic.VERSION}\0".encode())
    for module in (catalog_module, compiled, files, overlay):
        digest.update(Path(str(module.__file__)).read_bytes())
    for name in sorted(texts):
        digest.update(f"\0{name}\0{len(texts[name])}\0".encode())
        digest.update(texts[name].encode("utf-8"))
    return digest.hexdigest()


def cached_catalog(texts: Mapping[str, str], folder: Path | None) -> Catalog:
    """:meth:`Catalog.from_texts`, or the same catalog as this code parsed it before from ``folder``."""
    if folder is None:
        return Catalog.from_texts(texts)
    path = folder / f"catalog-{catalog_key(texts)}.pickle"
    found = _read_cached(path)
    if found is not None:
        return found
    catalog = Catalog.from_texts(texts)  # raises DefinitionError for broken texts: nothing is cached then
    _write_cached(path, catalog)
    return catalog


# A cache file that cannot be read as a catalog is parsed afresh (and rewritten): the cache only saves
# time, and its key already says the texts and the code are the ones it was made from.
_UNREADABLE = (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError, TypeError, ValueError)


def _read_cached(path: Path) -> Catalog | None:
    try:
        with path.open("rb") as fh:
            if hasattr(os, "getuid") and os.fstat(fh.fileno()).st_uid != os.getuid():
                return None  # only a file this user wrote is unpickled
            found = pickle.load(fh)
    except _UNREADABLE:  # FileNotFoundError (not cached yet) among them
        return None
    return found if isinstance(found, Catalog) else None


def _write_cached(path: Path, catalog: Catalog) -> None:
    """Write the cache file whole or not at all (temp file, then rename); a folder that cannot be
    written (read-only home, full disk) leaves the catalog uncached, which costs time only."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".catalog-", dir=path.parent)
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(catalog, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)


def shipped_maps() -> Path | None:
    """The base maps, code tables and outbound maps that come with the gateway.

    A wheel carries them as ``gateway/_maps`` (copied there by ``setup.py``); a checkout (or an
    editable install) has them in ``maps/`` beside the package. None when neither is there.
    """
    packaged = Path(str(resources.files("gateway"))) / "_maps"
    if packaged.is_dir():
        return packaged
    checkout = packaged.parent.parent / "maps"
    if checkout.is_dir() and (checkout.parent / "pyproject.toml").is_file():
        return checkout
    return None


def maps_folder(home: Path) -> Path:
    """``home/maps`` when the deployment has one (it replaces the shipped maps), else the shipped maps.

    A deployment needs no ``maps/`` of its own: partner maps live in ``partners/<id>/maps/``, and
    the base maps are the ones of the installed gateway. A ``maps/`` folder in the deployment is a
    full replacement (copy the shipped one to change a base map), never mixed with them.
    """
    own = home / "maps"
    if own.is_dir():
        return own
    return shipped_maps() or own
