"""The ONE layer registry: each published layer is described here once.

The API (features, tiles, maps), the CLI import/export and the tile seeder are generated from these entries;
no layer has routes or SQL of its own. Field types are read from the SQLAlchemy model, so a column is
declared once (in `layers/store/models.py`) and described once (here). See docs/architecture.md.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase

from layers.catalog.lifecycle import Lifecycle, Registration, State
from layers.store import models, vocab

JsonType = Literal["string", "integer", "number", "boolean", "date", "date-time", "array", "object"]
# How a field's values are shown (layers/catalog/formats.py); left out, the registry picks it from the column type.
Format = Literal["vnd", "date", "land_use", "crop", "label", "boolean", "number", "integer", "list", "text", "ref"]
# Values the importer computes when the file has none (layers/ingest/importer.py COMPUTED).
Computed = Literal["area_m2_from_geometry"]

# The dates a date/date-time field accepts unless its entry says otherwise (`date_range=`): values outside are
# typing mistakes (0001-01-01, 20255-01-01) that every face would have to render, and year 1 BC / > 9999 are
# not representable in Python (they crashed /collections and the HTML pages).
DEFAULT_DATE_RANGE: tuple[dt.date, dt.date] = (dt.date(1900, 1, 1), dt.date(2200, 12, 31))
# the key of a row's geometry in the rows the scope rule reads (layers/accounts/principal.py, ingest/writes.py)
SCOPE_GEOMETRY = "__geometry__"
_INT_RANGES = {SmallInteger: (-(2**15), 2**15 - 1), BigInteger: (-(2**63), 2**63 - 1),
               Integer: (-(2**31), 2**31 - 1)}


@dataclass(frozen=True)
class Reference:
    """A field holding ids of another layer's features, shown to people by those features' own fields (a
    parcel's sheet and number, never its internal id): `template_vi`/`template_en` name the fields."""

    layer: str
    fields: tuple[str, ...]
    template_vi: str
    template_en: str


@dataclass(frozen=True)
class LayerField:
    name: str
    title_vi: str
    title_en: str
    queryable: bool = True
    required: bool = False           # required on import / create
    enum: tuple[str, ...] | None = None
    items_enum: tuple[str, ...] | None = None   # for arrays of codes
    minimum: float | None = None
    lowzoom: bool = False            # carried in tiles below the layer's detail zoom
    in_tiles: bool = True
    public: bool = True              # shown to anonymous users
    date_range: tuple[dt.date, dt.date] | None = None   # dates accepted (default DEFAULT_DATE_RANGE)
    format: Format | None = None     # how values are shown (default from the type: date, label for enums...)
    computed: Computed | None = None  # computed on import when the file does not carry it
    summary: bool = False            # kept in compact map exports (besides label, style and lowzoom fields)
    unit: str | None = None          # written once, after the value on citizen pages ("1.234,5 m²"; `unit_en`
    unit_en: str | None = None       # in English, default `unit`); titles keep it in brackets for raw columns
    ref: Reference | None = None     # the value is the id (or ids) of another layer's features: shown by them
    references: str | None = None    # the id of the layer whose feature ids this field holds (links both ways)
    # filled from the model column
    type: JsonType = "string"
    item_type: JsonType | None = None
    nullable: bool = True
    max_length: int | None = None                # varchar(n), or varchar(n)[] items
    int_range: tuple[int, int] | None = None     # int2/int4/int8 (or their arrays): the column type's range


@dataclass(frozen=True)
class Relation:
    """A many-to-many link of a layer's features to another layer's, kept in a link table:
    `GET/PUT /collections/{layer}/items/{id}/{name}` (api/relations.py); its audit trigger writes the change to the
    feature's history as the pseudo-field `name` (migration 0008)."""

    name: str
    table: str                 # the link table
    own_column: str            # its column holding this layer's id
    other_column: str          # its column holding the other layer's id
    target: str                # the other layer's id
    title_vi: str
    title_en: str


@dataclass(frozen=True)
class Layer:
    id: str
    model: type[DeclarativeBase]
    title_vi: str
    title_en: str
    description_vi: str
    description_en: str
    geometry_type: str                     # GeoJSON type of the geometry (or "Geometry")
    fields: tuple[LayerField, ...]
    code_field: str | None = None          # a unique business code (duplicates refused on import)
    unique_together: tuple[str, ...] = ()  # a composite business key
    label_field: str | None = None
    temporal: tuple[str, str | None] | None = None   # (start field, end field or None)
    search_fields: tuple[str, ...] = ()
    minzoom: int = 0
    maxzoom: int = 22
    detail_zoom: int = 14                  # from this zoom on, tiles carry every in_tiles field
    min_pixel_area: float = 1.0            # features smaller than this many pixels are dropped in tiles
    editable: bool = True
    write_roles: tuple[str, ...] = ("officer", "admin")
    # where a row is, for province-scoped writes (layers/accounts/principal.py): a commune-code field, or
    # scope_via (field holding the id of a feature of another layer, whose place decides), or national_only
    # (only national principals write), or else the geometry inside the scope's polygons
    scope_field: str | None = None
    scope_via: tuple[str, str] | None = None      # (field, layer id), e.g. ("growing_area_id", "growing_areas")
    national_only: bool = False
    style: dict[str, Any] = field(default_factory=dict)   # default style: colour by a field
    id_column: str = "id"
    geometry_column: str = "geom"
    tile_geometry_column: str = "geom_3857"
    geometry_nullable: bool = False
    lifecycle: Lifecycle | None = None     # the status field's states, transitions and reasons
    boundaries_under: bool = True          # map exports draw the administrative boundaries under it
    registration: Registration | None = None   # drafts, checks and code granting (layers/ingest/registration.py)
    relations: tuple[Relation, ...] = ()   # many-to-many links to another layer (read/written as a list of ids)

    def __post_init__(self) -> None:
        lc = self.lifecycle
        if lc is not None:
            f = self.get_field(lc.field)
            if f is None or f.enum != lc.codes:
                raise ValueError(f"layer {self.id}: lifecycle field {lc.field!r} must be a field whose enum is "
                                 "the lifecycle's states")
            if lc.reason_field is not None and self.get_field(lc.reason_field) is None:
                raise ValueError(f"layer {self.id}: no reason field {lc.reason_field!r}")
        if self.scope_key is not None and self.get_field(self.scope_key) is None:
            raise ValueError(f"layer {self.id}: no scope field {self.scope_key!r}")
        reg = self.registration
        if reg is not None:
            named = [reg.code_field, reg.commune_field, reg.area_field, reg.crop_field, reg.markets_field,
                     *reg.decision_fields, *(reg.validity_fields or ())]
            missing = [n for n in named if n is not None and self.get_field(n) is None]
            states = {reg.draft_state, reg.active_state, *reg.overlap_states, *reg.expiring_states,
                      *([reg.expired_state] if reg.expired_state else [])}
            if missing or lc is None or not states <= set(lc.codes):
                raise ValueError(f"layer {self.id}: registration names unknown fields {missing} or states")

    @property
    def scope_key(self) -> str | None:
        """The field that places a row for the scope rule (scope_field or scope_via's field), if any."""
        return self.scope_field or (self.scope_via[0] if self.scope_via else None)

    @property
    def table(self) -> str:
        return str(self.model.__tablename__)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def public_fields(self) -> tuple[LayerField, ...]:
        return tuple(f for f in self.fields if f.public)

    @property
    def queryables(self) -> tuple[LayerField, ...]:
        return tuple(f for f in self.fields if f.queryable and f.public)

    def get_field(self, name: str) -> LayerField | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None

    def title(self, lang: str = "vi") -> str:
        return self.title_vi if lang == "vi" else self.title_en


def _json_type(col_type: Any) -> JsonType:
    if isinstance(col_type, Boolean):
        return "boolean"
    if isinstance(col_type, Integer | BigInteger):
        return "integer"
    if isinstance(col_type, Numeric):
        return "number"
    if isinstance(col_type, DateTime):
        return "date-time"
    if isinstance(col_type, Date):
        return "date"
    if isinstance(col_type, ARRAY):
        return "array"
    if isinstance(col_type, JSONB):
        return "object"
    if isinstance(col_type, String | Text):
        return "string"
    return "string"


def _int_range(col_type: Any) -> tuple[int, int] | None:
    for cls, bounds in _INT_RANGES.items():     # SmallInteger/BigInteger before their base class Integer
        if isinstance(col_type, cls):
            return bounds
    return None


def _format(f: LayerField, t: JsonType) -> Format:
    if f.ref is not None:
        return "ref"
    if t in ("date", "date-time"):
        return "date"
    if f.enum is not None:
        return "label"
    if t in ("boolean", "number", "integer"):
        return t
    return "list" if t == "array" else "text"


def _bind(model: type[DeclarativeBase], fields: list[LayerField]) -> tuple[LayerField, ...]:
    table = model.__table__  # type: ignore[attr-defined]
    out = []
    for f in fields:
        if f.name not in table.c:
            raise KeyError(f"registry field {f.name!r} is not a column of {model.__tablename__}")
        col = table.c[f.name]
        t = _json_type(col.type)
        base = col.type.item_type if isinstance(col.type, ARRAY) else col.type
        item = _json_type(base) if isinstance(col.type, ARRAY) else None
        nullable = bool(col.nullable) and col.server_default is None
        length = base.length if isinstance(base, String) and base.length else None
        dates = f.date_range or (DEFAULT_DATE_RANGE if (item or t) in ("date", "date-time") else None)
        out.append(LayerField(**{**f.__dict__, "type": t, "item_type": item, "nullable": nullable,
                                 "max_length": length, "int_range": _int_range(base), "date_range": dates,
                                 "format": f.format or _format(f, t)}))
    return tuple(out)


F = LayerField
S = State
PARCEL_LIFECYCLE = Lifecycle("status", (
    S("managed", "Đang quản lý", "Managed", "#607d8b"), S("leased", "Cho thuê", "Leased", "#00897b"),
    S("allocated", "Giao đất", "Allocated", "#3949ab"),
    S("planned_for_auction", "Dự kiến đấu giá", "Planned for auction", "#fdd835"),
    S("auctioned", "Đã đấu giá", "Auctioned", "#8e24aa"), S("encroached", "Bị lấn chiếm", "Encroached", "#e53935"),
))
AUCTION_LIFECYCLE = Lifecycle("status", (
    S("planned", "Dự kiến", "Planned", "#9e9e9e"), S("announced", "Đã thông báo", "Announced", "#1e88e5"),
    S("registration_open", "Đang nhận hồ sơ", "Registration open", "#43a047"),
    S("closed", "Đã kết thúc đăng ký", "Closed", "#fb8c00"), S("sold", "Đã trúng đấu giá", "Sold", "#8e24aa"),
    S("cancelled", "Đã hủy", "Cancelled", "#e53935"),
), transitions={
    "planned": ("announced", "cancelled"),
    "announced": ("registration_open", "cancelled"),
    "registration_open": ("closed", "cancelled"),
    "closed": ("sold", "cancelled"),
    "sold": (),
    "cancelled": (),
})
_DRAFT, _SUSPENDED = S("draft", "Nháp", "Draft", "#bdbdbd"), S("suspended", "Tạm đình chỉ", "Suspended", "#f9a825")
_REVOKED = S("revoked", "Đã thu hồi", "Revoked", "#c62828")
GROWING_AREA_LIFECYCLE = Lifecycle("status", (
    _DRAFT, S("active", "Còn hiệu lực", "Active", "#2e7d32"), _SUSPENDED, _REVOKED,
    S("expired", "Hết hiệu lực", "Expired", "#6d4c41"),
), transitions={
    "draft": ("active", "revoked"),
    "active": ("suspended", "revoked", "expired"),
    "suspended": ("active", "revoked", "expired"),
    "revoked": (),
    "expired": ("active",),
}, reason_field="status_reason", reason_states=vocab.GROWING_AREA_REASON_STATUSES)
FACILITY_LIFECYCLE = Lifecycle("status", (_DRAFT, S("active", "Còn hiệu lực", "Active", "#00695c"), _SUSPENDED,
                                          _REVOKED, S("expired", "Hết hiệu lực", "Expired", "#6d4c41")),
                               transitions=GROWING_AREA_LIFECYCLE.transitions, reason_field="status_reason",
                               reason_states=vocab.FACILITY_REASON_STATUSES)
GROWING_AREA_REGISTRATION = Registration(
    code_field="code", commune_field="commune_code", code_pattern="growing_area", area_field="area_m2",
    crop_field="crop", markets_field="markets", overlap_states=("draft", "active", "suspended"),
    validity_fields=("valid_from", "valid_to"), expiring_states=("active", "suspended"), expired_state="expired")
# packing houses are mostly points: no overlap or area rule, the same drafts, codes, lifecycle and expiry
FACILITY_REGISTRATION = dataclasses.replace(GROWING_AREA_REGISTRATION, code_pattern="packing_house", area_field=None,
                                            crop_field=None, markets_field=None, overlap_states=())


# Colours of the plan classes on maps (groups of the Circular 08/2024 codes, after the usual planning-map colours).
_PLAN_GROUPS = {"#ffff64": ("LUC", "LUK", "HNK"), "#ffd2a0": ("CLN",), "#aaff32": ("RDD", "RPH", "RSX"),
                "#aaffff": ("NTS", "SON", "MNC"), "#ff64ff": ("ONT",), "#ff96ff": ("ODT",),
                "#ff6464": ("TSC", "CQP", "CAN", "DVH", "DYT", "DGD", "DTT", "DKH", "DSK", "DDT", "TON", "TIN"),
                "#fa8072": ("CSK", "TMD", "SKC", "SKS", "SKN"), "#c8c8c8": ("DGT", "DTL", "DRA", "DNL", "PNK"),
                "#e6e6c8": ("BCS", "DCS", "NCS", "NKH", "CNT", "LMU")}
PLAN_CLASS_COLOURS = {code: colour for colour, codes in _PLAN_GROUPS.items() for code in codes}


def _status_style(kind: str, lifecycle: Lifecycle, default: str) -> dict[str, Any]:
    """Colour by the lifecycle's status field, one colour per state."""
    return {"kind": kind, "by": lifecycle.field, "colours": lifecycle.colours, "default": default}


def _layers() -> list[Layer]:
    return [
        Layer(
            id="admin_units", model=models.AdminUnit,
            title_vi="Đơn vị hành chính", title_en="Administrative units",
            description_vi="Tỉnh và xã theo mô hình hai cấp từ 01/07/2025 (mã theo QĐ 19/2025/QĐ-TTg).",
            description_en="Provinces and communes of the two-tier system in force since 1 July 2025.",
            geometry_type="MultiPolygon", geometry_nullable=True,
            fields=_bind(models.AdminUnit, [
                F("code", "Mã", "Code", required=True, lowzoom=True),
                F("scheme", "Hệ mã", "Code scheme", enum=vocab.ADMIN_SCHEMES, lowzoom=True),
                F("level", "Cấp", "Level", required=True, enum=vocab.ADMIN_LEVELS, lowzoom=True),
                F("kind", "Loại", "Kind", enum=vocab.ADMIN_KINDS, lowzoom=True),
                F("name", "Tên", "Name", required=True, lowzoom=True),
                F("parent_code", "Mã cấp trên", "Parent code"),
                F("tm3_srid", "Múi chiếu VN-2000 TM-3 (EPSG)", "VN-2000 TM-3 zone (EPSG)"),
                F("valid_from", "Hiệu lực từ", "Valid from", required=True),
                F("valid_to", "Hiệu lực đến", "Valid to"),
                F("synthetic", "Dữ liệu mô phỏng", "Synthetic", queryable=False),
            ]),
            unique_together=("code", "scheme", "valid_from"), label_field="name",
            temporal=("valid_from", "valid_to"), search_fields=("name", "code"),
            minzoom=0, maxzoom=16, detail_zoom=8, min_pixel_area=0.0, write_roles=("admin",), boundaries_under=False,
            national_only=True,
            style={"kind": "line", "by": "level", "colours": {"province": "#37474f", "commune": "#78909c",
                                                              "district": "#90a4ae"}, "default": "#78909c"},
        ),
        Layer(
            id="parcels", model=models.Parcel,
            title_vi="Thửa đất công", title_en="Public-land parcels",
            description_vi="Cơ sở dữ liệu đất công công khai cho người dân.",
            description_en="The public-land register published to citizens.",
            geometry_type="MultiPolygon",
            fields=_bind(models.Parcel, [
                F("commune_code", "Mã xã", "Commune code", required=True, lowzoom=True),
                F("old_commune_code", "Mã xã cũ", "Old commune code"),
                F("map_sheet", "Số tờ", "Map sheet", required=True, minimum=1),
                F("parcel_no", "Số thửa", "Parcel number", required=True, minimum=1),
                F("address", "Địa chỉ", "Address", summary=True),
                F("area_m2", "Diện tích (m²)", "Area (m²)", required=True, minimum=0.01,
                  computed="area_m2_from_geometry", summary=True, unit="m²"),
                F("land_use_codes", "Mục đích sử dụng", "Land use", required=True,
                  items_enum=tuple(vocab.LAND_USE_CODES), lowzoom=True, format="land_use"),
                F("managing_body", "Đơn vị quản lý", "Managing body"),
                F("status", "Tình trạng", "Status", enum=vocab.PARCEL_STATUSES, lowzoom=True),
                F("certificate_no", "Số GCN", "Certificate no.", public=False),
                F("synthetic", "Dữ liệu mô phỏng", "Synthetic", queryable=False, in_tiles=False),
            ]),
            unique_together=("commune_code", "old_commune_code", "map_sheet", "parcel_no"), label_field="parcel_no",
            search_fields=("address",), minzoom=10, maxzoom=22, detail_zoom=15, min_pixel_area=1.0,
            style=_status_style("fill", PARCEL_LIFECYCLE, "#607d8b"), lifecycle=PARCEL_LIFECYCLE,
            scope_field="commune_code",
        ),
        Layer(
            id="auction_plots", model=models.AuctionPlot,
            title_vi="Lô đất đấu giá", title_en="Auction plots",
            description_vi="Các lô đất dự kiến đấu giá quyền sử dụng đất.",
            description_en="Plots planned for land-use-right auctions.",
            geometry_type="MultiPolygon",
            fields=_bind(models.AuctionPlot, [
                F("plot_code", "Mã lô", "Plot code", required=True, lowzoom=True),
                F("commune_code", "Mã xã", "Commune code", required=True),
                F("address", "Địa chỉ", "Address", summary=True),
                F("parcel_ids", "Thửa liên quan", "Linked parcels", queryable=False, in_tiles=False,
                  ref=Reference("parcels", ("map_sheet", "parcel_no"), "thửa {parcel_no}, tờ {map_sheet}",
                                "parcel {parcel_no}, sheet {map_sheet}")),
                F("area_m2", "Diện tích (m²)", "Area (m²)", required=True, minimum=0.01,
                  computed="area_m2_from_geometry", summary=True, unit="m²"),
                F("land_use_code", "Mục đích", "Purpose", required=True, enum=tuple(vocab.LAND_USE_CODES),
                  format="land_use"),
                F("term", "Thời hạn", "Term", format="label"),
                F("starting_price_vnd", "Giá khởi điểm (₫)", "Starting price (VND)", required=True, minimum=1,
                  lowzoom=True, format="vnd", summary=True),
                F("bid_step_vnd", "Bước giá (₫)", "Bid step (VND)", format="vnd"),
                F("deposit_vnd", "Tiền đặt trước (₫)", "Deposit (VND)", required=True, minimum=0, format="vnd"),
                F("deposit_pct", "Tỷ lệ đặt trước (%)", "Deposit rate (%)", required=True, minimum=0, unit="%"),
                F("deposit_legal_basis", "Căn cứ đặt trước", "Deposit legal basis"),
                F("dossier_fee_vnd", "Tiền hồ sơ (₫)", "Dossier fee (VND)", format="vnd"),
                F("registration_start", "Mở đăng ký", "Registration opens"),
                F("registration_end", "Hạn đăng ký", "Registration deadline", summary=True),
                F("viewing_start", "Xem tài sản từ", "Viewing from"),
                F("viewing_end", "Xem tài sản đến", "Viewing until"),
                F("auction_date", "Ngày đấu giá", "Auction date", summary=True),
                F("auction_place", "Địa điểm đấu giá", "Auction place"),
                F("auction_form", "Hình thức", "Auction form"),
                F("organiser", "Tổ chức đấu giá", "Organiser"),
                F("asset_owner", "Đơn vị có tài sản", "Asset owner"),
                F("status", "Trạng thái", "Status", enum=vocab.AUCTION_STATUSES, lowzoom=True),
                F("result_price_vnd", "Giá trúng (₫)", "Result price (VND)", format="vnd", summary=True),
                F("synthetic", "Dữ liệu mô phỏng", "Synthetic", queryable=False, in_tiles=False),
            ]),
            code_field="plot_code", label_field="plot_code", temporal=("auction_date", None),
            search_fields=("plot_code", "address"), minzoom=8, maxzoom=22, detail_zoom=13, min_pixel_area=0.0,
            style=_status_style("fill", AUCTION_LIFECYCLE, "#9e9e9e"), lifecycle=AUCTION_LIFECYCLE,
            scope_field="commune_code",
        ),
        Layer(
            id="growing_areas", model=models.GrowingArea,
            title_vi="Vùng trồng", title_en="Growing areas",
            description_vi="Vùng trồng được cấp mã số (PUC) phục vụ xuất khẩu và truy xuất nguồn gốc.",
            description_en="Growing areas with codes (PUC) for export and traceability.",
            geometry_type="MultiPolygon",
            fields=_bind(models.GrowingArea, [
                F("code", "Mã số vùng trồng", "Growing-area code", lowzoom=True),
                F("crop", "Cây trồng", "Crop", required=True, enum=tuple(vocab.CROPS), lowzoom=True, format="crop"),
                F("variety", "Giống", "Variety"),
                F("area_m2", "Diện tích (m²)", "Area (m²)", required=True, minimum=0.01,
                  computed="area_m2_from_geometry", summary=True, unit="m²"),
                F("owner", "Chủ vùng trồng", "Owner", required=True),
                F("cooperative", "Hợp tác xã", "Cooperative"),
                F("commune_code", "Mã xã", "Commune code", required=True),
                F("markets", "Thị trường", "Markets", items_enum=vocab.MARKETS),
                F("standard", "Tiêu chuẩn", "Standard", enum=vocab.STANDARDS),
                F("status", "Trạng thái", "Status", enum=vocab.GROWING_AREA_STATUSES, lowzoom=True),
                F("status_reason", "Lý do", "Reason"),
                F("expected_yield_t", "Sản lượng dự kiến (tấn)", "Expected yield (t)", unit="tấn", unit_en="t"),
                F("harvest_months", "Tháng thu hoạch", "Harvest months", queryable=False),
                F("valid_from", "Hiệu lực từ", "Valid from"),
                F("valid_to", "Hiệu lực đến", "Valid to"),
                F("gln", "GLN (mã địa điểm GS1)", "GLN (GS1 location)"),
                F("decision_no", "Số quyết định cấp mã", "Decision no.", in_tiles=False),
                F("decision_date", "Ngày quyết định", "Decision date", in_tiles=False),
                F("synthetic", "Dữ liệu mô phỏng", "Synthetic", queryable=False, in_tiles=False),
            ]),
            registration=GROWING_AREA_REGISTRATION,
            code_field="code", label_field="code", temporal=("valid_from", "valid_to"),
            search_fields=("code", "owner"), minzoom=8, maxzoom=22, detail_zoom=13, min_pixel_area=0.5,
            style=_status_style("fill", GROWING_AREA_LIFECYCLE, "#2e7d32"), lifecycle=GROWING_AREA_LIFECYCLE,
            scope_field="commune_code",
        ),
        Layer(
            id="packing_facilities", model=models.PackingFacility,
            title_vi="Cơ sở đóng gói", title_en="Packing facilities",
            description_vi="Cơ sở đóng gói được cấp mã số (PHC).",
            description_en="Packing houses with codes (PHC).",
            geometry_type="Geometry",
            fields=_bind(models.PackingFacility, [
                F("code", "Mã số cơ sở đóng gói", "Packing-house code", lowzoom=True),
                F("name", "Tên cơ sở", "Name", required=True, lowzoom=True),
                F("owner", "Chủ cơ sở", "Owner"),
                F("commune_code", "Mã xã", "Commune code", required=True),
                F("address", "Địa chỉ", "Address", summary=True),
                F("markets", "Thị trường", "Markets", items_enum=vocab.MARKETS),
                F("status", "Trạng thái", "Status", enum=vocab.FACILITY_STATUSES, lowzoom=True),
                F("capacity_t_per_day", "Công suất (tấn/ngày)", "Capacity (t/day)", unit="tấn/ngày",
                  unit_en="t/day"),
                F("gln", "GLN (mã địa điểm GS1)", "GLN (GS1 location)"),
                F("status_reason", "Lý do", "Reason"),
                F("valid_from", "Hiệu lực từ", "Valid from"),
                F("valid_to", "Hiệu lực đến", "Valid to"),
                F("decision_no", "Số quyết định cấp mã", "Decision no.", in_tiles=False),
                F("decision_date", "Ngày quyết định", "Decision date", in_tiles=False),
                F("synthetic", "Dữ liệu mô phỏng", "Synthetic", queryable=False, in_tiles=False),
            ]),
            registration=FACILITY_REGISTRATION,
            code_field="code", label_field="name", search_fields=("code", "name"),
            minzoom=6, maxzoom=22, detail_zoom=10, min_pixel_area=0.0,
            style=_status_style("circle", FACILITY_LIFECYCLE, "#00695c"), lifecycle=FACILITY_LIFECYCLE,
            scope_field="commune_code",
            relations=(Relation("sources", "packing_facility_growing_areas", "facility_id", "growing_area_id",
                                "growing_areas", "Vùng trồng cung cấp", "Source growing areas"),),
        ),
        *_record_layers(),
        Layer(
            id="planning_zones", model=models.PlanningZone,
            title_vi="Quy hoạch sử dụng đất", title_en="Land-use planning zones",
            description_vi="Khu vực theo quy hoạch sử dụng đất (mã loại đất theo Thông tư 08/2024/TT-BTNMT), "
                           "kỳ quy hoạch và quyết định phê duyệt.",
            description_en="Areas of the approved land-use plan (land-use codes of Circular 08/2024/TT-BTNMT), "
                           "with the plan period and the approving decision.",
            geometry_type="MultiPolygon",
            fields=_bind(models.PlanningZone, [
                F("zone_code", "Mã khu quy hoạch", "Zone code", required=True),
                F("plan_class", "Loại đất quy hoạch", "Planned land use", required=True,
                  enum=vocab.PLAN_CLASSES, lowzoom=True, format="land_use", summary=True),
                F("plan_period", "Kỳ quy hoạch", "Plan period", required=True, lowzoom=True, summary=True),
                F("decision_no", "Quyết định phê duyệt", "Approving decision"),
                F("decision_date", "Ngày phê duyệt", "Approved on"),
                F("commune_code", "Mã xã", "Commune code", required=True),
                F("area_m2", "Diện tích (m²)", "Area (m²)", required=True, minimum=0.01,
                  computed="area_m2_from_geometry", unit="m²"),
                F("synthetic", "Dữ liệu mô phỏng", "Synthetic", queryable=False, in_tiles=False),
            ]),
            code_field="zone_code", label_field="plan_class", search_fields=("zone_code",),
            minzoom=9, maxzoom=22, detail_zoom=12, min_pixel_area=0.0,     # ~1 km² zones: 180 KB tiles at z8
            style={"kind": "fill", "by": "plan_class", "colours": PLAN_CLASS_COLOURS, "default": "#bdbdbd"},
        ),
        Layer(
            id="land_price_zones", model=models.LandPriceZone,
            title_vi="Bảng giá đất", title_en="Land-price zones",
            description_vi="Giá đất theo bảng giá đất của tỉnh: tuyến đường, đoạn, vị trí và giá mỗi m² theo "
                           "loại đất.",
            description_en="The province's land-price table: road, segment, position and the price per m² by "
                           "land type.",
            geometry_type="MultiPolygon",
            fields=_bind(models.LandPriceZone, [
                F("zone_code", "Mã khu vực giá", "Price-zone code", required=True),
                F("commune_code", "Mã xã", "Commune code", required=True),
                F("road_name", "Tuyến đường", "Road", summary=True),
                F("segment", "Đoạn", "Segment"),
                F("position", "Vị trí", "Position", required=True, minimum=1, lowzoom=True, summary=True),
                F("area_kind", "Khu vực", "Area", required=True, enum=tuple(vocab.PRICE_AREA_KINDS)),
                F("price_residential_vnd", "Giá đất ở (₫/m²)", "Residential land price (VND/m²)", required=True, minimum=1,
                  format="vnd", unit="₫/m²", unit_en="VND/m²", lowzoom=True, summary=True),
                F("price_commercial_vnd", "Giá đất thương mại, dịch vụ (₫/m²)", "Commercial land price (VND/m²)", minimum=1,
                  format="vnd", unit="₫/m²", unit_en="VND/m²"),
                F("price_production_vnd", "Giá đất sản xuất, kinh doanh phi nông nghiệp (₫/m²)",
                  "Non-agricultural production land price (VND/m²)", minimum=1, format="vnd", unit="₫/m²", unit_en="VND/m²"),
                F("price_annual_crop_vnd", "Giá đất trồng cây hằng năm (₫/m²)", "Annual-crop land price (VND/m²)", minimum=1,
                  format="vnd", unit="₫/m²", unit_en="VND/m²"),
                F("price_perennial_crop_vnd", "Giá đất trồng cây lâu năm (₫/m²)", "Perennial-crop land price (VND/m²)", minimum=1,
                  format="vnd", unit="₫/m²", unit_en="VND/m²"),
                F("price_aquaculture_vnd", "Giá đất nuôi trồng thủy sản (₫/m²)", "Aquaculture land price (VND/m²)", minimum=1,
                  format="vnd", unit="₫/m²", unit_en="VND/m²"),
                F("decision_no", "Quyết định bảng giá", "Price-table decision", required=True),
                F("decision_date", "Ngày ban hành", "Issued on"),
                F("price_year", "Năm áp dụng", "Year", required=True, minimum=1993, summary=True),
                F("synthetic", "Dữ liệu mô phỏng", "Synthetic", queryable=False, in_tiles=False),
            ]),
            code_field="zone_code", label_field="position", search_fields=("zone_code", "road_name"),
            minzoom=10, maxzoom=22, detail_zoom=13, min_pixel_area=0.0,
            style={"kind": "fill", "by": "position", "colours": {"1": "#b71c1c", "2": "#ef6c00", "3": "#fbc02d",
                                                                 "4": "#fff59d"}, "default": "#eeeeee"},
        ),
        Layer(
            id="trace_lots", model=models.TraceLot,
            title_vi="Lô hàng truy xuất", title_en="Traceability lots",
            description_vi="Lô sản phẩm (GTIN + số lô) và nguồn gốc vùng trồng.",
            description_en="Product lots (GTIN + lot) with their origin growing areas.",
            geometry_type="Point", geometry_nullable=True,
            fields=_bind(models.TraceLot, [
                F("gtin", "GTIN", "GTIN", required=True),
                F("lot_number", "Số lô", "Lot number", required=True),
                F("product", "Sản phẩm", "Product", required=True),
                F("producer", "Nhà sản xuất", "Producer"),
                F("quantity", "Số lượng", "Quantity", required=True, minimum=0.001),
                F("unit", "Đơn vị", "Unit"),
                F("origin_codes", "Mã vùng trồng", "Origin growing areas"),
                F("packing_facility_code", "Mã cơ sở đóng gói", "Packing-house code"),
                F("harvest_date", "Ngày thu hoạch", "Harvest date"),
                F("pack_date", "Ngày đóng gói", "Pack date"),
                F("expiry_date", "Hạn sử dụng", "Expiry date"),
                F("synthetic", "Dữ liệu mô phỏng", "Synthetic", queryable=False, in_tiles=False),
            ]),
            unique_together=("gtin", "lot_number"), label_field="lot_number", temporal=("pack_date", None),
            search_fields=("lot_number", "gtin"), minzoom=8, maxzoom=22, detail_zoom=10, min_pixel_area=0.0,
            style={"kind": "circle", "by": None, "colours": {}, "default": "#6a1b9a"},
        ),
        Layer(
            id="trace_events", model=models.TraceEvent,
            title_vi="Sự kiện truy xuất", title_en="Traceability events",
            description_vi="Sự kiện theo EPCIS 2.0 (thu hoạch, đóng gói, vận chuyển...).",
            description_en="EPCIS 2.0-style events (harvest, packing, shipping...).",
            geometry_type="Point", geometry_nullable=True,
            fields=_bind(models.TraceEvent, [
                F("event_id", "Mã sự kiện", "Event id", required=True),
                F("event_type", "Loại sự kiện", "Event type", required=True, enum=vocab.EPCIS_EVENT_TYPES),
                F("action", "Hành động", "Action", enum=vocab.EPCIS_ACTIONS),
                F("biz_step", "Bước nghiệp vụ", "Business step"),
                F("disposition", "Tình trạng", "Disposition"),
                F("event_time", "Thời điểm", "Event time", required=True),
                F("event_timezone_offset", "Múi giờ", "Time-zone offset"),
                F("read_point", "Điểm ghi nhận", "Read point"),
                F("biz_location", "Địa điểm", "Business location"),
                F("lot_id", "Lô", "Lot", ref=Reference("trace_lots", ("lot_number", "gtin"),
                                                        "lô {lot_number} (GTIN {gtin})", "lot {lot_number} (GTIN {gtin})")),
                F("epc_list", "Danh sách EPC", "EPC list", queryable=False),
                F("input_epcs", "Đầu vào", "Inputs", queryable=False),
                F("output_epcs", "Đầu ra", "Outputs", queryable=False),
                F("quantity_list", "Số lượng", "Quantity list", queryable=False, in_tiles=False),
                F("ilmd", "Thông tin lô (ILMD)", "Lot master data (ILMD)", queryable=False, in_tiles=False),
                F("synthetic", "Dữ liệu mô phỏng", "Synthetic", queryable=False, in_tiles=False),
            ]),
            code_field="event_id", label_field="biz_step", temporal=("event_time", None),
            search_fields=("event_id",), minzoom=8, maxzoom=22, detail_zoom=10, min_pixel_area=0.0,
            style={"kind": "circle", "by": "event_type", "colours": {}, "default": "#ef6c00"},
        ),
    ]


def _record_layers() -> list[Layer]:
    """Season, inspection and pest records of a growing area (issue 11)."""
    area = F("growing_area_id", "Vùng trồng", "Growing area", required=True, references="growing_areas",
             lowzoom=True)
    # a record is where its growing area is: an officer writes the records of the areas in their scope
    common: dict[str, Any] = {"minzoom": 8, "maxzoom": 22, "detail_zoom": 10, "min_pixel_area": 0.0,
                              "scope_via": ("growing_area_id", "growing_areas")}
    return [
        Layer(
            id="seasons", model=models.Season, title_vi="Mùa vụ", title_en="Crop seasons",
            description_vi="Mùa vụ của vùng trồng: cây trồng, giống, ngày xuống giống, dự kiến thu hoạch, sản lượng.",
            description_en="Crop seasons of growing areas: crop, variety, planting and harvest dates, yields.",
            geometry_type="Point", geometry_nullable=True,
            fields=_bind(models.Season, [
                area,
                F("crop", "Cây trồng", "Crop", required=True, enum=tuple(vocab.CROPS), lowzoom=True, format="crop"),
                F("variety", "Giống", "Variety"),
                F("planting_date", "Ngày xuống giống", "Planting date", required=True),
                F("expected_harvest_date", "Dự kiến thu hoạch", "Expected harvest date"),
                F("expected_yield_t", "Sản lượng dự kiến (tấn)", "Expected yield (t)", minimum=0),
                F("actual_yield_t", "Sản lượng thực tế (tấn)", "Actual yield (t)", minimum=0),
                F("notes", "Ghi chú", "Notes", queryable=False),
                F("synthetic", "Dữ liệu mô phỏng", "Synthetic", queryable=False, in_tiles=False),
            ]),
            unique_together=("growing_area_id", "crop", "planting_date"), label_field="crop",
            temporal=("planting_date", "expected_harvest_date"), search_fields=(), **common,
            style={"kind": "circle", "by": "crop", "colours": {}, "default": "#558b2f"},
        ),
        Layer(
            id="inspections", model=models.Inspection, title_vi="Kiểm tra vùng trồng",
            title_en="Growing-area inspections",
            description_vi="Kết quả kiểm tra, giám sát vùng trồng và hạn kiểm tra tiếp theo.",
            description_en="Inspections of growing areas: result, findings and the next due date.",
            geometry_type="Point", geometry_nullable=True,
            fields=_bind(models.Inspection, [
                area,
                F("inspection_date", "Ngày kiểm tra", "Inspection date", required=True),
                F("inspector", "Người kiểm tra", "Inspector", required=True, public=False),
                F("result", "Kết quả", "Result", required=True, enum=tuple(vocab.INSPECTION_RESULTS), lowzoom=True),
                F("findings", "Nhận xét", "Findings", queryable=False),
                F("next_due_date", "Hạn kiểm tra tiếp", "Next due date"),
                F("synthetic", "Dữ liệu mô phỏng", "Synthetic", queryable=False, in_tiles=False),
            ]),
            unique_together=("growing_area_id", "inspection_date"), label_field="result",
            temporal=("inspection_date", None), **common,
            style={"kind": "circle", "by": "result", "default": "#1565c0",
                   "colours": {"pass": "#2e7d32", "conditional": "#f9a825", "fail": "#c62828",
                               "not_inspected": "#9e9e9e"}},
        ),
        Layer(
            id="pest_observations", model=models.PestObservation, title_vi="Sinh vật gây hại",
            title_en="Pest observations",
            description_vi="Theo dõi sinh vật gây hại trên vùng trồng: loài, mức độ, ngày, vị trí.",
            description_en="Pests and diseases observed on growing areas: which, how severe, when, where.",
            geometry_type="Point",
            fields=_bind(models.PestObservation, [
                area,
                F("pest", "Sinh vật gây hại", "Pest or disease", required=True, enum=tuple(vocab.PESTS),
                  lowzoom=True),
                F("severity", "Mức độ", "Severity", required=True, enum=tuple(vocab.SEVERITIES), lowzoom=True),
                F("observed_on", "Ngày phát hiện", "Observed on", required=True),
                F("affected_area_m2", "Diện tích nhiễm (m²)", "Affected area (m²)", minimum=0.01),
                F("notes", "Ghi chú", "Notes", queryable=False),
                F("synthetic", "Dữ liệu mô phỏng", "Synthetic", queryable=False, in_tiles=False),
            ]),
            unique_together=("growing_area_id", "pest", "observed_on"), label_field="pest",
            temporal=("observed_on", None), **common,
            style={"kind": "circle", "by": "severity", "default": "#e65100",
                   "colours": {"low": "#fdd835", "medium": "#fb8c00", "high": "#e53935", "outbreak": "#880e4f"}},
        ),
    ]


LAYERS: dict[str, Layer] = {layer.id: layer for layer in _layers()}


class UnknownLayer(KeyError):
    def __init__(self, layer_id: str) -> None:
        super().__init__(layer_id)
        self.layer_id = layer_id

    def __str__(self) -> str:
        return f"unknown layer {self.layer_id!r}; known layers: {', '.join(LAYERS)}"


def get_layer(layer_id: str) -> Layer:
    try:
        return LAYERS[layer_id]
    except KeyError:
        raise UnknownLayer(layer_id) from None
