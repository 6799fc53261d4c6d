"""The metadata store: workspaces, projects, keys (hash only), salts."""

from __future__ import annotations

from datetime import UTC, datetime
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


def test_a_quarantine_table_of_an_older_roost_takes_ids_of_any_length() -> None:
    """PostgreSQL: the first quarantine table had VARCHAR(255) `who` and `field`; a user id
    longer failed the write (a 503 on every retry of a transformation failure)."""
    import sqlalchemy as sa

    from roost.model import Event
    from roost.storage.metadata.quarantine import QuarantineStore
    from tests.conftest import fresh_postgres_url

    engine = sa.create_engine(fresh_postgres_url())
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(
                "CREATE TABLE quarantine (id SERIAL PRIMARY KEY, project_id INTEGER NOT NULL, "
                "message_id VARCHAR(255) NOT NULL, who VARCHAR(255), at TIMESTAMP NOT NULL, "
                "reason VARCHAR(50) NOT NULL, message TEXT NOT NULL, field VARCHAR(255), "
                "event TEXT NOT NULL, held_at TIMESTAMP NOT NULL, UNIQUE (project_id, message_id))"
            ))  # fmt: skip
        store = QuarantineStore(engine)
        moment = datetime(2024, 5, 1, tzinfo=UTC)
        long_id = "u" * 300
        event = Event(message_id="m", project_id=1, dialect="segment", type="track",
                      event="Buy", timestamp=moment, received_at=moment, user_id=long_id)  # fmt: skip
        store.hold(1, [(event, "transformation_failed", "failed", "properties." + "p" * 300)])
        assert store.count(1) == 1
        kinds = {c["name"]: c["type"] for c in sa.inspect(engine).get_columns("quarantine")}
        assert isinstance(kinds["who"], sa.Text) and isinstance(kinds["field"], sa.Text)
    finally:
        engine.dispose()
