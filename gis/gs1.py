"""GS1 identifiers, checked with biip (never by hand): GTIN-14, lot/batch (AI 10), SSCC (AI 00), GLN (AI 414),
expiry date (AI 17), and the URIs that carry them in EPCIS 2.0 — EPC URNs (TDS 2.x) and GS1 Digital Link URIs —
converted to ONE stored form and back.

Stored (canonical) forms, the same in the database, in query answers and in the trace chain:

    instance   SGTIN  https://id.gs1.org/01/{gtin14}/21/{serial}     (urn:epc:id:sgtin:CP.IIR.SERIAL)
               SSCC   https://id.gs1.org/00/{sscc18}                 (urn:epc:id:sscc:CP.SERIALREF)
    class      LGTIN  https://id.gs1.org/01/{gtin14}/10/{lot}        (urn:epc:class:lgtin:CP.IIR.LOT)
               GTIN   https://id.gs1.org/01/{gtin14}                 (urn:epc:idpat:sgtin:CP.IIR.*)
    location   GLN    https://id.gs1.org/414/{gln13}[/254/{ext}]     (urn:epc:id:sgln:CP.LOCREF.EXT)
               area   urn:datso:loc:growing_area:{code}             (a growing area without a GLN)
               house  urn:datso:loc:packing_facility:{code}         (a packing house without a GLN)

Digital Link URIs on any host are accepted (the path decides) and stored on id.gs1.org, biip's canonical form.
EPC URNs carry the company-prefix length in the dot; going back to a URN needs it, taken from biip's GS1
prefix table (`to_urn` returns None when biip does not know it). Errors are `IdentifierError`s naming what is
wrong, in Vietnamese and English.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote, unquote

from biip import ParseError
from biip.checksums import gs1_standard_check_digit
from biip.gln import Gln
from biip.gs1_application_identifiers import GS1ApplicationIdentifier
from biip.gs1_digital_link_uris import GS1DigitalLinkURI
from biip.gs1_element_strings import GS1ElementString
from biip.gtin import Gtin
from biip.sscc import Sscc

from gis.errors import BilingualError

DL_BASE = "https://id.gs1.org"
LOCATION_URN = "urn:datso:loc:"
LOCATION_KINDS = ("growing_area", "packing_facility")
_DIGITS = re.compile(r"^[0-9]+$")
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,39}$")
_URN_PART = re.compile(r"^[A-Za-z0-9!'()*+,\-.:;=_%]+$")   # TDS URN escaping: GS1 AI 82 set, '%' escaped


class IdentifierError(BilingualError):
    """An identifier that is not what it says (bad check digit, wrong length, unknown scheme...)."""

    status = 422


def _err(value: str, vi: str, en: str) -> IdentifierError:
    v = value if len(value) <= 120 else value[:117] + "…"
    return IdentifierError(f"'{v}': {vi}", f"'{v}': {en}")


def _biip_message(exc: Exception) -> str:
    return str(exc).split("\n")[0]


# -- plain identifiers ---------------------------------------------------------------------------------------

@lru_cache(maxsize=65536)
def gtin(value: str) -> str:
    """A GTIN (8, 12, 13 or 14 digits) with a right check digit → its 14-digit form."""
    s = str(value).strip()
    if not _DIGITS.match(s) or len(s) not in (8, 12, 13, 14):
        raise _err(s, "GTIN phải có 8, 12, 13 hoặc 14 chữ số", "a GTIN has 8, 12, 13 or 14 digits")
    try:
        return Gtin.parse(s).as_gtin_14()
    except ParseError as exc:
        raise _err(s, f"GTIN không hợp lệ (sai số kiểm tra?): {_biip_message(exc)}",
                   f"invalid GTIN: {_biip_message(exc)}") from None


def _element(ai: str, value: str, what_vi: str, what_en: str) -> GS1ElementString:
    try:
        es = GS1ElementString.parse(ai + value)
    except ParseError as exc:
        raise _err(value, f"{what_vi} không hợp lệ: {_biip_message(exc)}",
                   f"invalid {what_en}: {_biip_message(exc)}") from None
    if es.ai.ai != ai or es.value != value:
        raise _err(value, f"{what_vi} không hợp lệ (AI {ai})", f"invalid {what_en} (AI {ai})")
    return es


_AI_PATTERN = {ai: re.compile(GS1ApplicationIdentifier.extract(ai).pattern) for ai in ("10", "21", "254")}


def _ai_text(ai: str, value: str, what_vi: str, what_en: str) -> str:
    # biip's own pattern of the AI (its GS1 AI table), without building a whole element string
    if not _AI_PATTERN[ai].fullmatch(ai + value):
        raise _err(value, f"{what_vi} không hợp lệ", f"invalid {what_en}")
    return value


def lot(value: str) -> str:
    """A lot/batch number (AI 10: 1–20 characters of the GS1 AI encodable set 82, no spaces)."""
    return _ai_text("10", str(value), "Số lô (AI 10, 1–20 ký tự GS1)", "lot/batch (AI 10: 1-20 GS1 characters)")


def serial(value: str) -> str:
    """A serial number (AI 21: 1–20 characters of set 82)."""
    return _ai_text("21", str(value), "Số sê-ri (AI 21)", "serial number (AI 21)")


def _parsed(parse: Callable[[str], Sscc | Gln], value: str, what: str, digits: int) -> str:
    """An identifier biip parses on its own (SSCC, GLN): its canonical digits, or one bilingual error."""
    s = str(value).strip()
    try:
        return parse(s).value
    except ParseError as exc:
        raise _err(s, f"{what} không hợp lệ ({digits} chữ số, số kiểm tra đúng): {_biip_message(exc)}",
                   f"invalid {what}: {_biip_message(exc)}") from None


@lru_cache(maxsize=65536)
def sscc(value: str) -> str:
    """An SSCC: 18 digits with a right check digit."""
    return _parsed(Sscc.parse, value, "SSCC", 18)


@lru_cache(maxsize=65536)
def gln(value: str) -> str:
    """A GLN (AI 414): 13 digits with a right check digit."""
    return _parsed(Gln.parse, value, "GLN", 13)


def expiry(value: str) -> dt.date:
    """An expiry date: AI 17 (YYMMDD; day 00 = last day of the month) or an ISO date (YYYY-MM-DD, as in ILMD)."""
    s = str(value).strip()
    if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", s):
        try:
            return dt.date.fromisoformat(s)
        except ValueError:
            raise _err(s, "ngày hết hạn không có thật", "not a real expiry date") from None
    es = _element("17", s, "Hạn sử dụng (AI 17, YYMMDD)", "expiry date (AI 17, YYMMDD)")
    if es.date is None:
        raise _err(s, "hạn sử dụng không hợp lệ", "invalid expiry date")
    return es.date


# -- URIs --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Identifier:
    """A parsed identifier URI: `kind` sgtin | sscc | lgtin | gtin | gln | growing_area | packing_facility,
    `uri` the stored form, and its parts."""

    kind: str
    uri: str
    gtin: str | None = None
    lot: str | None = None
    serial: str | None = None
    sscc: str | None = None
    gln: str | None = None
    extension: str | None = None
    code: str | None = None         # growing-area / packing-house code
    expiry: dt.date | None = None   # AI 17 when a Digital Link carried it (?17=YYMMDD)

    @property
    def is_instance(self) -> bool:
        return self.kind in ("sgtin", "sscc")

    @property
    def is_class(self) -> bool:
        return self.kind in ("lgtin", "gtin")

    @property
    def is_location(self) -> bool:
        return self.kind in ("gln", *LOCATION_KINDS)


def _dl(*pairs: tuple[str, str]) -> str:
    return DL_BASE + "".join(f"/{ai}/{quote(v, safe='')}" for ai, v in pairs)


def _urn_parts(value: str, prefix: str, n: int) -> list[str]:
    body = value[len(prefix):]
    parts = body.split(".", n - 1) if n > 1 else [body]
    if len(parts) != n or any(not p for p in parts):
        raise _err(value, f"URN phải có dạng {prefix}" + ".".join(["…"] * n), f"expected {prefix}"
                   + ".".join(["…"] * n))
    return parts


def _gtin_from_urn(value: str, cp: str, iir: str) -> str:
    if not (_DIGITS.match(cp) and _DIGITS.match(iir)) or len(cp) + len(iir) != 13 or not 6 <= len(cp) <= 12:
        raise _err(value, "tiền tố doanh nghiệp + chỉ số/mã mặt hàng phải đủ 13 chữ số",
                   "company prefix + indicator/item reference must be 13 digits")
    body = iir[0] + cp + iir[1:]
    return gtin(body + str(gs1_standard_check_digit(body)))


def _urn_text(value: str, part: str) -> str:
    if not _URN_PART.match(part):
        raise _err(value, "ký tự không được phép trong URN (cần mã hóa %)", "characters not allowed in an EPC URN")
    return unquote(part)


# the usual shapes of a Digital Link path, read directly (each value still checked with biip); anything else
# (query strings, other keys, compressed forms) goes through biip's Digital Link parser
_DL_FAST = re.compile(r"^https?://[^/?#]+(?:/[^?#]*?)?/(01|00|414)/([0-9]{8,18})(?:/(10|21|254)/([^/?#]+))?$")


def _from_digital_link(value: str) -> Identifier:
    m = _DL_FAST.match(value)
    if m is not None and "%" not in (m.group(4) or ""):
        key, num, q, qv = m.groups()
        if key == "01":
            g = gtin(num)
            if q == "21":
                s = serial(qv)
                return Identifier("sgtin", _dl(("01", g), ("21", s)), gtin=g, serial=s)
            if q == "10":
                lt = lot(qv)
                return Identifier("lgtin", _dl(("01", g), ("10", lt)), gtin=g, lot=lt)
            if q is None:
                return Identifier("gtin", _dl(("01", g)), gtin=g)
        elif key == "00" and q is None:
            s = sscc(num)
            return Identifier("sscc", _dl(("00", s)), sscc=s)
        elif key == "414" and q in (None, "254"):
            g = gln(num)
            ext = _ai_text("254", qv, "Phần mở rộng GLN (AI 254)", "GLN extension (AI 254)") if q else None
            return Identifier("gln", _dl(("414", g), *((("254", ext),) if ext else ())), gln=g, extension=ext)
    try:
        d = GS1DigitalLinkURI.parse(value)
    except ParseError as exc:
        raise _err(value, f"URI GS1 Digital Link không hợp lệ: {_biip_message(exc)}",
                   f"invalid GS1 Digital Link URI: {_biip_message(exc)}") from None
    by_ai = {e.ai.ai: e for e in d.element_strings}
    for e in d.element_strings:     # biip keeps the check-digit error beside the value: raise it
        for err in (e.gtin_error, e.sscc_error, e.gln_error):
            if err:
                raise _err(value, f"sai số kiểm tra: {err}", f"wrong check digit: {err}")
    exp = by_ai["17"].date if "17" in by_ai else None
    if "01" in by_ai:
        g = gtin(by_ai["01"].value)
        if "21" in by_ai:
            s = serial(by_ai["21"].value)
            return Identifier("sgtin", _dl(("01", g), ("21", s)), gtin=g, serial=s, expiry=exp)
        if "10" in by_ai:
            lt = lot(by_ai["10"].value)
            return Identifier("lgtin", _dl(("01", g), ("10", lt)), gtin=g, lot=lt, expiry=exp)
        return Identifier("gtin", _dl(("01", g)), gtin=g, expiry=exp)
    if "00" in by_ai:
        s = sscc(by_ai["00"].value)
        return Identifier("sscc", _dl(("00", s)), sscc=s)
    if "414" in by_ai:
        g = gln(by_ai["414"].value)
        ext = by_ai["254"].value if "254" in by_ai else None
        return Identifier("gln", _dl(("414", g), *((("254", ext),) if ext else ())), gln=g, extension=ext)
    raise _err(value, "Digital Link không mang GTIN (01), SSCC (00) hay GLN (414)",
               "the Digital Link carries no GTIN (01), SSCC (00) or GLN (414)")


def parse_uri(value: str) -> Identifier:
    """Any accepted identifier URI → its parsed form (raises IdentifierError)."""
    if not isinstance(value, str) or not value.strip():
        raise IdentifierError("Định danh trống hoặc không phải chuỗi", "An identifier must be a non-empty string")
    v = value.strip()
    if len(v) > 512:
        raise _err(v, "định danh quá dài (tối đa 512 ký tự)", "identifier too long (512 characters at most)")
    low = v.lower()
    if low.startswith(("http://", "https://")):
        return _from_digital_link(v)
    if low.startswith("urn:epc:id:sgtin:"):
        cp, iir, ser = _urn_parts(v, "urn:epc:id:sgtin:", 3)
        g = _gtin_from_urn(v, cp, iir)
        s = serial(_urn_text(v, ser))
        return Identifier("sgtin", _dl(("01", g), ("21", s)), gtin=g, serial=s)
    if low.startswith("urn:epc:class:lgtin:"):
        cp, iir, lt = _urn_parts(v, "urn:epc:class:lgtin:", 3)
        g = _gtin_from_urn(v, cp, iir)
        lt = lot(_urn_text(v, lt))
        return Identifier("lgtin", _dl(("01", g), ("10", lt)), gtin=g, lot=lt)
    if low.startswith("urn:epc:idpat:sgtin:"):
        cp, iir, star = _urn_parts(v, "urn:epc:idpat:sgtin:", 3)
        if star != "*":
            raise _err(v, "mẫu idpat:sgtin phải kết thúc bằng .*", "an idpat:sgtin pattern ends with .*")
        g = _gtin_from_urn(v, cp, iir)
        return Identifier("gtin", _dl(("01", g)), gtin=g)
    if low.startswith("urn:epc:id:sscc:"):
        cp, ref = _urn_parts(v, "urn:epc:id:sscc:", 2)
        if not (_DIGITS.match(cp) and _DIGITS.match(ref)) or len(cp) + len(ref) != 17:
            raise _err(v, "tiền tố + số tham chiếu SSCC phải đủ 17 chữ số", "company prefix + serial reference "
                                                                          "must be 17 digits")
        body = ref[0] + cp + ref[1:]
        s = sscc(body + str(gs1_standard_check_digit(body)))
        return Identifier("sscc", _dl(("00", s)), sscc=s)
    if low.startswith("urn:epc:id:sgln:"):
        cp, ref, ext = _urn_parts(v, "urn:epc:id:sgln:", 3)
        if not (_DIGITS.match(cp) and (_DIGITS.match(ref) or ref == "")) or len(cp) + len(ref) != 12:
            raise _err(v, "tiền tố + mã địa điểm phải đủ 12 chữ số", "company prefix + location reference must be "
                                                                      "12 digits")
        body = cp + ref
        g = gln(body + str(gs1_standard_check_digit(body)))
        e_text = _urn_text(v, ext)
        e = None if e_text == "0" else e_text
        return Identifier("gln", _dl(("414", g), *((("254", e),) if e else ())), gln=g, extension=e)
    if low.startswith(LOCATION_URN):
        kind, _, code = v[len(LOCATION_URN):].partition(":")
        if kind not in LOCATION_KINDS or not _CODE.match(code):
            raise _err(v, f"địa điểm datso phải là {LOCATION_URN}growing_area:<mã> hoặc "
                          f"{LOCATION_URN}packing_facility:<mã>",
                       f"a datso location is {LOCATION_URN}growing_area:<code> or {LOCATION_URN}packing_facility:<code>")
        return Identifier(kind, f"{LOCATION_URN}{kind}:{code}", code=code)
    raise _err(v, "không nhận ra định danh (dùng EPC URN, GS1 Digital Link hoặc urn:datso:loc:…)",
               "unrecognised identifier (use an EPC URN, a GS1 Digital Link URI or urn:datso:loc:…)")


def lot_uri(gtin14: str, lot_value: str) -> str:
    """The stored URI of a lot whose GTIN-14 and lot number are already checked (e.g. read from trace_lots)."""
    return _dl(("01", gtin14), ("10", lot_value))


def location_uri(kind: str, code: str, gln_value: str | None = None) -> str:
    """The stored location URI of a growing area / packing house: its GLN when it has one, else the datso URI."""
    if gln_value:
        return _dl(("414", gln(gln_value)))
    if kind not in LOCATION_KINDS:
        raise ValueError(kind)
    return f"{LOCATION_URN}{kind}:{code}"


def digital_link(gtin_value: str, lot_value: str | None = None, base: str = DL_BASE) -> str:
    """The Digital Link URI of a product or a lot on a resolver base (default id.gs1.org)."""
    g = gtin(gtin_value)
    pairs = [("01", g)] + ([("10", lot(lot_value))] if lot_value is not None else [])
    return base.rstrip("/") + "".join(f"/{ai}/{quote(v, safe='')}" for ai, v in pairs)


def _company_prefix_len(digits: str, kind: str) -> int | None:
    try:
        if kind == "gtin":
            cp = Gtin.parse(digits).company_prefix
        elif kind == "sscc":
            cp = Sscc.parse(digits).company_prefix
        else:
            cp = Gln.parse(digits).company_prefix
    except ParseError:
        return None
    return len(cp.value) if cp is not None else None


def _urn_escape(s: str) -> str:
    return quote(s, safe="!'()*+,-.:;=_")


def to_urn(value: str) -> str | None:
    """The EPC URN of an identifier (instance, class or GLN location), or None when it has none (datso
    locations) or biip does not know the company-prefix length."""
    ident = parse_uri(value)
    if ident.kind in ("sgtin", "lgtin", "gtin"):
        assert ident.gtin is not None
        n = _company_prefix_len(ident.gtin, "gtin")
        if n is None:
            return None
        g13 = ident.gtin[:13]              # indicator + company prefix + item reference
        cp, iir = g13[1:1 + n], g13[0] + g13[1 + n:]
        if ident.kind == "sgtin":
            return f"urn:epc:id:sgtin:{cp}.{iir}.{_urn_escape(ident.serial or '')}"
        if ident.kind == "lgtin":
            return f"urn:epc:class:lgtin:{cp}.{iir}.{_urn_escape(ident.lot or '')}"
        return f"urn:epc:idpat:sgtin:{cp}.{iir}.*"
    if ident.kind == "sscc":
        assert ident.sscc is not None
        n = _company_prefix_len(ident.sscc, "sscc")
        if n is None:
            return None
        s17 = ident.sscc[:17]
        return f"urn:epc:id:sscc:{s17[1:1 + n]}.{s17[0]}{s17[1 + n:]}"
    if ident.kind == "gln":
        assert ident.gln is not None
        n = _company_prefix_len(ident.gln, "gln")
        if n is None:
            return None
        g12 = ident.gln[:12]
        return f"urn:epc:id:sgln:{g12[:n]}.{g12[n:]}.{_urn_escape(ident.extension or '0')}"
    return None


__all__ = ["LOCATION_URN", "DL_BASE", "LOCATION_KINDS", "Identifier", "IdentifierError", "digital_link", "expiry",
           "gln", "gtin", "location_uri", "lot", "lot_uri", "parse_uri", "serial", "sscc", "to_urn"]
