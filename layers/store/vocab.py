"""Controlled vocabularies: land-use codes, lifecycle states, EPCIS enums. Each list is enforced as a CHECK
constraint in the database and used for validation messages on import and API writes."""

from __future__ import annotations

# Circular 08/2024/TT-BTNMT land-use codes (see shared domain notes).
LAND_USE_CODES: dict[str, str] = {
    "LUC": "Đất chuyên trồng lúa", "LUK": "Đất trồng lúa còn lại", "HNK": "Đất trồng cây hằng năm khác",
    "CLN": "Đất trồng cây lâu năm", "RDD": "Đất rừng đặc dụng", "RPH": "Đất rừng phòng hộ",
    "RSX": "Đất rừng sản xuất", "NTS": "Đất nuôi trồng thủy sản", "CNT": "Đất chăn nuôi tập trung",
    "LMU": "Đất làm muối", "NKH": "Đất nông nghiệp khác", "ONT": "Đất ở tại nông thôn",
    "ODT": "Đất ở tại đô thị", "TSC": "Đất xây dựng trụ sở cơ quan", "CQP": "Đất quốc phòng",
    "CAN": "Đất an ninh", "DVH": "Đất xây dựng cơ sở văn hóa", "DYT": "Đất xây dựng cơ sở y tế",
    "DGD": "Đất xây dựng cơ sở giáo dục và đào tạo", "DTT": "Đất xây dựng cơ sở thể dục, thể thao",
    "DKH": "Đất xây dựng cơ sở khoa học và công nghệ", "DSK": "Đất xây dựng công trình sự nghiệp khác",
    "CSK": "Đất sản xuất, kinh doanh phi nông nghiệp", "TMD": "Đất thương mại, dịch vụ",
    "SKC": "Đất cơ sở sản xuất phi nông nghiệp", "SKS": "Đất sử dụng cho hoạt động khoáng sản",
    "SKN": "Đất khu công nghiệp", "DGT": "Đất giao thông", "DTL": "Đất thủy lợi",
    "DDT": "Đất có di tích lịch sử - văn hóa", "DRA": "Đất bãi thải, xử lý chất thải",
    "DNL": "Đất công trình năng lượng", "TON": "Đất tôn giáo", "TIN": "Đất tín ngưỡng",
    "SON": "Đất sông, ngòi, kênh, rạch, suối", "MNC": "Đất có mặt nước chuyên dùng",
    "PNK": "Đất phi nông nghiệp khác", "BCS": "Đất bằng chưa sử dụng", "DCS": "Đất đồi núi chưa sử dụng",
    "NCS": "Núi đá không có rừng cây",
}
# Legacy codes seen on old certificates -> current code.
LEGACY_LAND_USE: dict[str, str] = {"BHK": "HNK", "NHK": "HNK", "LUN": "LUK", "ONT*": "ONT", "TSN": "DSK"}

PARCEL_STATUSES = ("managed", "leased", "allocated", "planned_for_auction", "auctioned", "encroached")
AUCTION_STATUSES = ("planned", "announced", "registration_open", "closed", "sold", "cancelled")
GROWING_AREA_STATUSES = ("draft", "active", "suspended", "revoked", "expired")
GROWING_AREA_REASON_STATUSES = ("suspended", "revoked")     # need a status_reason (CHECK reason_required)
FACILITY_STATUSES = ("draft", "active", "suspended", "revoked", "expired")
FACILITY_REASON_STATUSES = ("suspended", "revoked")         # need a status_reason (CHECK reason_required)
ADMIN_LEVELS = ("province", "district", "commune")
ADMIN_SCHEMES = ("2004", "2025")
# kinds of unit: xã, phường, thị trấn, đặc khu (commune level); thành phố, thị xã, huyện, quận (old districts)
ADMIN_KINDS = ("province", "city", "town", "district", "urban_district", "commune", "ward", "township",
               "special_zone")
EPCIS_EVENT_TYPES = ("ObjectEvent", "AggregationEvent", "TransactionEvent", "TransformationEvent",
                     "AssociationEvent")
EPCIS_ACTIONS = ("ADD", "OBSERVE", "DELETE")
USER_ROLES = ("officer", "admin", "producer", "packer")   # producer: own growing areas; packer: own houses
# CBV 2.0 (GS1 Core Business Vocabulary, https://ref.gs1.org/cbv/): every business step and disposition.
# Events carry the short name ("shipping") or the URI (https://ref.gs1.org/cbv/BizStep-shipping; the CBV 1.x
# URN urn:epcglobal:cbv:bizstep:shipping too); datso stores the short name. No "harvesting": a harvest is
# commissioning (ObjectEvent ADD, lot data in ILMD).
CBV_BIZ_STEPS = (
    "accepting", "arriving", "assembling", "collecting", "commissioning", "consigning", "creating_class_instance",
    "cycle_counting", "decommissioning", "departing", "destroying", "disassembling", "dispensing", "encoding",
    "entering_exiting", "holding", "inspecting", "installing", "killing", "loading", "other", "packing", "picking",
    "receiving", "removing", "repackaging", "repairing", "replacing", "reserving", "retail_selling", "sampling",
    "sensor_reporting", "shipping", "staging_outbound", "stock_taking", "stocking", "storing", "transporting",
    "unloading", "unpacking", "void_shipping")
CBV_DISPOSITIONS = (
    "active", "available", "completeness_inferred", "completeness_verified", "conformant", "container_closed",
    "container_open", "damaged", "destroyed", "dispensed", "disposed", "encoded", "expired", "in_progress",
    "in_transit", "inactive", "mismatch_instance", "mismatch_class", "mismatch_quantity", "needs_replacement",
    "no_pedigree_match", "non_conformant", "non_sellable_other", "partially_dispensed", "recalled", "reserved",
    "retail_sold", "returned", "sellable_accessible", "sellable_not_accessible", "stolen", "unavailable",
    "unknown")
CBV_BIZ_TRANSACTION_TYPES = ("bol", "cert", "desadv", "inv", "pedigree", "po", "poc", "prodorder", "recadv", "rma",
                             "testprd", "testres", "upevt")
CBV_SOURCE_DEST_TYPES = ("owning_party", "possessing_party", "location")
CROPS = {"coconut": "Dừa", "durian": "Sầu riêng", "pomelo": "Bưởi", "dragon_fruit": "Thanh long",
         "rice": "Lúa", "mango": "Xoài", "longan": "Nhãn", "rambutan": "Chôm chôm"}
# Crop class for the minimum area of a growing area (Decision 3156: 1 ha perennial, 0.1 ha annual crops).
CROP_CLASSES: dict[str, str] = {"coconut": "perennial", "durian": "perennial", "pomelo": "perennial",
                                "dragon_fruit": "perennial", "rice": "annual", "mango": "perennial",
                                "longan": "perennial", "rambutan": "perennial"}
STANDARDS = ("VietGAP", "GlobalGAP", "Organic", "None")
MARKETS = ("VN", "CN", "US", "EU", "JP", "KR", "AU", "NZ")
HISTORY_ACTIONS = ("insert", "update", "delete")

# English names of the land-use codes (the Vietnamese ones are LAND_USE_CODES): English pages and /lookup.
LAND_USE_NAMES_EN: dict[str, str] = {
    "LUC": "Specialised rice land", "LUK": "Other rice land", "HNK": "Other annual-crop land",
    "CLN": "Perennial-crop land", "RDD": "Special-use forest land", "RPH": "Protection forest land",
    "RSX": "Production forest land", "NTS": "Aquaculture land", "CNT": "Concentrated livestock land",
    "LMU": "Salt-making land", "NKH": "Other agricultural land", "ONT": "Rural residential land",
    "ODT": "Urban residential land", "TSC": "Land for office buildings", "CQP": "Defence land",
    "CAN": "Security land", "DVH": "Land for cultural facilities", "DYT": "Land for health facilities",
    "DGD": "Land for education and training facilities", "DTT": "Land for sports facilities",
    "DKH": "Land for science and technology facilities", "DSK": "Land for other public-service works",
    "CSK": "Non-agricultural production and business land", "TMD": "Commercial and service land",
    "SKC": "Non-agricultural production facility land", "SKS": "Mineral-activity land",
    "SKN": "Industrial-park land", "DGT": "Transport land", "DTL": "Irrigation land",
    "DDT": "Historical and cultural relic land", "DRA": "Waste dump and treatment land",
    "DNL": "Energy-works land", "TON": "Religious land", "TIN": "Belief land",
    "SON": "Rivers, canals and streams", "MNC": "Special-use water surface", "PNK": "Other non-agricultural land",
    "BCS": "Unused flat land", "DCS": "Unused hilly land", "NCS": "Rocky mountains without forest",
}
# Land-use plan classes (quy hoạch sử dụng đất, Circular 08/2024/TT-BTNMT codes): the classes a planning zone
# may carry; names in LAND_USE_CODES / LAND_USE_NAMES_EN.
PLAN_CLASSES: tuple[str, ...] = tuple(LAND_USE_CODES)
# Land-price zones (bảng giá đất): where the residential price applies, and the position (vị trí 1-4).
PRICE_AREA_KINDS: dict[str, tuple[str, str]] = {"urban": ("Đô thị", "Urban"), "rural": ("Nông thôn", "Rural")}
PRICE_POSITIONS = (1, 2, 3, 4)
# Season, inspection and pest records (issue 11). Codes are stored; the Vietnamese labels are accepted on import
# and in the API (with or without diacritics, any case: layers/catalog/labels.py) and shown on pages.
INSPECTION_RESULTS = {"pass": "Đạt", "conditional": "Đạt có điều kiện", "fail": "Không đạt",
                      "not_inspected": "Chưa kiểm tra"}
PESTS = {"brown_planthopper": "Rầy nâu", "stem_borer": "Sâu đục thân", "anthracnose": "Bệnh thán thư",
         "fruit_fly": "Ruồi đục quả", "blast": "Bệnh đạo ôn", "leaf_blight": "Bệnh bạc lá",
         "mealybug": "Rệp sáp", "red_palm_weevil": "Đuông dừa", "coconut_caterpillar": "Sâu đầu đen hại dừa",
         "phytophthora": "Bệnh nứt thân xì mủ", "stem_canker": "Bệnh đốm nâu thanh long",
         "golden_apple_snail": "Ốc bươu vàng", "thrips": "Bọ trĩ"}
SEVERITIES = {"low": "Nhẹ", "medium": "Trung bình", "high": "Nặng", "outbreak": "Dịch"}
MARKET_LABELS = {"VN": "Việt Nam", "CN": "Trung Quốc", "US": "Hoa Kỳ", "EU": "Liên minh châu Âu",
                 "JP": "Nhật Bản", "KR": "Hàn Quốc", "AU": "Úc", "NZ": "New Zealand"}

# Vietnamese labels of the vocabularies that have them, found by their codes (layers/catalog/labels.py).
LABELS: tuple[dict[str, str], ...] = (CROPS, INSPECTION_RESULTS, PESTS, SEVERITIES, MARKET_LABELS,
                                      LAND_USE_CODES)
