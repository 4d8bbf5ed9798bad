"""A fresh database with the small synthetic sample (seed 7), for the bench scripts that need one of their own
(`corpus.py`, `fuzz_api.py`, `registration.py`; `reimport.py` without the sample): on the cluster `datso db start`
runs, or on the server `DATABASE_URL` names."""

from __future__ import annotations

from layers.settings import Settings


def fresh_sample_db(name: str, *, sample: bool = True) -> Settings:
    """Drop and recreate database `name`, migrate it, load the sample unless `sample=False`; its settings
    (`.dsn()` is its DSN)."""
    from layers.store import db as dbmod
    from layers.store import pgcluster
    from sample_data.generate import load_sample

    base = Settings()
    if base.embedded:
        pgcluster.start(base)
    s = base.model_copy(update={"db_name": name})
    if s.database_url:
        s = s.model_copy(update={"database_url": s.dsn(name)})
    pgcluster.drop_database(s, name)
    pgcluster.ensure_database(s, name)
    dbmod.migrate(s)
    if sample:
        load_sample(s.dsn(), size="small", seed=7, force=True)
    return s
