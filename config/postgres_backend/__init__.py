"""PostgreSQL with one schema per service alias (see `base.DatabaseWrapper`)."""
