"""Database layer: the schema, the engine factory and migrations (SQLite and PostgreSQL)."""
