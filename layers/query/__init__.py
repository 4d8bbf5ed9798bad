"""Reads: the OGC API – Features item queries (`features.py`), CQL2 text/JSON to parameterised SQL
(`cql2.py`), the map search (`search.py`) and file exports of a selection (`exporter.py`)."""
