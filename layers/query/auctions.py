"""Auction plots people can follow: the status the dates imply, and the upcoming auctions.

An auction plot's stored `status` is moved by people (announced, sold, cancelled) but two of its steps are
dates: registration opens at `registration_start` and closes at `registration_end`. `STATUS_SQL` is the status
those dates imply at a given instant (`$1`), only ever forward along the registry's lifecycle:

- announced or registration_open, registration ended        -> closed
- announced, registration started and not ended             -> registration_open
- anything else (planned, closed, sold, cancelled, no dates) -> the stored status

Every read for people (`upcoming`, the feed) uses it, so no plot is "registration open" after its registration
end whatever the stored value; `advance_statuses` writes it back (the sample after loading, and
`datso sample advance-statuses` from a daily timer), so tiles and the features API agree too.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from layers.catalog.formats import label
from layers.store import vocab

STATUS_SQL = """CASE
    WHEN status IN ('announced', 'registration_open') AND registration_end IS NOT NULL
         AND registration_end <= $1 THEN 'closed'
    WHEN status = 'announced' AND registration_start IS NOT NULL AND registration_start <= $1
         AND (registration_end IS NULL OR registration_end > $1) THEN 'registration_open'
    ELSE status END"""

# the plots people can still act on: announced (registration ahead) or open (registration running)
UPCOMING_STATUSES = ("announced", "registration_open")
VN = dt.timezone(dt.timedelta(hours=7))

UPCOMING_SQL = f"""
SELECT * FROM (
    SELECT id, plot_code, commune_code, address, area_m2, land_use_code, starting_price_vnd, deposit_vnd,
           registration_start, registration_end, auction_date, auction_place, organiser, status AS stored_status,
           {STATUS_SQL} AS status,
           ST_X(ST_PointOnSurface(geom)) AS lon, ST_Y(ST_PointOnSurface(geom)) AS lat,
           ST_XMin(geom) AS x1, ST_YMin(geom) AS y1, ST_XMax(geom) AS x2, ST_YMax(geom) AS y2,
           greatest(updated_at, created_at) AS updated
    FROM auction_plots
    WHERE status IN ('announced', 'registration_open') AND (auction_date IS NULL OR auction_date > $1)
      AND ($2::text IS NULL OR commune_code = $2)
) s
WHERE status = ANY($3::text[])
ORDER BY registration_end NULLS LAST, auction_date, plot_code
LIMIT $4
"""  # noqa: S608 (constant text: STATUS_SQL; values are parameters)


def days_left(deadline: dt.datetime | None, now: dt.datetime) -> int | None:
    """Whole days from today to the deadline's day, both in Vietnam time (0 = the deadline is today)."""
    if deadline is None:
        return None
    return (deadline.astimezone(VN).date() - now.astimezone(VN).date()).days


async def upcoming(conn: Any, now: dt.datetime, commune: str | None = None, limit: int = 200,
                   lang: str = "vi") -> list[dict[str, Any]]:
    """The plots whose registration is open or ahead, soonest registration deadline first."""
    rows = await conn.fetch(UPCOMING_SQL, now, commune, list(UPCOMING_STATUSES), limit)
    names = {r["code"]: r["name"] for r in await conn.fetch(
        "SELECT DISTINCT ON (code) code, name FROM admin_units WHERE code = ANY($1::text[]) "
        "ORDER BY code, valid_to DESC NULLS FIRST", list({r["commune_code"] for r in rows}))}
    out = []
    for r in rows:
        out.append({
            "id": r["id"], "plot_code": r["plot_code"], "status": r["status"],
            "status_label": label(r["status"], lang),
            "commune_code": r["commune_code"], "commune_name": names.get(r["commune_code"]),
            "address": r["address"], "area_m2": float(r["area_m2"]), "land_use_code": r["land_use_code"],
            "land_use_name": vocab.LAND_USE_CODES.get(r["land_use_code"], r["land_use_code"]),
            "starting_price_vnd": r["starting_price_vnd"], "deposit_vnd": r["deposit_vnd"],
            "registration_start": r["registration_start"].isoformat() if r["registration_start"] else None,
            "registration_end": r["registration_end"].isoformat() if r["registration_end"] else None,
            "days_left": days_left(r["registration_end"], now),
            "auction_date": r["auction_date"].isoformat() if r["auction_date"] else None,
            "auction_place": r["auction_place"], "organiser": r["organiser"],
            "point": [r["lon"], r["lat"]], "bbox": [r["x1"], r["y1"], r["x2"], r["y2"]],
            "updated": r["updated"],
        })
    return out


ADVANCE_SQL = f"""
UPDATE auction_plots SET status = {STATUS_SQL}, updated_at = now()
WHERE status IN ('announced', 'registration_open') AND status <> {STATUS_SQL}
"""  # noqa: S608 (constant text)


def advance_statuses(cur: Any, now: dt.datetime) -> int:
    """Write the date-implied status back (a psycopg cursor); the number of plots moved."""
    cur.execute(ADVANCE_SQL.replace("$1", "%(now)s"), {"now": now})
    return int(cur.rowcount)
