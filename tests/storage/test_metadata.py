"""The metadata store: workspaces, projects, keys (hash only), salts."""

from __future__ import annotations

from pathlib import Path

import pytest

from roost.errors import BadRequest, NotFound
from roost.storage.metadata import Metadata, hash_key


@pytest.fixture
def metadata(tmp_path: Path) -> Metadata:
    return Metadata(f"sqlite:///{tmp_path / 'm.sqlite'}")


def test_only_a_hash_of_the_key_is_stored(metadata: Metadata, tmp_path: Path) -> None:
    ws = metadata.create_workspace("w", "pro", 1000)
    metadata.create_project(ws.id, "site")
    key, raw = metadata.create_key("site", "write", label="web", allowed_types=["track"], rate=10)
    metadata.close()
    data = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert raw.encode() not in data
    assert hash_key(raw).encode() in data
    again = Metadata(f"sqlite:///{tmp_path / 'm.sqlite'}")
    found = again.find_key(raw)
    assert found is not None
    assert (found.id, found.kind, found.label, found.project_slug) == (
        key.id,
        "write",
        "web",
        "site",
    )
    assert (found.plan, found.monthly_budget, found.allowed_types, found.rate, found.burst) == (
        "pro",
        1000,
        ("track",),
        10.0,
        50.0,
    )
    assert again.find_key(raw + "x") is None


def test_revoke(metadata: Metadata) -> None:
    ws = metadata.create_workspace("w", "free")
    metadata.create_project(ws.id, "site")
    key, raw = metadata.create_key("site", "read")
    metadata.revoke_key(key.id)
    found = metadata.find_key(raw)
    assert found is not None and found.revoked_at is not None
    with pytest.raises(NotFound):
        metadata.revoke_key("key_missing")


def test_rules_name_the_field(metadata: Metadata) -> None:
    with pytest.raises(BadRequest, match="plan"):
        metadata.create_workspace("w", "gold")
    ws = metadata.create_workspace("w", "free")
    with pytest.raises(BadRequest, match="slug"):
        metadata.create_project(ws.id, "Not A Slug")
    metadata.create_project(ws.id, "site")
    with pytest.raises(BadRequest, match="already exists"):
        metadata.create_project(ws.id, "site")
    with pytest.raises(BadRequest, match="kind"):
        metadata.create_key("site", "root")
    with pytest.raises(BadRequest, match="allowed_types"):
        metadata.create_key("site", "write", allowed_types=["launch"])
    with pytest.raises(NotFound, match="project"):
        metadata.create_key("nowhere", "write")


def test_default_workspace_and_project(metadata: Metadata) -> None:
    ws, project, created = metadata.ensure_default("enterprise")
    assert created and project.slug == "default" and ws.plan == "enterprise"
    _, again, created = metadata.ensure_default("enterprise")
    assert not created and again == project
