"""The parsed definitions are cached by a key of their texts and code: same catalog, parsed once."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from gateway import resources
from gateway.errors import DefinitionError
from gateway.resources import CACHE_ENV, cache_folder, cached_catalog, catalog_key, definition_texts
from gateway.x12.schema.catalog import Catalog
from gateway.x12.schema.compiled import LoopNode, SegmentNode


def _same(a: Catalog, b: Catalog) -> None:
    assert a.versions == b.versions
    for version in a.versions:
        assert a.set_ids(version) == b.set_ids(version)
        assert a.known_segments(version) == b.known_segments(version)
        for set_id in a.set_ids(version):
            one, two = a.definition(version, set_id), b.definition(version, set_id)
            assert one is not None and two is not None
            assert one.segment_ids == two.segment_ids and _shape(one.root) == _shape(two.root)


def _shape(node: object) -> object:
    """A loop tree as nested tuples: ids, requirements, repeats, segment specs."""
    if isinstance(node, SegmentNode):
        return (node.spec, node.pos, node.req, node.max)
    assert isinstance(node, LoopNode)
    return (node.id, node.req, node.max, node.path, node.hierarchy, [_shape(c) for c in node.children])


def test_the_second_load_comes_from_the_cache_and_is_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    texts = definition_texts()
    first = cached_catalog(texts, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [f"catalog-{catalog_key(texts)}.pickle"]

    def no_parsing(_texts: object) -> Catalog:
        raise AssertionError("parsed again")

    monkeypatch.setattr(Catalog, "from_texts", staticmethod(no_parsing))
    _same(first, cached_catalog(texts, tmp_path))


def test_a_changed_definition_is_parsed_afresh(tmp_path: Path) -> None:
    texts = definition_texts()
    cached_catalog(texts, tmp_path)
    name = next(n for n in sorted(texts) if n.endswith("sets/856.yaml"))
    changed = {**texts, name: texts[name].replace("name: Ship Notice/Manifest", "name: Ship Notice (changed)", 1)}
    assert catalog_key(changed) != catalog_key(texts)
    catalog = cached_catalog(changed, tmp_path)
    definition = catalog.definition(name.split("/")[0], "856")
    assert definition is not None and "(changed)" in definition.name
    assert len(list(tmp_path.glob("catalog-*.pickle"))) == 2


def test_broken_definitions_raise_and_are_not_cached(tmp_path: Path) -> None:
    texts = {**definition_texts(), "004010/segments.yaml": "segments: ["}
    with pytest.raises(DefinitionError):
        cached_catalog(texts, tmp_path)
    assert not list(tmp_path.iterdir())


def test_an_unreadable_cache_file_is_replaced(tmp_path: Path) -> None:
    texts = definition_texts()
    path = tmp_path / f"catalog-{catalog_key(texts)}.pickle"
    path.write_bytes(b"not a pickle")
    _same(cached_catalog(texts, tmp_path), Catalog.from_texts(texts))
    assert isinstance(pickle.loads(path.read_bytes()), Catalog)
    path.write_bytes(pickle.dumps({"not": "a catalog"}))
    assert isinstance(cached_catalog(texts, tmp_path), Catalog)


def test_an_unwritable_folder_costs_only_time(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert isinstance(cached_catalog(definition_texts(), blocker / "cache"), Catalog)


def test_the_folder_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(CACHE_ENV, "")
    assert cache_folder() is None
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    assert cache_folder() == tmp_path
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_folder() == tmp_path / "xdg" / "hospital-edi-gateway"
    monkeypatch.setenv(CACHE_ENV, "")
    assert isinstance(resources.load_catalog(), Catalog)
    assert not (tmp_path / "xdg").exists()
