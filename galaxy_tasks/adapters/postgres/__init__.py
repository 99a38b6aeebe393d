"""PostgreSQL adapters (SQLAlchemy Core on psycopg2)."""
