"""Issue 13: real administrative units of Vĩnh Long, the old->new crosswalk, `/admin/crosswalk`, exclusive
validity ends, forgiving search and a believable sample. Every expectation comes from SQL or the packages."""

from __future__ import annotations

import unicodedata

import psycopg
import pytest
from vietnam_provinces import Ward

from sample_data import names
from sample_data.generate import dossier_fee_cap


def _strip(text: str) -> str:
    nfd = unicodedata.normalize("NFD", text.replace("Đ", "D").replace("đ", "d"))
    return "".join(c for c in nfd if not unicodedata.combining(c)).lower()


# -- real units ----------------------------------------------------------------------------------------------

def test_vinh_long_has_its_real_124_units(conn: psycopg.Connection) -> None:
    real = {f"{int(w.code):05d}": w.name for w in Ward.iter_all() if int(w.province_code) == 86}
    assert len(real) == 124
    rows = conn.execute("SELECT code, name, kind, parent_code, synthetic FROM admin_units "
                        "WHERE scheme = '2025' AND level = 'commune'").fetchall()
    assert {r[0]: r[1] for r in rows} == real
    assert all(r[3] == "86" and r[4] is True for r in rows)
    assert {r[2] for r in rows} == {"ward", "commune"}
    assert all((r[2] == "ward") == r[1].startswith("Phường ") for r in rows)


def test_old_units_and_their_tm3_zones(conn: psycopg.Connection) -> None:
    rows = dict(conn.execute("SELECT code, tm3_srid FROM admin_units WHERE scheme = '2004' AND level = 'province'"
                             ).fetchall())
    assert rows == {"83": 9210, "84": 9209, "86": 9209}   # Bến Tre 105°45′, Trà Vinh and Vĩnh Long 105°30′
    # every parcel's old commune is an old unit with a zone, through its district to its province
    n = conn.execute(
        "SELECT count(*) FILTER (WHERE o.tm3_srid IS NULL OR pr.tm3_srid <> o.tm3_srid), count(*) FROM parcels p "
        "JOIN admin_units o ON o.code = p.old_commune_code AND o.scheme = '2004' AND o.level = 'commune' "
        "JOIN admin_units d ON d.code = o.parent_code AND d.scheme = '2004' AND d.level = 'district' "
        "JOIN admin_units pr ON pr.code = d.parent_code AND pr.scheme = '2004' AND pr.level = 'province'").fetchone()
    total = conn.execute("SELECT count(*) FROM parcels").fetchone()
    assert n is not None and total is not None and n[0] == 0 and n[1] == total[0]


def test_crosswalk_shares_add_up_to_one_per_old_unit(conn: psycopg.Connection) -> None:
    rows = conn.execute("SELECT old_level, old_code, sum(share), count(*) FROM admin_crosswalk "
                        "GROUP BY old_level, old_code").fetchall()
    assert {r[0] for r in rows} == {"province", "district", "commune"}
    assert all(r[2] == 1 for r in rows), [r for r in rows if r[2] != 1][:5]
    old = conn.execute("SELECT count(*) FROM admin_units WHERE scheme = '2004' AND level = 'commune'").fetchone()
    assert old is not None and sum(1 for r in rows if r[0] == "commune") == old[0]
    assert any(r[3] > 1 for r in rows if r[0] == "commune")   # some old communes were divided
    # every new unit was made from at least one old one
    orphan = conn.execute("SELECT count(*) FROM admin_units u WHERE scheme = '2025' AND level = 'commune' AND NOT "
                          "EXISTS (SELECT 1 FROM admin_crosswalk c WHERE c.new_code = u.code "
                          "AND c.old_level = 'commune')").fetchone()
    assert orphan is not None and orphan[0] == 0


def test_crosswalk_shares_agree_with_the_shapes(conn: psycopg.Connection) -> None:
    bad = conn.execute(
        "SELECT c.old_code, c.new_code, c.share, ST_Area(ST_Intersection(o.geom, n.geom)) / ST_Area(o.geom) "
        "FROM admin_crosswalk c JOIN admin_units o ON o.code = c.old_code AND o.scheme = '2004' AND o.level = 'commune' "
        "JOIN admin_units n ON n.code = c.new_code AND n.scheme = '2025' "
        "WHERE c.old_level = 'commune' AND abs(c.share - ST_Area(ST_Intersection(o.geom, n.geom)) / ST_Area(o.geom)) "
        "> 0.001").fetchall()
    assert bad == []


def test_crosswalk_route_old_to_new(client, conn: psycopg.Connection) -> None:
    old_code, n = conn.execute("SELECT old_code, count(*) FROM admin_crosswalk WHERE old_level = 'commune' "
                               "GROUP BY old_code HAVING count(*) > 1 ORDER BY old_code LIMIT 1").fetchone()
    expected = {(r[0], float(r[1])) for r in conn.execute(
        "SELECT new_code, share FROM admin_crosswalk WHERE old_code = %s", [old_code])}
    r = client.get("/admin/crosswalk", params={"old": old_code})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["old"]["code"] == old_code and body["split"] is True and len(body["new"]) == n
    assert {(u["code"], u["share"]) for u in body["new"]} == expected
    assert body["effective"] == "2025-07-01"


def test_crosswalk_route_new_to_old(client, conn: psycopg.Connection) -> None:
    new_code, new_name = conn.execute("SELECT code, name FROM admin_units WHERE scheme = '2025' AND kind = 'ward' "
                                      "ORDER BY code LIMIT 1").fetchone()
    expected = {r[0] for r in conn.execute(
        "SELECT old_code FROM admin_crosswalk WHERE new_code = %s", [new_code])}
    r = client.get("/admin/crosswalk", params={"new": new_code})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["new"] == {"code": new_code, "scheme": "2025", "name": new_name}
    assert {u["code"] for u in body["old"]} == expected and expected


@pytest.mark.parametrize("params, status, needle", [
    ({}, 400, "exactly one parameter"),
    ({"old": "1", "new": "2"}, 400, "exactly one parameter"),
    ({"old": "abc"}, 400, "old: an administrative unit code"),
    ({"new": "99999"}, 404, "new: no code 99999"),
    ({"address": "   "}, 400, "address"),
])
def test_crosswalk_bad_input(client, params: dict[str, str], status: int, needle: str) -> None:
    r = client.get("/admin/crosswalk", params={**params, "lang": "en"})
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert needle in r.json()["detail"]


def test_old_address_is_converted(client, conn: psycopg.Connection) -> None:
    # Phường Phú Khương of the old city of Bến Tre is kept as a ward of the new Vĩnh Long
    code = conn.execute("SELECT new_code FROM admin_crosswalk WHERE old_code = '28756' ORDER BY share DESC LIMIT 1"
                        ).fetchone()[0]
    r = client.get("/admin/crosswalk", params={
        "address": "85 Đồng Khởi, Phường Phú Khương, Thành phố Bến Tre, Tỉnh Bến Tre"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["new"]["province_code"] == "86" and body["new"]["ward_code"] == code
    assert body["new"]["street"] == "85 Đồng Khởi" and "Tỉnh Vĩnh Long" in body["converted"]


# -- validity: the end is exclusive --------------------------------------------------------------------------

def test_end_date_is_exclusive(client, conn: psycopg.Connection) -> None:
    def codes(day: str) -> set[tuple[str, str]]:
        r = client.get("/collections/admin_units/items", params={"datetime": day, "limit": 10000, "level": "province"})
        assert r.status_code == 200, r.text
        return {(f["properties"]["code"], f["properties"]["scheme"]) for f in r.json()["features"]}

    on_reform = codes("2025-07-01")
    assert on_reform == {tuple(r) for r in conn.execute(
        "SELECT code, scheme FROM admin_units WHERE level = 'province' AND valid_from <= '2025-07-01' "
        "AND coalesce(valid_to, 'infinity') > '2025-07-01'")}
    assert on_reform == {("86", "2025")}
    assert codes("2025-06-30") == {("83", "2004"), ("84", "2004"), ("86", "2004")}


# -- forgiving search ----------------------------------------------------------------------------------------

def _ward_parcel(conn: psycopg.Connection) -> tuple[int, str]:
    """A parcel in a ward with a street address whose words are found together in no other parcel's address."""
    for pid, address in conn.execute("SELECT id, address FROM parcels WHERE address LIKE '%, phường %' "
                                     "AND address ~ '^[0-9]+ ' ORDER BY id"):
        n = conn.execute("SELECT count(*) FROM parcels WHERE address = %s", [address]).fetchone()
        if n is not None and n[0] == 1:
            return int(pid), str(address)
    raise AssertionError("no ward parcel with a unique address")


def _search(client, q: str, **params: str) -> dict:
    r = client.get("/search", params={"q": q, "limit": 10, **params})
    assert r.status_code == 200, r.text
    return r.json()


def test_search_without_accents_and_reordered(client, conn: psycopg.Connection) -> None:
    pid, address = _ward_parcel(conn)              # "85 Đồng Khởi, phường Phú Khương"
    number_street, unit = address.split(", ")
    street = number_street.split(" ", 1)[1]
    unit_name = unit.split(" ", 1)[1]
    queries = [_strip(address),                                  # no accents
               f"{_strip(street)} {_strip(unit_name)}",          # no number, no prefix
               f"{_strip(unit_name)} {_strip(number_street)}"]   # another order
    for q in queries:
        body = _search(client, q, layers="parcels", limit="50")
        assert str(pid) in {f["id"] for f in body["features"]}, q


def test_search_parts_of_words(client, conn: psycopg.Connection) -> None:
    pid, address = _ward_parcel(conn)
    words = _strip(address).replace(",", "").split(" ")
    longest = max(words, key=len)
    q = " ".join(w[1:-1] if w == longest else w for w in words)     # "85 ong kho phuong phu khuong"
    body = _search(client, q, layers="parcels", limit="50")
    assert str(pid) in {f["id"] for f in body["features"]}, q
    cut = " ".join(words)[:-1]                                        # the last word typed halfway
    body = _search(client, cut, layers="parcels", limit="50")
    assert str(pid) in {f["id"] for f in body["features"]}, cut


def test_search_with_a_typo(client, conn: psycopg.Connection) -> None:
    pid, address = _ward_parcel(conn)
    folded = _strip(address)
    # one letter of the street name swapped for another
    number, rest = folded.split(" ", 1)
    typo = number + " " + rest[:2] + ("x" if rest[2] != "x" else "z") + rest[3:]
    assert typo != folded
    body = _search(client, typo, layers="parcels", limit="50")
    assert body["match"] == "similar"
    assert str(pid) in {f["id"] for f in body["features"]}


def test_search_an_old_commune_finds_its_successor(client, conn: psycopg.Connection) -> None:
    # an abolished commune whose name no new unit has
    old_id, old_code, old_name = conn.execute(
        "SELECT o.id, o.code, o.name FROM admin_units o WHERE o.scheme = '2004' AND o.level = 'commune' AND o.kind = 'commune' "
        "AND NOT EXISTS (SELECT 1 FROM admin_units n WHERE n.scheme = '2025' AND n.name = o.name) "
        "AND (SELECT count(*) FROM admin_units x WHERE x.name = o.name) = 1 ORDER BY o.code LIMIT 1").fetchone()
    successors = [r[0] for r in conn.execute(
        "SELECT new_name FROM admin_crosswalk WHERE old_code = %s AND old_level = 'commune' "
        "ORDER BY share DESC, new_code", [old_code])]
    body = _search(client, _strip(old_name.split(" ", 1)[1]), layers="admin_units")
    hit = next(f for f in body["features"] if f["id"] == str(old_id))   # new units may reuse an old code
    assert [u["name"] for u in hit["properties"]["replaced_by"]] == successors
    assert successors[0] in hit["properties"]["label"] and "nay thuộc" in hit["properties"]["label"]


def test_search_sheet_and_parcel(client, conn: psycopg.Connection) -> None:
    sheet, parcel = conn.execute("SELECT map_sheet, parcel_no FROM parcels WHERE map_sheet > 1 "
                                 "GROUP BY 1, 2 HAVING count(*) <= 10 ORDER BY 1 DESC, 2 LIMIT 1").fetchone()
    expected = {str(r[0]) for r in conn.execute(
        "SELECT id FROM parcels WHERE map_sheet = %s AND parcel_no = %s", [sheet, parcel])}
    body = _search(client, f"{sheet}/{parcel}", layers="parcels")
    assert {f["id"] for f in body["features"]} == expected
    assert all(f["properties"]["exact"] for f in body["features"])


def test_search_found_nowhere_returns_nothing(client) -> None:
    body = _search(client, "VN-99-ZZZ-QQQ-404")
    assert body["features"] == [] and body["numberReturned"] == 0 and body["match"] is None


def test_every_searchable_layer_has_its_trigram_index(conn: psycopg.Connection) -> None:
    from layers.catalog.registry import get_layer
    from layers.query.search import document_sql, searchable_layers

    for layer in searchable_layers():
        if not layer.search_fields:
            continue
        row = conn.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s",
                           [f"ix_{layer.table}_search_trgm"]).fetchone()
        assert row is not None, layer.id
        assert "gin_trgm_ops" in row[0] and "datso_fold" in row[0]
        assert all(name in row[0] for name in layer.search_fields), (layer.id, row[0])
        words = conn.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s",
                             [f"ix_{layer.table}_search_words"]).fetchone()
        assert words is not None and "to_tsvector" in words[0], layer.id
    # and the planner uses it for the search's own expression
    conn.execute("SET enable_seqscan = off")
    plan = "\n".join(r[0] for r in conn.execute(
        f"EXPLAIN SELECT 1 FROM parcels t WHERE {document_sql(get_layer('parcels'))} LIKE '%abcd%'"))  # noqa: S608
    assert "ix_parcels_search_trgm" in plan, plan
    conn.rollback()


# -- a sample an officer would believe -----------------------------------------------------------------------

def test_housing_lots_are_100_to_300_m2_and_urban_in_wards(conn: psycopg.Connection) -> None:
    row = conn.execute("SELECT count(*), min(area_m2), max(area_m2) FROM parcels "
                       "WHERE land_use_codes && ARRAY['ONT', 'ODT']::varchar[]").fetchone()
    assert row is not None and row[0] > 100 and 100 <= row[1] and row[2] <= 300
    wrong = conn.execute(
        "SELECT count(*) FROM parcels p JOIN admin_units u ON u.code = p.commune_code AND u.scheme = '2025' "
        "WHERE ('ODT' = ANY(p.land_use_codes) AND u.kind <> 'ward') "
        "OR ('ONT' = ANY(p.land_use_codes) AND u.kind = 'ward')").fetchone()
    assert wrong is not None and wrong[0] == 0
    odt = conn.execute("SELECT count(*) FROM parcels WHERE 'ODT' = ANY(land_use_codes)").fetchone()
    assert odt is not None and odt[0] > 0


def test_owner_names_agree_with_gender(conn: psycopg.Connection) -> None:
    owners = [r[0] for r in conn.execute("SELECT owner FROM growing_areas UNION ALL SELECT owner "
                                         "FROM packing_facilities WHERE owner IS NOT NULL")]
    assert len(owners) > 100
    women = men = 0
    for owner in owners:
        _surname, middle, given = owner.split(" ")
        if middle == "Thị":
            assert given in names.FEMALE_GIVEN, owner
            women += 1
        if middle == "Văn":
            assert given in names.MALE_GIVEN, owner
            men += 1
        assert (given in names.FEMALE_GIVEN) != (given in names.MALE_GIVEN), owner
    assert women > 0 and men > 0


def test_auction_dossier_fees_within_the_caps(conn: psycopg.Connection) -> None:
    # Circular 48/2017/TT-BTC Art. 3(2), written here in SQL on its own
    over = conn.execute(
        "SELECT plot_code, dossier_fee_vnd FROM auction_plots WHERE dossier_fee_vnd > CASE "
        "WHEN land_use_code IN ('ONT', 'ODT') THEN CASE WHEN starting_price_vnd <= 200000000 THEN 100000 "
        "  WHEN starting_price_vnd <= 500000000 THEN 200000 ELSE 500000 END "
        "ELSE CASE WHEN area_m2 <= 5000 THEN 1000000 WHEN area_m2 <= 20000 THEN 3000000 ELSE 5000000 END END"
    ).fetchall()
    assert over == []
    assert dossier_fee_cap("ONT", 150_000_000, 120) == 100_000
    housing = conn.execute("SELECT count(*) FILTER (WHERE land_use_code IN ('ONT', 'ODT')), count(*), "
                           "min(starting_price_vnd / area_m2) FILTER (WHERE land_use_code = 'ODT') "
                           "FROM auction_plots").fetchone()
    assert housing is not None and housing[0] > housing[1] / 2 and housing[2] >= 7_500_000


def test_managers_fit_the_land_use(conn: psycopg.Connection) -> None:
    rows = conn.execute("SELECT land_use_codes[1], managing_body, count(*) FROM parcels GROUP BY 1, 2").fetchall()
    by_use: dict[str, set[str]] = {}
    for use, body, _n in rows:
        by_use.setdefault(use, set()).add(body.split(" ")[0] if body.startswith("UBND") else body)
    assert by_use["DGD"] == {"Sở Giáo dục và Đào tạo"} and by_use["DYT"] == {"Sở Y tế"}
    assert by_use["TSC"] == {"UBND"} and by_use["DGT"] == {"Sở Xây dựng"}
    # a commune's own land is managed by that commune's or ward's people's committee
    wrong = conn.execute(
        "SELECT count(*) FROM parcels p JOIN admin_units u ON u.code = p.commune_code AND u.scheme = '2025' "
        "WHERE p.managing_body LIKE 'UBND %' AND lower(substr(u.name, 1, 1)) || substr(u.name, 2) "
        "<> substr(p.managing_body, 6)").fetchone()
    assert wrong is not None and wrong[0] == 0


def test_sheets_are_numbered_per_old_commune(conn: psycopg.Connection) -> None:
    row = conn.execute("SELECT count(*) FROM (SELECT old_commune_code, map_sheet, parcel_no FROM parcels "
                       "GROUP BY 1, 2, 3 HAVING count(*) > 1) d").fetchone()
    assert row is not None and row[0] == 0
    starts = conn.execute("SELECT count(*) FILTER (WHERE min_sheet = 1), count(*) FROM (SELECT old_commune_code, "
                          "min(map_sheet) AS min_sheet FROM parcels GROUP BY 1) s").fetchone()
    assert starts is not None and starts[0] == starts[1] > 100


def test_growing_area_codes_use_the_units_of_their_issue_date(conn: psycopg.Connection) -> None:
    rows = conn.execute("SELECT code, valid_from FROM growing_areas").fetchall()
    old_units = {r[0]: r[1] for r in conn.execute(
        "SELECT code, parent_code FROM admin_units WHERE scheme = '2004'")}
    new_units = {r[0] for r in conn.execute("SELECT code FROM admin_units WHERE scheme = '2025'")}
    before = after = 0
    for code, issued in rows:
        parts = code.split("-")
        if issued.isoformat() < "2025-07-01":     # VN-<province>-<district>-<commune>-<nn>-<YY>, 2004 codes
            _vn, prov, district, commune, _nn, _yy = parts
            assert old_units[commune] == district and old_units[district] == prov, code
            before += 1
        else:                                     # VN-<province>-<commune>-<nn>-<YY>, 2025 codes
            _vn, prov, commune, _nn, _yy = parts
            assert prov == "86" and commune in new_units, code
            after += 1
        assert parts[-1] == f"{issued.year % 100:02d}"
    assert before > 0 and after > 0


def test_parcel_key_is_per_old_commune(sample_db: str) -> None:
    """The import's duplicate check follows the key (commune, old commune, sheet, parcel), an empty old commune
    being one value, like the database's UNIQUE NULLS NOT DISTINCT."""
    from shapely.geometry import shape

    from layers.catalog.registry import get_layer
    from layers.ingest.validation import validate_records

    parcels = get_layer("parcels")
    square = shape({"type": "MultiPolygon", "coordinates": [[[[106.3, 10.2], [106.3003, 10.2], [106.3003, 10.2003],
                                                              [106.3, 10.2003], [106.3, 10.2]]]]})
    with psycopg.connect(sample_db) as c:
        commune, old, sheet, parcel = c.execute(
            "SELECT commune_code, old_commune_code, map_sheet, parcel_no FROM parcels ORDER BY id LIMIT 1").fetchone()
        other_old = c.execute("SELECT code FROM admin_units WHERE scheme = '2004' AND level = 'commune' "
                              "AND code <> %s ORDER BY code LIMIT 1", [old]).fetchone()[0]
        base = {"commune_code": commune, "map_sheet": sheet, "parcel_no": parcel, "area_m2": 100.0,
                "land_use_codes": ["ONT"]}
        same = validate_records(parcels, [({**base, "old_commune_code": old}, square)], c)
        assert [i.code for i in same] == ["duplicate_in_db"]
        # the same sheet and parcel number in another old commune of the same new commune is another parcel
        assert validate_records(parcels, [({**base, "old_commune_code": other_old}, square)], c) == []
        # without an old commune: one key; twice in a batch is a duplicate
        assert validate_records(parcels, [(base, square)], c) == []
        twice = validate_records(parcels, [(base, square), (base, square)], c)
        assert [i.code for i in twice] == ["duplicate_in_batch"]
        c.execute("INSERT INTO parcels (commune_code, map_sheet, parcel_no, area_m2, land_use_codes, geom) "
                  "VALUES (%s, %s, %s, 100, ARRAY['ONT'], ST_Multi(ST_GeomFromText(%s, 4326)))",
                  [commune, sheet, parcel, square.geoms[0].wkt])
        assert [i.code for i in validate_records(parcels, [(base, square)], c)] == ["duplicate_in_db"]
        with pytest.raises(psycopg.errors.UniqueViolation):
            c.execute("INSERT INTO parcels (commune_code, map_sheet, parcel_no, area_m2, land_use_codes, geom) "
                      "VALUES (%s, %s, %s, 100, ARRAY['ONT'], ST_Multi(ST_GeomFromText(%s, 4326)))",
                      [commune, sheet, parcel, square.geoms[0].wkt])
        c.rollback()
