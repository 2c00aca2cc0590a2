"""Shared fixtures: stores on a SQLite file and on the real PostgreSQL server."""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator

import pytest

# Test helpers that are not tests (tests/_cluster.py) import as top-level modules.
sys.path.insert(0, os.path.dirname(__file__))

# The PostgreSQL server the tests use (trust auth). Inside a network namespace without
# 127.0.0.1:5432 use the Unix socket: postgresql://postgres@/test?host=/var/run/postgresql
ADMIN_URL = os.environ.get("HPO_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def _admin_conninfo() -> str:
    return ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")


def _pg_available() -> str | None:
    try:
        import psycopg

        with psycopg.connect(_admin_conninfo(), connect_timeout=3):
            return None
    except Exception as e:  # any failure means: no server for these tests
        return f"{type(e).__name__}: {e}"


@pytest.fixture(scope="session")
def _pg_reason() -> str | None:
    return _pg_available()


@pytest.fixture
def postgres_url(_pg_reason: str | None) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    if _pg_reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI but unreachable: {_pg_reason}")
        pytest.skip(f"PostgreSQL unreachable: {_pg_reason}")
    import psycopg

    name = f"hpo_test_{secrets.token_hex(4)}"
    with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = _admin_conninfo().rsplit("/", 1)[0]
    query = ""
    if "?" in ADMIN_URL:
        query = "?" + ADMIN_URL.split("?", 1)[1]
        base = _admin_conninfo().split("?", 1)[0].rsplit("/", 1)[0]
    yield f"{base}/{name}{query}"
    from sqlalchemy.pool import NullPool  # noqa: F401 - make sure the stores closed first

    with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture
def sqlite_url(tmp_path: object) -> str:
    return f"sqlite:///{tmp_path}/hpo.db"


@pytest.fixture(params=["sqlite", "postgres"])
def storage_url(request: pytest.FixtureRequest) -> str:
    """Every store test runs against a SQLite file and the real PostgreSQL."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("postgres_url"))
