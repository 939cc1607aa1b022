"""Alembic migration scripts for annota's schema."""
