"""Seeding PMTiles/MBTiles with `datso tiles seed`: archive tiles equal live tiles byte for byte, and the
server serves a seeded archive."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from tiles_support import get_tile, tile_client

from layers.catalog.registry import get_layer
from layers.settings import Settings
from tiles.archive import TileArchive
from tiles.seed import tile_list
from tiles.tms import TileID

LAYERS = "parcels,auction_plots"
ZOOMS = (13, 15)


def _bbox(dsn: str) -> str:
    """~2 x 2 km around the auction plot with the most parcels nearby."""
    with psycopg.connect(dsn) as c:
        lon, lat = c.execute(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(a.geom) p, (SELECT count(*) FROM parcels n "
            "WHERE n.geom_3857 && ST_Expand(a.geom_3857, 1000)) k FROM auction_plots a ORDER BY k DESC, a.id "
            "LIMIT 1) s").fetchone()  # type: ignore[misc]
    return f"{lon - 0.01},{lat - 0.01},{lon + 0.01},{lat + 0.01}"


def _seed(dsn: str, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": dsn}
    return subprocess.run([sys.executable, "-m", "cli.main", "tiles", "seed", *extra, "--out", str(out)],
                          env=env, capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).parent.parent)


@pytest.mark.parametrize("suffix", [".pmtiles", ".mbtiles"])
def test_seeded_archive_equals_live_tiles(sample_db: str, settings: Settings, tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"province{suffix}"
    bbox = _bbox(sample_db)
    res = _seed(sample_db, out, "--layers", LAYERS, "--zooms", f"{ZOOMS[0]}-{ZOOMS[1]}", "--bbox", bbox)
    assert res.returncode == 0, res.stderr
    assert "tiles written" in res.stderr
    arch = TileArchive.open(out)
    try:
        assert arch.layers == tuple(LAYERS.split(",")) and (arch.minzoom, arch.maxzoom) == ZOOMS
        layers = [get_layer(i) for i in LAYERS.split(",")]
        tiles = tile_list(layers, range(ZOOMS[0], ZOOMS[1] + 1), tuple(float(v) for v in bbox.split(",")))  # type: ignore[arg-type]
        assert len(tiles) >= 6
        written = 0
        with tile_client(settings, sample_db, cache_enabled=False) as live:
            for t in tiles:
                r = get_tile(live, f"/tiles/{t.z}/{t.x}/{t.y}.mvt?layers={LAYERS}")
                gz = arch.get_gz(t)
                if r.status_code == 204:
                    assert gz == b""
                else:
                    assert gzip.decompress(gz) == r.content, t
                    written += 1
        assert written >= 3
    finally:
        arch.close()
    # the server serves the archive: same bytes, ETag, 204 outside the data, 404 outside its zooms
    with tile_client(settings, sample_db, archive=out) as srv:
        tj = srv.get("/tiles/archive/tilejson.json").json()
        assert tj["minzoom"] == ZOOMS[0] and [v["id"] for v in tj["vector_layers"]] == LAYERS.split(",")
        t = tiles[len(tiles) // 2]
        live_bytes = get_tile(srv, f"/tiles/{t.z}/{t.x}/{t.y}.mvt?layers={LAYERS}")
        r = get_tile(srv, f"/tiles/archive/{t.z}/{t.x}/{t.y}.mvt")
        assert r.status_code == live_bytes.status_code and r.content == live_bytes.content
        if r.status_code == 200:
            assert get_tile(srv, f"/tiles/archive/{t.z}/{t.x}/{t.y}.mvt",
                            **{"if-none-match": r.headers["etag"]}).status_code == 304
        assert get_tile(srv, f"/tiles/archive/{ZOOMS[0]}/0/0.mvt").status_code == 204
        far = get_tile(srv, "/tiles/archive/3/0/0.mvt")
        assert far.status_code == 404 and far.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(("args", "needle"), [
    (["--zooms", "16-8"], "zooms"),
    (["--zooms", "a-b"], "zooms"),
    (["--bbox", "1,2,3"], "bbox"),
    (["--bbox", "107,10,106,11"], "bbox"),
    (["--layers", "parcels,nope"], "nope"),
])
def test_seed_refuses_bad_arguments(sample_db: str, tmp_path: Path, args: list[str], needle: str) -> None:
    out = tmp_path / "x.pmtiles"
    res = _seed(sample_db, out, *args)
    assert res.returncode == 2
    assert needle in res.stderr
    assert not out.exists()


def test_seed_refuses_bad_output_name(sample_db: str, tmp_path: Path) -> None:
    res = _seed(sample_db, tmp_path / "x.zip", "--zooms", "14-14", "--bbox", _bbox(sample_db))
    assert res.returncode == 1 and ".pmtiles or .mbtiles" in res.stderr
    assert not list(tmp_path.iterdir())


def test_no_archive_configured_is_404(sample_db: str, settings: Settings) -> None:
    with tile_client(settings, sample_db) as c:
        r = get_tile(c, "/tiles/archive/14/0/0.mvt")
    assert r.status_code == 404 and "DATSO_TILE_ARCHIVE" in r.json()["detail"]


def test_archive_tile_helper_roundtrip(tmp_path: Path) -> None:
    """tile_list orders tiles by PMTiles tile id (clustered archive) and covers the bbox at each zoom."""
    from pmtiles.tile import zxy_to_tileid

    tiles = tile_list([get_layer("parcels")], range(14, 16), (106.0, 10.0, 106.02, 10.02))
    ids = [zxy_to_tileid(t.z, t.x, t.y) for t in tiles]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert {t.z for t in tiles} == {14, 15}
    assert TileID(14, tiles[0].x, tiles[0].y) in tiles
