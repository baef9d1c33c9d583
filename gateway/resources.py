"""Reading the definitions shipped inside the package (an I/O edge).

The pure :class:`~gateway.x12.schema.catalog.Catalog` takes texts; this
module finds them with :mod:`importlib.resources` so it works from a wheel
or a checkout alike.
"""

from __future__ import annotations

from importlib import resources

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
