"""Alembic migrations of the directory schema."""
