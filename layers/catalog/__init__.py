"""The catalog: what datso publishes. The layer registry (`registry.py`: each `Layer` with its fields, titles,
queryables, zooms, style, write roles, field formats, computed fields and lifecycle) that routes, SQL, tiles,
exports and import iterate over; `lifecycle.py` (states, transitions, reasons) and `formats.py` (values as
people read them) are what the entries declare with."""
