"""tile cache invalidation: statement-level triggers that pg_notify the changed boxes (EPSG:3857)

Revision ID: 0003
Revises: 0002

Every INSERT/UPDATE/DELETE on a layer table sends, at commit, one notification on channel `datso_tiles`:
{"table": ..., "boxes": [[xmin, ymin, xmax, ymax], ...]} with the bounding boxes of the old and new
geometries (rounded outwards to the metre; distinct boxes, at most 50: beyond that the extents of the old
rows and of the new rows), or {"table": ..., "all": true} after TRUNCATE. Payloads stay < 8000 bytes.

Also: a B-tree index on the area of each geometry's EPSG:3857 bounding box for the layers whose tiles drop
sub-pixel features (tiles/mvt.py writes the same expression): at low zoom, where almost every feature is
below a pixel, the tile query then reads the few large features instead of scanning the whole envelope.
"""
from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BOX_AREA = "((ST_XMax(geom_3857) - ST_XMin(geom_3857)) * (ST_YMax(geom_3857) - ST_YMin(geom_3857)))"
BOX_AREA_TABLES = ("parcels", "growing_areas")
TABLES = ("admin_units", "parcels", "auction_plots", "growing_areas", "packing_facilities",
          "trace_lots", "trace_events")

FN = """
CREATE OR REPLACE FUNCTION datso_tiles_boxes(n bigint, detail jsonb, old_ext box2d, new_ext box2d)
RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN n <= 50 THEN coalesce(detail, '[]'::jsonb)
    ELSE (SELECT coalesce(jsonb_agg(jsonb_build_array(floor(ST_XMin(e)), floor(ST_YMin(e)),
                                                       ceil(ST_XMax(e)), ceil(ST_YMax(e)))), '[]'::jsonb)
          FROM unnest(ARRAY[old_ext, new_ext]) e WHERE e IS NOT NULL) END
$$;
CREATE OR REPLACE FUNCTION datso_tiles_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  n bigint := 0; m bigint := 0; detail jsonb; old_ext box2d; new_ext box2d;
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    PERFORM pg_notify('datso_tiles', jsonb_build_object('table', TG_TABLE_NAME, 'all', true)::text);
    RETURN NULL;
  END IF;
  -- few rows: one box per changed geometry (old and new); many (imports): the two extents
  IF TG_OP IN ('UPDATE', 'DELETE') THEN SELECT count(*) INTO n FROM old_rows; END IF;
  IF TG_OP IN ('UPDATE', 'INSERT') THEN SELECT count(*) INTO m FROM new_rows; END IF;
  IF n + m = 0 THEN RETURN NULL; END IF;
  IF n + m <= 50 THEN
    IF TG_OP = 'INSERT' THEN
      SELECT jsonb_agg(DISTINCT jsonb_build_array(floor(ST_XMin(geom_3857)), floor(ST_YMin(geom_3857)),
                                                   ceil(ST_XMax(geom_3857)), ceil(ST_YMax(geom_3857))))
        INTO detail FROM new_rows WHERE geom_3857 IS NOT NULL;
    ELSIF TG_OP = 'DELETE' THEN
      SELECT jsonb_agg(DISTINCT jsonb_build_array(floor(ST_XMin(geom_3857)), floor(ST_YMin(geom_3857)),
                                                   ceil(ST_XMax(geom_3857)), ceil(ST_YMax(geom_3857))))
        INTO detail FROM old_rows WHERE geom_3857 IS NOT NULL;
    ELSE
      SELECT jsonb_agg(DISTINCT jsonb_build_array(floor(ST_XMin(g)), floor(ST_YMin(g)),
                                                   ceil(ST_XMax(g)), ceil(ST_YMax(g))))
        INTO detail FROM (SELECT geom_3857 AS g FROM old_rows UNION ALL SELECT geom_3857 FROM new_rows) u
        WHERE g IS NOT NULL;
    END IF;
    IF detail IS NULL THEN RETURN NULL; END IF;
  ELSE
    IF TG_OP IN ('UPDATE', 'DELETE') THEN SELECT ST_Extent(geom_3857) INTO old_ext FROM old_rows; END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN SELECT ST_Extent(geom_3857) INTO new_ext FROM new_rows; END IF;
  END IF;
  PERFORM pg_notify('datso_tiles', jsonb_build_object(
    'table', TG_TABLE_NAME, 'boxes', datso_tiles_boxes(n + m, detail, old_ext, new_ext))::text);
  RETURN NULL;
END $$;
"""


def upgrade() -> None:
    for t in BOX_AREA_TABLES:
        op.execute(f"CREATE INDEX ix_{t}_tile_box_area ON {t} ({BOX_AREA})")
    op.execute(FN)
    for t in TABLES:
        op.execute(f"CREATE TRIGGER {t}_tiles_ins AFTER INSERT ON {t} REFERENCING NEW TABLE AS new_rows "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION datso_tiles_notify()")
        op.execute(f"CREATE TRIGGER {t}_tiles_upd AFTER UPDATE ON {t} REFERENCING OLD TABLE AS old_rows "
                   f"NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION datso_tiles_notify()")
        op.execute(f"CREATE TRIGGER {t}_tiles_del AFTER DELETE ON {t} REFERENCING OLD TABLE AS old_rows "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION datso_tiles_notify()")
        op.execute(f"CREATE TRIGGER {t}_tiles_trunc AFTER TRUNCATE ON {t} "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION datso_tiles_notify()")


def downgrade() -> None:
    for t in TABLES:
        for suffix in ("ins", "upd", "del", "trunc"):
            op.execute(f"DROP TRIGGER IF EXISTS {t}_tiles_{suffix} ON {t}")
    op.execute("DROP FUNCTION IF EXISTS datso_tiles_notify()")
    op.execute("DROP FUNCTION IF EXISTS datso_tiles_boxes(bigint, jsonb, box2d, box2d)")
    for t in BOX_AREA_TABLES:
        op.execute(f"DROP INDEX IF EXISTS ix_{t}_tile_box_area")
