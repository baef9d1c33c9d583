"""Reading the definitions and base maps shipped with the package (an I/O edge).

The pure :class:`~gateway.x12.schema.catalog.Catalog` takes texts; this
module finds them with :mod:`importlib.resources` so it works from a wheel
or a checkout alike. The base maps are found the same way (:func:`maps_folder`).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from gateway.x12.schema.catalog import Catalog


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
    """The catalog of the packaged definitions; the composition root calls this once."""
    return Catalog.from_texts(definition_texts())


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
