"""Alembic migrations of the study store."""
