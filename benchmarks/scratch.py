"""Scratch PostgreSQL databases for the benchmarks (CAIRN_BENCH_PG_URL: the admin URL)."""

from __future__ import annotations

import os

from sqlalchemy import create_engine, text

PG_ADMIN = os.environ.get("CAIRN_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _admin(*statements: str) -> None:
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for statement in statements:
            conn.execute(text(statement))
    admin.dispose()


def fresh_database(name: str) -> str:
    """Drop and create database ``name``; returns its URL."""
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def drop_database(name: str) -> None:
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
