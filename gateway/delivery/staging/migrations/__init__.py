"""Alembic migrations of the ERP staging tables (run by :mod:`gateway.delivery.staging.migrate`)."""
