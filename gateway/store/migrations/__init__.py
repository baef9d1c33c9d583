"""Alembic migrations of the ledger (run by :mod:`gateway.store.migrate`; no alembic.ini needed)."""
