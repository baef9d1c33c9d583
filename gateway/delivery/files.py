"""The ``files`` destination: each payload written to a folder under a templated name (temp, then rename).

This is the reference module for destinations (STYLE.md convention 2): a config model with
``extra="forbid"``, the class implementing :class:`~gateway.delivery.base.Destination`, and one
``register`` function the composition root (:mod:`gateway.components`) calls.

Canonical documents are written as their canonical JSON; outbound interchanges (acks, 850s) as the
exact bytes archived when they were recorded. ``name`` is a template over
:meth:`~gateway.delivery.base.Payload.names` (``{partner}``, ``{doc_type}``, ``{file_id}``,
``{position}``, ``{control}``, ``{number}``, ``{business_key}``, ``{document_id}``, ``{delivery_id}``,
``{correlation_id}``, ``{ext}``); it may hold sub-folders. With ``layout: NAME`` each canonical
document is written through that export layout (CSV, fixed width or XML: :mod:`gateway.delivery.layouts`)
and ``{ext}`` is the layout's extension (otherwise ``json`` for documents, ``x12`` for interchanges).
A batch is made durable together (:class:`~gateway.store.durable.SyncGroup`: one ``syncfs`` for the
batch) before it is reported delivered. A target already holding exactly those bytes is not written
again (a redelivery after a crash hands the ERP nothing new); different bytes under the same name
replace it.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from gateway.delivery.base import Delivered, DestinationConfig, Outcome, Payload, Rejected, RetryLater
from gateway.delivery.layouts import find_layout, lay_out
from gateway.delivery.registry import Registry
from gateway.errors import ConfigError
from gateway.outbound.layout import Layout
from gateway.store.durable import SyncGroup

__all__ = ["FilesConfig", "FilesDestination", "register"]

TMP_DIR = ".tmp"
"""Files are written here first (inside the folder, so on its file system) and renamed into place."""

NAME_FIELDS = frozenset(
    {"partner", "doc_type", "file_id", "position", "document_id", "delivery_id", "control", "correlation_id",
     "business_key", "number", "ext"}
)  # fmt: skip


class FilesConfig(DestinationConfig):
    """``type: files``: a folder (relative to the deployment folder) and a file-name template."""

    type: Literal["files"] = "files"
    folder: str = "outbox/canonical"
    name: str = "{partner}/{doc_type}-{file_id}-{position}.{ext}"  # ext: json, x12 or the layout's
    sync: Literal["group", "each"] = Field(default="group", description="How the batch is made durable.")
    layout: str | None = Field(default=None, description="An export layout (maps/outbound): CSV, fixed width, XML.")

    @field_validator("name")
    @classmethod
    def _known_fields(cls, value: str) -> str:
        return check_template(value)


def check_template(value: str) -> str:
    """A name template using only known fields, never escaping its folder."""
    try:
        used = {f for _, f, _, _ in string.Formatter().parse(value) if f is not None}
    except ValueError as exc:
        raise ValueError(f"bad name template {value!r}: {exc}") from exc
    unknown = sorted(used - NAME_FIELDS)
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(unknown)} in {value!r}; known: {', '.join(sorted(NAME_FIELDS))}")
    if value.startswith("/") or ".." in Path(value).parts:
        raise ValueError(f"name template {value!r} must stay inside the folder (no leading /, no ..)")
    return value


@dataclass
class FilesDestination:
    """Writes payloads under ``folder``; see the module notes."""

    name: str
    folder: Path
    template: str
    sync: str = "group"
    layout: Layout | None = None
    fields: frozenset[str] = field(init=False, repr=False)  # the names the template uses

    def __post_init__(self) -> None:
        self.fields = frozenset(_fields(self.template))

    def target(self, payload: Payload, root: Path | None = None, folders: dict[Path, Path] | None = None) -> Path:
        """Where ``payload`` goes (path parts made safe: no separators or leading dots from values), symbolic
        links resolved; ``root``: the folder resolved, and ``folders``: its subfolders resolved so far, by
        relative path (a batch passes one for all its files: resolving walks every part of the path, one
        ``lstat`` each, and a batch's files usually share one subfolder). The file's own name is still checked."""
        ext = self.layout.extension if self.layout is not None else "json" if payload.kind == "document" else "x12"
        names = {**payload.names(), "ext": ext}
        relative = self.template.format(**{k: _safe(names[k]) for k in self.fields if k in names})
        named = Path(relative)
        folders = {} if folders is None else folders
        parent = folders.get(named.parent)
        if parent is None:
            parent = folders[named.parent] = (self.folder / named.parent).resolve()
        path = parent / named.name
        if named.name == ".." or path.is_symlink():  # a template's dots may make "..": resolved, then refused
            path = path.resolve()
        inside = (root or self.folder.resolve()).parts
        if len(path.parts) <= len(inside) or path.parts[: len(inside)] != inside:  # not strictly under the root
            raise ConfigError(f"destination {self.name}: {relative!r} leaves {self.folder}", code="CFG-031")
        return path

    def deliver(self, payload: Payload) -> Outcome:
        """Write one payload durably."""
        return self.deliver_batch([payload])[0]

    def deliver_batch(self, payloads: list[Payload]) -> list[Outcome]:
        """Write many payloads and make them durable together; a disk error is a retry for all of them."""
        group = SyncGroup(self.sync)
        targets: list[tuple[Path, bool] | Rejected] = []
        try:
            root = self.folder.resolve()
            folders: dict[Path, Path] = {}
            for payload in payloads:
                data = payload.document_bytes() if self.layout is None else lay_out(self.layout, payload)
                if isinstance(data, Rejected):  # this document cannot be laid out; its siblings still are
                    targets.append(data)
                    continue
                path = self.target(payload, root, folders)
                same = _holds(path, data)
                if not same:
                    group.write(path, data, self.folder / TMP_DIR)
                targets.append((path, same))
            group.flush()
        except OSError as exc:
            group.discard()
            return [RetryLater(f"cannot write to {self.folder}: {exc}") for _ in payloads]
        return [_written(target) for target in targets]

    def close(self) -> None:
        """Nothing held between batches."""


def _fields(template: str) -> set[str]:
    """The names a template uses, those inside a format spec (``{partner:>{file_id}}``) included."""
    used: set[str] = set()
    for _, name, spec, _ in string.Formatter().parse(template):
        if name is not None:
            used.add(re.split(r"[.\[]", name, maxsplit=1)[0])
        if spec:
            used |= _fields(spec)
    return used


def _written(target: tuple[Path, bool] | Rejected) -> Outcome:
    if isinstance(target, Rejected):
        return target
    path, same = target
    return Delivered({"path": str(path), "unchanged": True} if same else {"path": str(path)})


def _safe(value: str) -> str:
    """A value fit for one path part: no separators, no leading dot, printable."""
    return _UNSAFE.sub("_", value).lstrip(".") or "_"


_UNSAFE = re.compile(r"[^\w\-.@+]")
"""What :func:`_safe` replaces: anything but letters and digits (``str.isalnum``), ``_-.@+``."""


def _holds(path: Path, data: bytes) -> bool:
    """Whether ``path`` already holds exactly ``data``."""
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False


def build(name: str, config: FilesConfig, context: object) -> FilesDestination:
    """Phase two: the folder is taken from the deployment folder (``context.home``)."""
    home = Path(str(getattr(context, "home", ".")))
    folder = Path(config.folder)
    layout = find_layout(name, config.layout, context) if config.layout is not None else None
    return FilesDestination(name, folder if folder.is_absolute() else home / folder, config.name, config.sync, layout)


def register(registry: Registry) -> None:
    """Register ``files``."""
    registry.register("destination", "files", FilesConfig, build, "write each payload to a folder (temp, rename)")
