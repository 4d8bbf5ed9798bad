"""Vector tiles: tile matrix sets, MVT SQL built from the layer registry, the tile cache and its
invalidation, and seeding to PMTiles/MBTiles. See docs/tiles.md."""
