"""Presentation: map selections and labels (`maps.py`) and the self-contained Folium HTML export
(`folium_export.py`), with the Leaflet it inlines vendored in `vendor/leaflet/` (the API serves it at
`/static/vendor/leaflet/`)."""
