"""Write the web map's offline basemap (api/static/vendor/natural-earth/countries-vn.geojson) from Natural Earth.

Source: `world-atlas@2.0.2` (npm; Natural Earth 4.1.0 admin-0 countries at 1:10m as TopoJSON, public domain).
Vietnam and its neighbours, made valid, clipped to 100–110°E, 7.5–23.5°N (the clip leaves out the Paracel and
Spratly islands, which Natural Earth does not assign the way Vietnam does), 0.001° precision, names in
Vietnamese and English:

    cd /tmp && npm pack world-atlas@2.0.2 && tar xzf world-atlas-2.0.2.tgz
    python scripts/make_basemap.py /tmp/package/countries-10m.json api/static/vendor/natural-earth/countries-vn.geojson
"""

from __future__ import annotations

import json
import sys

import pyogrio
import shapely

NAMES = {"Vietnam": "Việt Nam", "Cambodia": "Campuchia", "Laos": "Lào", "Thailand": "Thái Lan",
         "China": "Trung Quốc"}
CLIP = (100, 7.5, 110, 23.5)


def main(src: str, dest: str) -> None:
    df = pyogrio.read_dataframe(src, layer="countries")
    feats = []
    for name, geom in zip(df.name, df.geometry, strict=True):
        if name not in NAMES:
            continue
        g = shapely.set_precision(shapely.clip_by_rect(shapely.make_valid(geom), *CLIP), 0.001)
        if g.is_empty:
            continue
        feats.append({"type": "Feature", "properties": {"name_en": name, "name_vi": NAMES[name], "home": name == "Vietnam"},
                      "geometry": json.loads(shapely.to_geojson(g))})
    with open(dest, "w", encoding="utf-8") as f:
        json.dump({"type": "FeatureCollection", "name": "natural-earth-10m-countries-vn-region", "features": feats},
                  f, ensure_ascii=False, separators=(",", ":"))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
