"""Vietnamese legacy text encodings: a TCVN3 (ABC, TCVN 5712:1993 VN3) codec and a detector that tells
UTF-8, Windows-1258 and TCVN3 apart from the text itself (for Shapefiles without a .cpg and CSV files)."""

from __future__ import annotations

import codecs
import unicodedata
from collections.abc import Iterable

# TCVN3 (ABC) byte -> character; every other byte is the same as ISO-8859-1.
_TCVN3 = {
    0xA1: "Ă", 0xA2: "Â", 0xA3: "Ê", 0xA4: "Ô", 0xA5: "Ơ", 0xA6: "Ư", 0xA7: "Đ",
    0xA8: "ă", 0xA9: "â", 0xAA: "ê", 0xAB: "ô", 0xAC: "ơ", 0xAD: "ư", 0xAE: "đ",
    0xB5: "à", 0xB6: "ả", 0xB7: "ã", 0xB8: "á", 0xB9: "ạ",
    0xBB: "ằ", 0xBC: "ẳ", 0xBD: "ẵ", 0xBE: "ắ", 0xC6: "ặ",
    0xC7: "ầ", 0xC8: "ẩ", 0xC9: "ẫ", 0xCA: "ấ", 0xCB: "ậ",
    0xCC: "è", 0xCE: "ẻ", 0xCF: "ẽ", 0xD0: "é", 0xD1: "ẹ",
    0xD2: "ề", 0xD3: "ể", 0xD4: "ễ", 0xD5: "ế", 0xD6: "ệ",
    0xD7: "ì", 0xD8: "ỉ", 0xDC: "ĩ", 0xDD: "í", 0xDE: "ị",
    0xDF: "ò", 0xE1: "ỏ", 0xE2: "õ", 0xE3: "ó", 0xE4: "ọ",
    0xE5: "ồ", 0xE6: "ổ", 0xE7: "ỗ", 0xE8: "ố", 0xE9: "ộ",
    0xEA: "ờ", 0xEB: "ở", 0xEC: "ỡ", 0xED: "ớ", 0xEE: "ợ",
    0xEF: "ù", 0xF1: "ủ", 0xF2: "ũ", 0xF3: "ú", 0xF4: "ụ",
    0xF5: "ừ", 0xF6: "ử", 0xF7: "ữ", 0xF8: "ứ", 0xF9: "ự",
    0xFA: "ỳ", 0xFB: "ỷ", 0xFC: "ỹ", 0xFD: "ý", 0xFE: "ỵ",
}
_DECODING_TABLE = "".join(_TCVN3.get(i, chr(i)) for i in range(256))
_ENCODING_MAP = codecs.charmap_build(_DECODING_TABLE)


class _Tcvn3Codec(codecs.Codec):
    def encode(self, input: str, errors: str = "strict") -> tuple[bytes, int]:
        return codecs.charmap_encode(unicodedata.normalize("NFC", input), errors, _ENCODING_MAP)

    def decode(self, input: bytes, errors: str = "strict") -> tuple[str, int]:  # type: ignore[override]
        return codecs.charmap_decode(input, errors, _DECODING_TABLE)  # type: ignore[arg-type]


def _search(name: str) -> codecs.CodecInfo | None:
    if name.replace("-", "").replace("_", "").lower() in ("tcvn3", "tcvn", "abc", "tcvn5712"):
        c = _Tcvn3Codec()
        return codecs.CodecInfo(c.encode, c.decode, name="tcvn3")  # type: ignore[arg-type]
    return None


codecs.register(_search)

# Names people put in .cpg files or pass to --encoding.
_ALIASES = {"65001": "utf-8", "utf8": "utf-8", "utf-8": "utf-8", "1258": "cp1258", "cp1258": "cp1258",
            "windows-1258": "cp1258", "windows1258": "cp1258", "ansi 1258": "cp1258", "tcvn3": "tcvn3",
            "tcvn": "tcvn3", "abc": "tcvn3", "tcvn-3": "tcvn3", "latin1": "latin-1", "iso-8859-1": "latin-1",
            "88591": "latin-1", "ldid/87": "latin-1"}


def normalise_encoding(name: str) -> str:
    """A Python codec name for an encoding name from a .cpg or the command line; ValueError if unknown."""
    key = name.strip().lower()
    enc = _ALIASES.get(key) or _ALIASES.get(key.replace(" ", "")) or key
    try:
        return codecs.lookup(enc).name
    except LookupError:
        raise ValueError(name) from None


_VN_LOWER = set("aàáảãạăằắẳẵặâầấẩẫậbcdđeèéẻẽẹêềếểễệfghiìíỉĩịjklmnoòóỏõọôồốổỗộơờớởỡợpqrstuùúủũụưừứửữựvwxyỳýỷỹỵz")
_VN_LETTERS = _VN_LOWER | {c.upper() for c in _VN_LOWER}
_TONES = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}


def _plausible(word: str) -> bool:
    if any(c not in _VN_LETTERS for c in word):
        return False
    if sum(1 for c in unicodedata.normalize("NFD", word) if c in _TONES) > 1:
        return False
    return word == word.lower() or word == word.upper() or word == word[0] + word[1:].lower()


def _score(text: str) -> float:
    text = unicodedata.normalize("NFC", text)
    words = [w for w in "".join(c if (c.isalpha() or ord(c) > 127) else " " for c in text).split()
             if any(ord(c) > 127 for c in w)]
    if not words:
        return 0.0
    return sum(1 for w in words if _plausible(w)) / len(words)


def detect(samples: Iterable[bytes]) -> str:
    """Guess the encoding of Vietnamese text: UTF-8 if it decodes strictly, else Windows-1258 or TCVN3,
    whichever yields more plausible Vietnamese words (one tone mark per syllable, sane letter case)."""
    data = b"\n".join(samples)
    if not any(b > 127 for b in data):
        return "utf-8"
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    scores = {enc: _score(data.decode(enc, errors="replace")) for enc in ("cp1258", "tcvn3")}
    return max(scores, key=lambda e: (scores[e], e == "cp1258"))


def decode(data: bytes, encoding: str) -> str:
    return unicodedata.normalize("NFC", data.decode(encoding, errors="replace"))


def _cp1258_char(ch: str) -> str:
    try:
        ch.encode("cp1258")
        return ch
    except UnicodeEncodeError:
        parts = unicodedata.normalize("NFD", ch)
        base = unicodedata.normalize("NFC", "".join(c for c in parts if c not in _TONES))
        return base + "".join(c for c in parts if c in _TONES)


def encode(text: str, encoding: str) -> bytes:
    """Encode text in a (legacy) Vietnamese encoding; Windows-1258 puts tone marks as combining characters."""
    enc = normalise_encoding(encoding)
    text = unicodedata.normalize("NFC", text)
    if enc == "cp1258":
        text = "".join(_cp1258_char(c) for c in text)
    return text.encode(enc)
