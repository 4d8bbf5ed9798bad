"""Writes: validation of incoming rows against the registry and vocabularies (`validation.py`), file import
(`importer.py`) and the OGC API Part 4 transactions (`writes.py`)."""
