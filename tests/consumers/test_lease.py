"""The workers' lease: one holder at a time, and a dead holder frees it at once."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from roost.consumers.lease import AdvisoryLease, FileLease, lease_for
from tests.conftest import fresh_postgres_url


def test_file_lease_has_one_holder(tmp_path: Path) -> None:
    first, second = FileLease(tmp_path / "x.lease"), FileLease(tmp_path / "x.lease")
    assert first.try_take() and first.held()
    assert not second.try_take()
    first.release()  # as the kernel does for a killed process's files
    assert second.try_take()
    second.release()


@pytest.mark.slow
def test_advisory_lease_is_freed_when_its_session_dies() -> None:
    url = fresh_postgres_url()
    first, second = AdvisoryLease(url, "consumers"), AdvisoryLease(url, "consumers")
    assert first.try_take() and first.held()
    assert not second.try_take()
    assert not second.held()
    # The holder's server session ends (its process was killed, its connection dropped)
    dsn = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks "
            "WHERE locktype = 'advisory' AND objid = %s AND granted",
            (first.key,),
        )
    assert not first.held()
    assert second.try_take() and second.held()
    first.release()
    second.release()


def test_lease_follows_the_metadata_url(tmp_path: Path) -> None:
    assert isinstance(lease_for(f"sqlite:///{tmp_path}/m.sqlite", tmp_path, "c"), FileLease)
    found = lease_for("postgresql+psycopg://u@127.0.0.1:1/db", tmp_path, "c")
    assert isinstance(found, AdvisoryLease)
    found.release()
