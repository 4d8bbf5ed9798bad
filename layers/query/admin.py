"""The 2025 administrative reform: old->new and new->old lookups in `admin_crosswalk`, and an address
written with the old units converted to the new ones (the `vietnamadminunits` package).

Plain functions on an asyncpg connection; the route is `GET /admin/crosswalk` (api/admin.py)."""

from __future__ import annotations

import re
from typing import Any

from gis.errors import BilingualError

CODE = re.compile(r"^[0-9]{2,5}$")
MAX_ADDRESS = 200


class CrosswalkError(BilingualError):
    """A crosswalk request that cannot be answered; bilingual message naming the parameter."""


def _link(r: Any, side: str) -> dict[str, Any]:
    return {"code": r[f"{side}_code"], "scheme": r[f"{side}_scheme"], "name": r[f"{side}_name"],
            **({"level": r["old_level"]} if side == "old" else {}),
            "share": float(r["share"]) if r["share"] is not None else None}


async def crosswalk(conn: Any, old: str | None = None, new: str | None = None) -> dict[str, Any]:
    """`old`: the units an old (2004-scheme) unit went into, with the share of its area in each;
    `new`: the old units a new (2025-scheme) unit was made from, with the share of each old unit it took."""
    if (old is None) == (new is None):
        raise CrosswalkError("Cần đúng một tham số: old (mã đơn vị cũ) hoặc new (mã đơn vị mới)",
                             "Give exactly one parameter: old (an old unit's code) or new (a new unit's code)")
    param, code = ("old", old) if old is not None else ("new", new)
    assert code is not None
    code = code.strip()
    if not CODE.match(code):
        raise CrosswalkError(f"{param}: mã đơn vị hành chính gồm 2 đến 5 chữ số (vd. 28756)",
                             f"{param}: an administrative unit code has 2 to 5 digits (e.g. 28756)")
    rows = await conn.fetch(
        f"SELECT old_code, old_scheme, old_name, old_level, new_code, new_scheme, new_name, share, effective, "  # noqa: S608
        f"legal_basis FROM admin_crosswalk WHERE {param}_code = $1 ORDER BY share DESC NULLS LAST, old_code, new_code",
        code)
    if not rows:
        raise CrosswalkError(f"{param}: không có mã {code} trong bảng chuyển đổi",
                             f"{param}: no code {code} in the crosswalk", status=404)
    other = "new" if param == "old" else "old"
    first = rows[0]
    unit = {"code": code, "scheme": first[f"{param}_scheme"], "name": first[f"{param}_name"]}
    if param == "old":
        unit["level"] = first["old_level"]
    return {param: unit, "effective": first["effective"].isoformat(), "legal_basis": first["legal_basis"],
            "split": param == "old" and len(rows) > 1,
            ("new" if param == "old" else "old"): [_link(r, other) for r in rows]}


def convert_address(address: str | None) -> dict[str, Any]:
    """An address written with the pre-2025 units, written with the new ones (province, commune or ward)."""
    text = (address or "").strip()
    if not text:
        raise CrosswalkError("address: nhập địa chỉ cần chuyển đổi", "address: enter the address to convert")
    if len(text) > MAX_ADDRESS or any(ord(c) < 32 for c in text):
        raise CrosswalkError(f"address: địa chỉ tối đa {MAX_ADDRESS} ký tự, không có ký tự điều khiển",
                             f"address: at most {MAX_ADDRESS} characters, no control characters")
    from vietnamadminunits import convert_address as _convert

    try:
        unit = _convert(text)
    except Exception:   # the package raises plain exceptions for addresses it cannot read
        unit = None
    if unit is None or not getattr(unit, "ward", None):
        raise CrosswalkError("address: không nhận ra xã/phường, huyện, tỉnh cũ trong địa chỉ",
                             "address: no old commune/ward, district and province recognised in the address")
    return {"address": text, "converted": unit.get_address(),
            "new": {"province": unit.province, "province_code": unit.province_code, "ward": unit.ward,
                    "ward_code": unit.ward_code, "street": unit.street or None}}
