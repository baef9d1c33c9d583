"""The docs stay true: profile keys, the example gateway.yaml, relative links, the licence."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from conftest import REPO
from pydantic import BaseModel

from gateway.partners.reference import profile_reference
from gateway.settings import EXAMPLE, Settings, load_settings

DOCS = [*sorted((REPO / "docs").glob("*.md")), REPO / "README.md"]
REPO_FOLDERS = ("gateway/", "docs/", "maps/", "samples/", "bench/", "tests/")


def block(path: Path, name: str) -> str:
    text = path.read_text("utf-8")
    found = re.search(rf"<!-- {name} -->\n(.*?)<!-- /{name} -->", text, re.S)
    assert found, f"{path.name} has no <!-- {name} --> block"
    return found.group(1)


def test_every_profile_key_is_documented() -> None:
    documented = block(REPO / "docs" / "onboarding.md", "profile-keys")
    assert documented == profile_reference(), (
        "docs/onboarding.md's profile key table differs from the model: replace the block between "
        "<!-- profile-keys --> markers with the output of `gateway partners keys`"
    )


def _key_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    out = []
    for name, info in model.model_fields.items():
        out.append(prefix + name)
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out += _key_paths(ann, f"{prefix}{name}.")
    return out


def _lookup(doc: Any, path: str) -> bool:
    for part in path.split("."):
        if not isinstance(doc, dict) or part not in doc:
            return False
        doc = doc[part]
    return True


def test_the_example_gateway_yaml_has_every_key_and_parses(tmp_path: Path) -> None:
    assert block(REPO / "docs" / "deploy.md", "gateway-yaml") == f"```yaml\n{EXAMPLE}```\n"
    (tmp_path / "gateway.yaml").write_text(EXAMPLE, "utf-8")
    deployment, problems = load_settings(tmp_path)
    assert not problems.items, [str(p) for p in problems.items]
    assert deployment.settings == Settings(), "the example shows the defaults"
    raw = yaml.safe_load(EXAMPLE)
    missing = [p for p in _key_paths(Settings) if not _lookup(raw, p)]
    assert not missing, f"keys of gateway/settings.py missing from settings.EXAMPLE: {missing}"


def _references(text: str) -> list[str]:
    found = [m.group(1) for m in re.finditer(r"\]\(([^)#\s]+)", text) if "://" not in m.group(1)]
    for m in re.finditer(r"`([A-Za-z0-9_.\-/]+)`", text):
        name = m.group(1)
        if name.endswith(".md") or (name.startswith(REPO_FOLDERS) and "<" not in name):
            found.append(name)
    found += re.findall(r"(?<![`/\w.-])([A-Z][A-Za-z0-9_-]*\.md)\b", text)
    return found


def test_relative_links_in_the_docs_resolve() -> None:
    broken = []
    for path in DOCS:
        for ref in _references(path.read_text("utf-8")):
            target = ref.split("#", 1)[0]
            if not target:
                continue
            if not ((REPO / target).exists() or (path.parent / target).exists()):
                broken.append(f"{path.relative_to(REPO)}: {ref}")
    assert not broken, "\n".join(broken)


def test_the_link_check_finds_a_broken_link() -> None:
    assert _references("see `docs/maps-design.md` and FIELD.md, [x](nowhere.md)") == [
        "nowhere.md",
        "docs/maps-design.md",
        "FIELD.md",
    ]


def test_the_licence_named_by_pyproject_is_there() -> None:
    assert 'license = "Apache-2.0"' in (REPO / "pyproject.toml").read_text("utf-8")
    text = (REPO / "LICENSE").read_text("utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
