"""datso data model, one subpackage per concern: `store` (models, vocabularies, migrations, the embedded cluster),
`catalog` (the layer registry), `query` (reads: features, CQL2, search, export), `ingest` (validation, import,
writes), `maps` (map selections, Folium exports), `accounts` (API keys); settings (`config`), logging and the
analysts' `read_layer` (`analysis`) stay at the top."""
