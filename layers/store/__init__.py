"""The store: how the data is kept. SQLAlchemy/GeoAlchemy2 models (`models.py`) and the vocabularies their
CHECK constraints are generated from (`vocab.py`), Alembic migrations (`migrations/`, `migrations_filter.py`),
the embedded PostgreSQL cluster (`pgcluster.py`), migrate/downgrade (`db.py`), the one database seam every
connection is opened through (`connect.py`: reader/writer roles, session settings) and the one identifier-quoting
helper for SQL built from registry names (`sql.py`)."""
