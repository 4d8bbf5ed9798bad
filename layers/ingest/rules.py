"""Messages for the cross-field CHECK constraints of `layers/store/models.py`, shared by the importer (a COPY the
database refused) and the writes (an INSERT/UPDATE it refused): the constraint is found by its name suffix."""

from __future__ import annotations

# Cross-field CHECK constraints of layers/store/models.py (by name suffix): (field, vi, en).
RULES: dict[str, tuple[str | None, str, str]] = {
    "reason_required": ("status_reason", "trạng thái tạm dừng/thu hồi phải có lý do (status_reason)",
                        "a suspended/revoked status needs a reason (status_reason)"),
    "code_granted": ("code", "chỉ bản nháp (hoặc bản nháp bị thu hồi) mới không có mã; mã được cấp khi kích hoạt",
                     "only a draft (or a revoked draft) may lack a code; codes are granted at activation"),
    "sold_has_price": ("result_price_vnd", "chỉ lô đã bán (sold) mới có giá trúng, và phải có",
                       "result_price_vnd is required exactly when the status is sold"),
    "result_price": ("result_price_vnd", "giá trúng phải ≥ giá khởi điểm", "result price must be ≥ the starting price"),
    "registration_window": ("registration_end", "hạn đăng ký phải sau ngày mở đăng ký",
                            "registration_end must not be before registration_start"),
    "validity": ("valid_to", "ngày hết hiệu lực phải sau ngày hiệu lực", "valid_to must be after valid_from"),
    "expiry_after_pack": ("expiry_date", "hạn sử dụng phải sau ngày đóng gói", "expiry_date must be after pack_date"),
    "gtin_digits": ("gtin", "GTIN phải có đúng 14 chữ số", "GTIN must be exactly 14 digits"),
    "gln_digits": ("gln", "GLN phải có đúng 13 chữ số", "GLN must be exactly 13 digits"),
    "lot_ai10": ("lot_number", "số lô phải là 1–20 ký tự ASCII in được (GS1 AI 10)",
                 "lot_number must be 1-20 printable ASCII characters (GS1 AI 10)"),
    "action_required": ("action", "action bắt buộc, trừ TransformationEvent (không có action)",
                        "action is required, except for TransformationEvent (which has none)"),
    "tz_offset": ("event_timezone_offset", "múi giờ phải dạng +07:00", "time-zone offset must look like +07:00"),
    "code_digits": ("code", "mã đơn vị hành chính phải gồm 2–5 chữ số", "admin unit code must be 2-5 digits"),
    "deposit_pct": ("deposit_pct", "tỷ lệ đặt trước phải từ 0 đến 100", "deposit_pct must be between 0 and 100"),
    "prices": ("starting_price_vnd", "giá khởi điểm phải > 0 và tiền đặt trước ≥ 0",
               "starting price must be > 0 and the deposit ≥ 0"),
}


def rule_for(constraint: str) -> tuple[str | None, str, str] | None:
    """(field, vi, en) of the rule a constraint name (`ck_<table>_<rule>`) stands for, or None."""
    return next((v for k, v in RULES.items() if constraint.endswith("_" + k)), None)
