"""Alembic revisions of the index, oldest first (0001, 0002...)."""
