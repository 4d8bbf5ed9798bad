"""The catalog: what datso publishes. The layer registry (`registry.py`: each `Layer` with its fields, titles,
queryables, zooms, style and write roles) that routes, SQL, tiles, exports and import iterate over."""
