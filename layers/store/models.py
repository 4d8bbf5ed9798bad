"""SQLAlchemy 2 + GeoAlchemy2 models: the one definition of every table (Alembic migrations are generated
from these). Geometries are stored in EPSG:4326 with a generated EPSG:3857 copy (`geom_3857`) for tiles;
both have GiST indexes, and `CHECK (ST_IsValid(geom))` refuses invalid shapes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from layers.store import vocab

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _in(column: str, values: tuple[str, ...] | list[str]) -> str:
    quoted = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
    return f"{column} IN ({quoted})"


def _not_in(column: str, values: tuple[str, ...] | list[str]) -> str:
    quoted = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
    return f"{column} NOT IN ({quoted})"


def _array_in(column: str, values: tuple[str, ...] | list[str]) -> str:
    quoted = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
    return f"{column} <@ ARRAY[{quoted}]::varchar[]"


def geom_col(kind: str, nullable: bool = False) -> Any:
    return mapped_column(Geometry(kind, srid=4326, spatial_index=False), nullable=nullable)


def geom_3857_col(kind: str) -> Any:
    return mapped_column(Geometry(kind, srid=3857, spatial_index=False),
                         Computed("ST_Transform(geom, 3857)", persisted=True))


# Area of the EPSG:3857 bounding box: indexed on layers whose tiles drop sub-pixel features, so a low-zoom
# tile reads only the few large features (tiles/mvt.py uses the same expression; migration 0003).
TILE_BOX_AREA = "((ST_XMax(geom_3857) - ST_XMin(geom_3857)) * (ST_YMax(geom_3857) - ST_YMin(geom_3857)))"


def tile_box_area_index(table: str) -> Index:
    return Index(f"ix_{table}_tile_box_area", text(TILE_BOX_AREA))


def spatial_checks(table: str, nullable: bool = False) -> tuple[Any, ...]:
    valid = "geom IS NULL OR ST_IsValid(geom)" if nullable else "ST_IsValid(geom)"
    return (
        CheckConstraint(valid, name="geom_valid"),
        Index(f"ix_{table}_geom", "geom", postgresql_using="gist"),
        Index(f"ix_{table}_geom_3857", "geom_3857", postgresql_using="gist"),
    )


class Timestamps:
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class AdminUnit(Timestamps, Base):
    """Province/commune (2025 two-tier scheme) and, for the crosswalk, old 2004-scheme units."""

    __tablename__ = "admin_units"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(8))
    scheme: Mapped[str] = mapped_column(String(8), server_default="2025")
    level: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str | None] = mapped_column(String(16))            # ward / commune / township ... (0010)
    name: Mapped[str] = mapped_column(Text)
    parent_code: Mapped[str | None] = mapped_column(String(8))
    tm3_srid: Mapped[int | None] = mapped_column(Integer)            # VN-2000 TM-3 zone of the (old) province
    valid_from: Mapped[dt.date] = mapped_column(Date)
    valid_to: Mapped[dt.date | None] = mapped_column(Date)
    synthetic: Mapped[bool] = mapped_column(server_default="false")
    geom = geom_col("MULTIPOLYGON", nullable=True)
    geom_3857 = geom_3857_col("MULTIPOLYGON")
    __table_args__ = (
        UniqueConstraint("code", "scheme", "valid_from"),
        CheckConstraint(_in("level", vocab.ADMIN_LEVELS), name="level"),
        CheckConstraint(_in("scheme", vocab.ADMIN_SCHEMES), name="scheme"),
        CheckConstraint("kind IS NULL OR " + _in("kind", vocab.ADMIN_KINDS), name="kind"),
        CheckConstraint("code ~ '^[0-9]{2,5}$'", name="code_digits"),
        CheckConstraint("valid_to IS NULL OR valid_to > valid_from", name="validity"),
        *spatial_checks("admin_units", nullable=True),
    )


class AdminCrosswalk(Base):
    """Versioned old->new mapping; many-to-many because some communes were split."""

    __tablename__ = "admin_crosswalk"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    old_code: Mapped[str] = mapped_column(String(8))
    old_scheme: Mapped[str] = mapped_column(String(8), server_default="2004")
    old_name: Mapped[str] = mapped_column(Text)
    old_level: Mapped[str] = mapped_column(String(16))
    new_code: Mapped[str] = mapped_column(String(8))
    new_scheme: Mapped[str] = mapped_column(String(8), server_default="2025")
    new_name: Mapped[str] = mapped_column(Text)
    share: Mapped[Decimal | None] = mapped_column(Numeric(6, 5))
    effective: Mapped[dt.date] = mapped_column(Date)
    legal_basis: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (
        UniqueConstraint("old_code", "old_scheme", "new_code", "new_scheme", "effective"),
        CheckConstraint("share IS NULL OR (share > 0 AND share <= 1)", name="share"),
        Index("ix_admin_crosswalk_new", "new_code"),
    )


class Parcel(Timestamps, Base):
    """A public-land parcel (thửa đất công)."""

    __tablename__ = "parcels"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    commune_code: Mapped[str] = mapped_column(String(8))
    old_commune_code: Mapped[str | None] = mapped_column(String(8))
    map_sheet: Mapped[int] = mapped_column(Integer)
    parcel_no: Mapped[int] = mapped_column(Integer)
    address: Mapped[str | None] = mapped_column(Text)
    area_m2: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    land_use_codes: Mapped[list[str]] = mapped_column(ARRAY(String(4)))
    managing_body: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(24), server_default="managed")
    certificate_no: Mapped[str | None] = mapped_column(String(32))
    synthetic: Mapped[bool] = mapped_column(server_default="false")
    geom = geom_col("MULTIPOLYGON")
    geom_3857 = geom_3857_col("MULTIPOLYGON")
    __table_args__ = (
        # a parcel key is per old commune + sheet + parcel (sheets kept their pre-2025 numbering); 0010
        UniqueConstraint("commune_code", "old_commune_code", "map_sheet", "parcel_no",
                         postgresql_nulls_not_distinct=True),
        CheckConstraint(_in("status", vocab.PARCEL_STATUSES), name="status"),
        CheckConstraint(_array_in("land_use_codes", list(vocab.LAND_USE_CODES)), name="land_use_codes"),
        CheckConstraint("cardinality(land_use_codes) >= 1", name="land_use_nonempty"),
        CheckConstraint("area_m2 > 0", name="area_positive"),
        CheckConstraint("map_sheet > 0 AND parcel_no > 0", name="sheet_parcel_positive"),
        Index("ix_parcels_commune_code", "commune_code"),
        Index("ix_parcels_status", "status"),
        Index("ix_parcels_map_sheet_parcel_no", "map_sheet", "parcel_no"),    # search "118/28" (0010)
        tile_box_area_index("parcels"),
        *spatial_checks("parcels"),
    )


class AuctionPlot(Timestamps, Base):
    """A land-use-right auction plot (lô đất đấu giá)."""

    __tablename__ = "auction_plots"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    plot_code: Mapped[str] = mapped_column(String(32), unique=True)
    commune_code: Mapped[str] = mapped_column(String(8))
    address: Mapped[str | None] = mapped_column(Text)
    parcel_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), server_default="{}")
    area_m2: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    land_use_code: Mapped[str] = mapped_column(String(4))
    term: Mapped[str] = mapped_column(String(32), server_default="long_term")
    starting_price_vnd: Mapped[int] = mapped_column(BigInteger)
    bid_step_vnd: Mapped[int | None] = mapped_column(BigInteger)
    deposit_vnd: Mapped[int] = mapped_column(BigInteger)
    deposit_pct: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    deposit_legal_basis: Mapped[str | None] = mapped_column(Text)
    dossier_fee_vnd: Mapped[int | None] = mapped_column(BigInteger)
    registration_start: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    registration_end: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    viewing_start: Mapped[dt.date | None] = mapped_column(Date)
    viewing_end: Mapped[dt.date | None] = mapped_column(Date)
    auction_date: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    auction_place: Mapped[str | None] = mapped_column(Text)
    auction_form: Mapped[str | None] = mapped_column(Text)
    organiser: Mapped[str | None] = mapped_column(Text)
    asset_owner: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(24), server_default="planned")
    result_price_vnd: Mapped[int | None] = mapped_column(BigInteger)
    synthetic: Mapped[bool] = mapped_column(server_default="false")
    geom = geom_col("MULTIPOLYGON")
    geom_3857 = geom_3857_col("MULTIPOLYGON")
    __table_args__ = (
        CheckConstraint(_in("status", vocab.AUCTION_STATUSES), name="status"),
        CheckConstraint(_in("land_use_code", list(vocab.LAND_USE_CODES)), name="land_use_code"),
        CheckConstraint("area_m2 > 0", name="area_positive"),
        CheckConstraint("starting_price_vnd > 0 AND deposit_vnd >= 0", name="prices"),
        CheckConstraint("deposit_pct >= 0 AND deposit_pct <= 100", name="deposit_pct"),
        CheckConstraint("registration_end IS NULL OR registration_start IS NULL "
                        "OR registration_end >= registration_start", name="registration_window"),
        CheckConstraint("(status = 'sold') = (result_price_vnd IS NOT NULL)", name="sold_has_price"),
        CheckConstraint("result_price_vnd IS NULL OR result_price_vnd >= starting_price_vnd",
                        name="result_price"),
        Index("ix_auction_plots_status", "status"),
        Index("ix_auction_plots_auction_date", "auction_date"),
        *spatial_checks("auction_plots"),
    )


class GrowingArea(Timestamps, Base):
    """A growing area with its code (mã số vùng trồng, PUC)."""

    __tablename__ = "growing_areas"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    code: Mapped[str | None] = mapped_column(String(40), unique=True)     # granted at activation (drafts: none)
    crop: Mapped[str] = mapped_column(String(32))
    variety: Mapped[str | None] = mapped_column(Text)
    area_m2: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    owner: Mapped[str] = mapped_column(Text)
    cooperative: Mapped[str | None] = mapped_column(Text)
    commune_code: Mapped[str] = mapped_column(String(8))
    markets: Mapped[list[str]] = mapped_column(ARRAY(String(4)), server_default="{}")
    standard: Mapped[str] = mapped_column(String(16), server_default="VietGAP")
    status: Mapped[str] = mapped_column(String(16), server_default="draft")
    status_reason: Mapped[str | None] = mapped_column(Text)
    expected_yield_t: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    harvest_months: Mapped[list[int]] = mapped_column(ARRAY(Integer), server_default="{}")
    valid_from: Mapped[dt.date | None] = mapped_column(Date)
    valid_to: Mapped[dt.date | None] = mapped_column(Date)
    gln: Mapped[str | None] = mapped_column(String(13), unique=True)   # GS1 GLN (AI 414) when it has one
    decision_no: Mapped[str | None] = mapped_column(Text)          # the granting decision (migration 0007)
    decision_date: Mapped[dt.date | None] = mapped_column(Date)
    synthetic: Mapped[bool] = mapped_column(server_default="false")
    geom = geom_col("MULTIPOLYGON")
    geom_3857 = geom_3857_col("MULTIPOLYGON")
    __table_args__ = (
        CheckConstraint(_in("status", vocab.GROWING_AREA_STATUSES), name="status"),
        CheckConstraint("code IS NOT NULL OR status IN ('draft', 'revoked')", name="code_granted"),
        CheckConstraint(_in("crop", list(vocab.CROPS)), name="crop"),
        CheckConstraint(_in("standard", vocab.STANDARDS), name="standard"),
        CheckConstraint(_array_in("markets", vocab.MARKETS), name="markets"),
        CheckConstraint("area_m2 > 0", name="area_positive"),
        CheckConstraint("valid_to IS NULL OR valid_from IS NULL OR valid_to > valid_from", name="validity"),
        CheckConstraint("gln ~ '^[0-9]{13}$'", name="gln_digits"),
        CheckConstraint(_not_in("status", vocab.GROWING_AREA_REASON_STATUSES) + " OR status_reason IS NOT NULL",
                        name="reason_required"),
        Index("ix_growing_areas_crop", "crop"),
        tile_box_area_index("growing_areas"),
        *spatial_checks("growing_areas"),
    )


class PackingFacility(Timestamps, Base):
    """A packing house with its code (mã số cơ sở đóng gói, PHC): a point or a footprint polygon."""

    __tablename__ = "packing_facilities"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    code: Mapped[str | None] = mapped_column(String(40), unique=True)     # granted at activation (drafts: none)
    name: Mapped[str] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(Text)
    commune_code: Mapped[str] = mapped_column(String(8))
    address: Mapped[str | None] = mapped_column(Text)
    markets: Mapped[list[str]] = mapped_column(ARRAY(String(4)), server_default="{}")
    status: Mapped[str] = mapped_column(String(16), server_default="draft")
    capacity_t_per_day: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    gln: Mapped[str | None] = mapped_column(String(13), unique=True)   # GS1 GLN (AI 414) when it has one
    status_reason: Mapped[str | None] = mapped_column(Text)       # migration 0007: the lifecycle of growing areas
    valid_from: Mapped[dt.date | None] = mapped_column(Date)
    valid_to: Mapped[dt.date | None] = mapped_column(Date)
    decision_no: Mapped[str | None] = mapped_column(Text)
    decision_date: Mapped[dt.date | None] = mapped_column(Date)
    synthetic: Mapped[bool] = mapped_column(server_default="false")
    geom = geom_col("GEOMETRY")
    geom_3857 = geom_3857_col("GEOMETRY")
    __table_args__ = (
        CheckConstraint(_in("status", vocab.FACILITY_STATUSES), name="status"),
        CheckConstraint("code IS NOT NULL OR status IN ('draft', 'revoked')", name="code_granted"),
        CheckConstraint("valid_to IS NULL OR valid_from IS NULL OR valid_to > valid_from", name="validity"),
        CheckConstraint(_not_in("status", vocab.FACILITY_REASON_STATUSES) + " OR status_reason IS NOT NULL",
                        name="reason_required"),
        CheckConstraint(_array_in("markets", vocab.MARKETS), name="markets"),
        CheckConstraint("GeometryType(geom) IN ('POINT', 'POLYGON', 'MULTIPOLYGON')", name="geom_kind"),
        CheckConstraint("gln ~ '^[0-9]{13}$'", name="gln_digits"),
        *spatial_checks("packing_facilities"),
    )


class FacilityGrowingArea(Base):
    __tablename__ = "packing_facility_growing_areas"
    facility_id: Mapped[int] = mapped_column(ForeignKey("packing_facilities.id", ondelete="CASCADE"),
                                             primary_key=True)
    growing_area_id: Mapped[int] = mapped_column(ForeignKey("growing_areas.id", ondelete="CASCADE"),
                                                 primary_key=True)


class TraceLot(Timestamps, Base):
    """A traceable lot: GTIN (AI 01) + lot (AI 10); geometry = where it was packed (point)."""

    __tablename__ = "trace_lots"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    gtin: Mapped[str] = mapped_column(String(14))
    lot_number: Mapped[str] = mapped_column(String(20))
    product: Mapped[str] = mapped_column(Text)
    producer: Mapped[str | None] = mapped_column(Text)
    quantity: Mapped[Decimal] = mapped_column(Numeric(14, 3))
    unit: Mapped[str] = mapped_column(String(8), server_default="KGM")
    origin_codes: Mapped[list[str]] = mapped_column(ARRAY(String(40)), server_default="{}")
    packing_facility_code: Mapped[str | None] = mapped_column(String(40))
    harvest_date: Mapped[dt.date | None] = mapped_column(Date)
    pack_date: Mapped[dt.date | None] = mapped_column(Date)
    expiry_date: Mapped[dt.date | None] = mapped_column(Date)
    synthetic: Mapped[bool] = mapped_column(server_default="false")
    geom = geom_col("POINT", nullable=True)
    geom_3857 = geom_3857_col("POINT")
    __table_args__ = (
        UniqueConstraint("gtin", "lot_number"),
        CheckConstraint("gtin ~ '^[0-9]{14}$'", name="gtin_digits"),
        CheckConstraint("lot_number ~ '^[!-~]{1,20}$'", name="lot_ai10"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("expiry_date IS NULL OR pack_date IS NULL OR expiry_date >= pack_date",
                        name="expiry_after_pack"),
        *spatial_checks("trace_lots", nullable=True),
    )


class TraceEvent(Base):
    """An EPCIS 2.0-style event about lots (what/when/where/why)."""

    __tablename__ = "trace_events"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event_id: Mapped[str] = mapped_column(Text, unique=True)
    event_type: Mapped[str] = mapped_column(String(24))
    action: Mapped[str | None] = mapped_column(String(8))
    biz_step: Mapped[str | None] = mapped_column(String(40))
    disposition: Mapped[str | None] = mapped_column(String(40))
    event_time: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    event_timezone_offset: Mapped[str] = mapped_column(String(6), server_default="+07:00")
    read_point: Mapped[str | None] = mapped_column(Text)
    biz_location: Mapped[str | None] = mapped_column(Text)
    lot_id: Mapped[int | None] = mapped_column(ForeignKey("trace_lots.id", ondelete="CASCADE"))
    epc_list: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    input_epcs: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    output_epcs: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    quantity_list: Mapped[Any] = mapped_column(JSONB, server_default="[]")
    ilmd: Mapped[Any] = mapped_column(JSONB, server_default="{}")
    # EPCIS 2.0 capture (revision 0009; layers/ingest/epcis.py): the rest of the event, and what makes
    # re-capture idempotent. any_ids = every EPC, parentID and quantity class of the event (GIN: MATCH_any*).
    parent_id: Mapped[str | None] = mapped_column(Text)
    child_epcs: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    input_quantity_list: Mapped[Any] = mapped_column(JSONB, server_default="[]")
    output_quantity_list: Mapped[Any] = mapped_column(JSONB, server_default="[]")
    any_ids: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    biz_transaction_list: Mapped[Any] = mapped_column(JSONB, server_default="[]")
    source_list: Mapped[Any] = mapped_column(JSONB, server_default="[]")
    destination_list: Mapped[Any] = mapped_column(JSONB, server_default="[]")
    sensor_element_list: Mapped[Any] = mapped_column(JSONB, server_default="[]")
    raw: Mapped[Any | None] = mapped_column(JSONB)                      # the event as captured
    content_hash: Mapped[str | None] = mapped_column(String(64))        # sha256 of the canonical event JSON
    record_time: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    captured_by: Mapped[str | None] = mapped_column(Text)
    synthetic: Mapped[bool] = mapped_column(server_default="false")
    geom = geom_col("POINT", nullable=True)
    geom_3857 = geom_3857_col("POINT")
    __table_args__ = (
        CheckConstraint(_in("event_type", vocab.EPCIS_EVENT_TYPES), name="event_type"),
        CheckConstraint("action IS NULL OR " + _in("action", vocab.EPCIS_ACTIONS), name="action"),
        CheckConstraint("(event_type = 'TransformationEvent') = (action IS NULL)", name="action_required"),
        CheckConstraint("event_timezone_offset ~ '^[+-][0-9]{2}:[0-9]{2}$'", name="tz_offset"),
        Index("ix_trace_events_lot_id", "lot_id"),
        Index("ix_trace_events_event_time", "event_time"),
        Index("ix_trace_events_record_time", "record_time"),
        Index("ix_trace_events_biz_step", "biz_step"),
        Index("ix_trace_events_biz_location", "biz_location"),
        Index("ix_trace_events_read_point", "read_point"),
        Index("ix_trace_events_parent_id", "parent_id"),
        *(Index(f"ix_trace_events_{c}", c, postgresql_using="gin")
          for c in ("epc_list", "child_epcs", "input_epcs", "output_epcs", "any_ids")),
        *spatial_checks("trace_events", nullable=True),
    )


class PlanningZone(Timestamps, Base):
    """A land-use planning zone (khu quy hoạch sử dụng đất): the plan class (Circular 08/2024 code) that the
    approved land-use plan gives this area for a plan period."""

    __tablename__ = "planning_zones"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    zone_code: Mapped[str] = mapped_column(String(32), unique=True)
    plan_class: Mapped[str] = mapped_column(String(4))
    plan_period: Mapped[str] = mapped_column(String(9))
    decision_no: Mapped[str | None] = mapped_column(Text)
    decision_date: Mapped[dt.date | None] = mapped_column(Date)
    commune_code: Mapped[str] = mapped_column(String(8))
    area_m2: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    synthetic: Mapped[bool] = mapped_column(server_default="false")
    geom = geom_col("MULTIPOLYGON")
    geom_3857 = geom_3857_col("MULTIPOLYGON")
    __table_args__ = (
        CheckConstraint(_in("plan_class", list(vocab.PLAN_CLASSES)), name="plan_class"),
        CheckConstraint("plan_period ~ '^[0-9]{4}-[0-9]{4}$' AND left(plan_period, 4) < right(plan_period, 4)",
                        name="plan_period"),
        CheckConstraint("area_m2 > 0", name="area_positive"),
        Index("ix_planning_zones_plan_class", "plan_class"),
        *spatial_checks("planning_zones"),
    )


class LandPriceZone(Timestamps, Base):
    """A land-price zone of the province's price table (bảng giá đất): a road segment and position (vị trí 1-4)
    with the price per m² of each land type, and the decision that set it."""

    __tablename__ = "land_price_zones"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    zone_code: Mapped[str] = mapped_column(String(32), unique=True)
    commune_code: Mapped[str] = mapped_column(String(8))
    road_name: Mapped[str | None] = mapped_column(Text)
    segment: Mapped[str | None] = mapped_column(Text)
    position: Mapped[int] = mapped_column(SmallInteger)
    area_kind: Mapped[str] = mapped_column(String(8))
    price_residential_vnd: Mapped[int] = mapped_column(BigInteger)
    price_commercial_vnd: Mapped[int | None] = mapped_column(BigInteger)
    price_production_vnd: Mapped[int | None] = mapped_column(BigInteger)
    price_annual_crop_vnd: Mapped[int | None] = mapped_column(BigInteger)
    price_perennial_crop_vnd: Mapped[int | None] = mapped_column(BigInteger)
    price_aquaculture_vnd: Mapped[int | None] = mapped_column(BigInteger)
    decision_no: Mapped[str] = mapped_column(Text)
    decision_date: Mapped[dt.date | None] = mapped_column(Date)
    price_year: Mapped[int] = mapped_column(SmallInteger)
    synthetic: Mapped[bool] = mapped_column(server_default="false")
    geom = geom_col("MULTIPOLYGON")
    geom_3857 = geom_3857_col("MULTIPOLYGON")
    __table_args__ = (
        CheckConstraint("position BETWEEN 1 AND 4", name="position"),
        CheckConstraint(_in("area_kind", list(vocab.PRICE_AREA_KINDS)), name="area_kind"),
        CheckConstraint("price_residential_vnd > 0 AND coalesce(price_commercial_vnd, 1) > 0 "
                        "AND coalesce(price_production_vnd, 1) > 0 AND coalesce(price_annual_crop_vnd, 1) > 0 "
                        "AND coalesce(price_perennial_crop_vnd, 1) > 0 AND coalesce(price_aquaculture_vnd, 1) > 0",
                        name="prices_positive"),
        CheckConstraint("price_year BETWEEN 1993 AND 2200", name="price_year"),
        Index("ix_land_price_zones_commune_code", "commune_code"),
        *spatial_checks("land_price_zones"),
    )


class CodeCounter(Base):
    """The last sequence number granted per code prefix (layers/ingest/registration.py): only ever increases, so a
    code is never granted twice, also after its area is revoked or deleted."""

    __tablename__ = "code_counters"
    prefix: Mapped[str] = mapped_column(Text, primary_key=True)
    last: Mapped[int] = mapped_column(Integer)
    __table_args__ = (CheckConstraint("last > 0", name="last_positive"),)


class _AreaRecord(Timestamps):
    """A record about one growing area (season, inspection, pest observation); deleted with its area (the
    history keeps it)."""

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    growing_area_id: Mapped[int] = mapped_column(ForeignKey("growing_areas.id", ondelete="CASCADE"))
    synthetic: Mapped[bool] = mapped_column(server_default="false")


class Season(_AreaRecord, Base):
    """A crop season on a growing area (mùa vụ); geometry optional (a point where it was recorded)."""

    __tablename__ = "seasons"
    crop: Mapped[str] = mapped_column(String(32))
    variety: Mapped[str | None] = mapped_column(Text)
    planting_date: Mapped[dt.date] = mapped_column(Date)
    expected_harvest_date: Mapped[dt.date | None] = mapped_column(Date)
    expected_yield_t: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    actual_yield_t: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    notes: Mapped[str | None] = mapped_column(Text)
    geom = geom_col("POINT", nullable=True)
    geom_3857 = geom_3857_col("POINT")
    __table_args__ = (
        UniqueConstraint("growing_area_id", "crop", "planting_date"),
        CheckConstraint(_in("crop", list(vocab.CROPS)), name="crop"),
        CheckConstraint("expected_harvest_date IS NULL OR expected_harvest_date >= planting_date",
                        name="harvest_after_planting"),
        CheckConstraint("(expected_yield_t IS NULL OR expected_yield_t >= 0) "
                        "AND (actual_yield_t IS NULL OR actual_yield_t >= 0)", name="yield_positive"),
        Index("ix_seasons_growing_area_id", "growing_area_id"),
        *spatial_checks("seasons", nullable=True),
    )


class Inspection(_AreaRecord, Base):
    """An inspection of a growing area (kiểm tra, giám sát); geometry optional (where it was done)."""

    __tablename__ = "inspections"
    inspection_date: Mapped[dt.date] = mapped_column(Date)
    inspector: Mapped[str] = mapped_column(Text)
    result: Mapped[str] = mapped_column(String(16))
    findings: Mapped[str | None] = mapped_column(Text)
    next_due_date: Mapped[dt.date | None] = mapped_column(Date)
    geom = geom_col("POINT", nullable=True)
    geom_3857 = geom_3857_col("POINT")
    __table_args__ = (
        UniqueConstraint("growing_area_id", "inspection_date"),
        CheckConstraint(_in("result", list(vocab.INSPECTION_RESULTS)), name="result"),
        CheckConstraint("next_due_date IS NULL OR next_due_date > inspection_date", name="next_due_after"),
        Index("ix_inspections_growing_area_id", "growing_area_id"),
        *spatial_checks("inspections", nullable=True),
    )


class PestObservation(_AreaRecord, Base):
    """A pest or disease observed on a growing area (theo dõi sinh vật gây hại), at a point."""

    __tablename__ = "pest_observations"
    pest: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    observed_on: Mapped[dt.date] = mapped_column(Date)
    affected_area_m2: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    notes: Mapped[str | None] = mapped_column(Text)
    geom = geom_col("POINT")
    geom_3857 = geom_3857_col("POINT")
    __table_args__ = (
        UniqueConstraint("growing_area_id", "pest", "observed_on"),
        CheckConstraint(_in("pest", list(vocab.PESTS)), name="pest"),
        CheckConstraint(_in("severity", list(vocab.SEVERITIES)), name="severity"),
        CheckConstraint("affected_area_m2 IS NULL OR affected_area_m2 > 0", name="affected_area_positive"),
        Index("ix_pest_observations_growing_area_id", "growing_area_id"),
        Index("ix_pest_observations_observed_on", "observed_on"),
        *spatial_checks("pest_observations"),
    )


class History(Base):
    """Append-only audit of every insert/update/delete on a layer table (written by triggers)."""

    __tablename__ = "history"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    layer: Mapped[str] = mapped_column(String(40))
    feature_id: Mapped[int] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(8))
    actor: Mapped[str] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    txid: Mapped[int] = mapped_column(BigInteger, server_default=func.txid_current())
    before: Mapped[Any | None] = mapped_column(JSONB)
    after: Mapped[Any | None] = mapped_column(JSONB)
    geom_before = mapped_column(Geometry("GEOMETRY", srid=4326, spatial_index=False), nullable=True)
    geom_after = mapped_column(Geometry("GEOMETRY", srid=4326, spatial_index=False), nullable=True)
    __table_args__ = (
        CheckConstraint(_in("action", vocab.HISTORY_ACTIONS), name="action"),
        Index("ix_history_layer_feature", "layer", "feature_id"),
    )


class ImportRun(Base):
    """One import (API upload, `datso import`, the sample load) and its outcome, recorded by every process;
    `/metrics` counts them at scrape time (migration 0013)."""

    __tablename__ = "import_runs"
    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    layer: Mapped[str] = mapped_column(String(40))
    outcome: Mapped[str] = mapped_column(String(12))
    rows_read: Mapped[int] = mapped_column(Integer)
    rows_written: Mapped[int] = mapped_column(Integer)
    seconds: Mapped[float] = mapped_column(Float)
    actor: Mapped[str] = mapped_column(Text)
    __table_args__ = (
        CheckConstraint("outcome IN ('ok', 'refused', 'database')", name="outcome"),
        CheckConstraint("rows_read >= 0 AND rows_written >= 0", name="rows"),
        Index("ix_import_runs_layer_outcome", "layer", "outcome"),
    )


class User(Base):
    """An officer or admin: a role, a scope (provinces of the 2025 scheme, optionally communes, or national) and
    an argon2 password hash (none: API keys only). Disabling a user stops their keys and sessions at once."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text, unique=True)
    display_name: Mapped[str | None] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16))
    national: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    provinces: Mapped[list[str]] = mapped_column(ARRAY(String(2)), server_default=text("'{}'"))
    communes: Mapped[list[str]] = mapped_column(ARRAY(String(5)), server_default=text("'{}'"))
    areas: Mapped[list[str]] = mapped_column(ARRAY(String(40)), server_default=text("'{}'"))       # producer
    facilities: Mapped[list[str]] = mapped_column(ARRAY(String(40)), server_default=text("'{}'"))  # packer
    password_hash: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    disabled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        CheckConstraint(_in("role", vocab.USER_ROLES), name="role"),
        CheckConstraint("national OR cardinality(provinces) >= 1 OR (role = 'producer' AND cardinality(areas) >= 1)"
                        " OR (role = 'packer' AND cardinality(facilities) >= 1)", name="scope"),
        CheckConstraint("char_length(name) BETWEEN 1 AND 100", name="name_length"),
    )


class ApiKey(Base):
    """API keys of a user; only a SHA-256 hash of the secret is stored. The key's role is its user's."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text, unique=True)
    role: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    __table_args__ = (CheckConstraint(_in("role", vocab.USER_ROLES), name="role"),)


class UserSession(Base):
    """A sign-in session (POST /auth/login): a bearer token stored as a SHA-256 hash, until `expires_at`."""

    __tablename__ = "user_sessions"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


AUDITED_TABLES = ("admin_units", "parcels", "auction_plots", "growing_areas", "packing_facilities",
                  "trace_lots", "trace_events", "planning_zones", "land_price_zones", "seasons", "inspections",
                  "pest_observations")
