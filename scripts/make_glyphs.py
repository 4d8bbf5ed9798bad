"""Write the web map's glyph PBFs (MapLibre signed-distance-field text glyphs) from the vendored Noto Sans.

MapLibre GL draws text only from glyph PBFs (`glyphs` in the style: `{fontstack}/{range}.pbf`, 256 code points
a file, 24 px SDF bitmaps with a 3 px buffer). No pre-built set is on the npm registry, so this writes them from
Noto Sans (`@fontsource/noto-sans`, SIL OFL 1.1: its latin, latin-ext and vietnamese WOFF subsets) with Pillow's
FreeType and numpy, in the node-fontnik layout (cutoff 0.25, radius 8). Only the ranges Vietnamese and English
labels need are written (Basic Latin to Combining Diacritics, Latin Extended Additional, punctuation and ₫):

    python scripts/make_glyphs.py /tmp/package/files api/static/vendor/glyphs
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from fontTools.ttLib import TTFont
from PIL import Image, ImageDraw, ImageFont

SIZE, BUFFER, CUTOFF, RADIUS, SCALE = 24, 3, 0.25, 8.0, 2
RANGES = (0, 256, 512, 768, 7680, 8192)
STACKS = {"Noto Sans Regular": "400", "Noto Sans Bold": "700"}
SUBSETS = ("latin", "latin-ext", "vietnamese")


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(num: int, value: int | bytes, sint: bool = False) -> bytes:
    if isinstance(value, bytes):
        return _varint(num << 3 | 2) + _varint(len(value)) + value
    if sint:
        value = (value << 1) ^ (value >> 63)
    return _varint(num << 3) + _varint(value)


def _sdf(mask: np.ndarray) -> np.ndarray:
    """Signed distance (pixels, positive outside) of every pixel to the shape's edge, brute force."""
    inside = mask >= 128
    ys, xs = np.indices(mask.shape)
    pts = np.stack([ys.ravel(), xs.ravel()], axis=1).astype(np.float32)
    ins, outs = pts[inside.ravel()], pts[~inside.ravel()]
    dist = np.full(mask.size, RADIUS * SCALE * 2, dtype=np.float32)
    if len(ins) and len(outs):
        for sel, other in ((~inside.ravel(), ins), (inside.ravel(), outs)):
            p = pts[sel]
            best = np.full(len(p), np.inf, dtype=np.float32)
            for i in range(0, len(other), 512):
                chunk = other[i:i + 512]
                d = np.sqrt(((p[:, None, :] - chunk[None, :, :]) ** 2).sum(-1)).min(1)
                best = np.minimum(best, d)
            dist[sel] = best - 0.5
    elif len(ins):
        dist[:] = -RADIUS * SCALE * 2
    signed = np.where(inside.ravel(), -dist, dist).reshape(mask.shape)
    return signed / SCALE


def glyph(font: ImageFont.FreeTypeFont, big: ImageFont.FreeTypeFont, cp: int) -> bytes:
    ch = chr(cp)
    advance = round(font.getlength(ch))
    x0s, y0s, x1s, y1s = big.getbbox(ch, anchor="ls")
    msg = _field(1, cp)
    if x1s <= x0s or y1s <= y0s:
        return msg + _field(3, 0) + _field(4, 0) + _field(5, 0, True) + _field(6, 0, True) + _field(7, advance)
    x0, y0 = x0s // SCALE, y0s // SCALE
    x1, y1 = -(-x1s // SCALE), -(-y1s // SCALE)
    w, h = x1 - x0, y1 - y0
    img = Image.new("L", ((w + 2 * BUFFER) * SCALE, (h + 2 * BUFFER) * SCALE), 0)
    ImageDraw.Draw(img).text(((BUFFER - x0) * SCALE, (BUFFER - y0) * SCALE), ch, font=big, fill=255, anchor="ls")
    d = _sdf(np.asarray(img))
    d = d.reshape(h + 2 * BUFFER, SCALE, w + 2 * BUFFER, SCALE).mean(axis=(1, 3))
    bitmap = np.clip(255 - 255 * (d / RADIUS + CUTOFF), 0, 255).astype(np.uint8).tobytes()
    # node-fontnik: left = bbox x-min, top = bbox y-max minus the ascender (MapLibre adds its own baseline)
    ascender = font.getmetrics()[0]
    top = -y0 - ascender
    return (msg + _field(2, bitmap) + _field(3, w) + _field(4, h) + _field(5, x0, True) + _field(6, top, True)
            + _field(7, advance))


def main(src: Path, dest: Path) -> None:
    for stack, weight in STACKS.items():
        files = [src / f"noto-sans-{s}-{weight}-normal.woff" for s in SUBSETS]
        cmaps = [set(TTFont(f).getBestCmap()) for f in files]
        basic = ImageFont.Layout.BASIC
        fonts = [(ImageFont.truetype(str(f), SIZE, layout_engine=basic),
                  ImageFont.truetype(str(f), SIZE * SCALE, layout_engine=basic)) for f in files]
        out = dest / stack
        out.mkdir(parents=True, exist_ok=True)
        for start in RANGES:
            end = start + 255
            glyphs = b""
            for cp in range(start, end + 1):
                for cmap, (font, big) in zip(cmaps, fonts, strict=True):
                    if cp in cmap and cp >= 32:
                        glyphs += _field(3, glyph(font, big, cp))
                        break
            stack_msg = _field(1, stack.encode()) + _field(2, f"{start}-{end}".encode()) + glyphs
            (out / f"{start}-{end}.pbf").write_bytes(_field(1, stack_msg))
            print(stack, start, end, len(glyphs))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
