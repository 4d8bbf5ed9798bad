"""Writes api/static/favicon.ico (16, 32 and 48 px) from the shapes of api/static/favicon.svg, with Pillow.

Run once after changing the SVG: `python scripts/make_favicon.py` (the shapes are repeated here: Pillow
cannot read SVG, and the mark is five shapes).
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parent.parent / "api" / "static" / "favicon.ico"
# (fill, polygon in the SVG's 32 x 32 user units): the parcels of favicon.svg
PARCELS = [
    ("#c5e1a5", [(5, 8), (17, 5), (19, 15), (7, 18)]),
    ("#81c784", [(19.5, 5.2), (27, 7), (26, 16.5), (21, 15.8)]),
    ("#a5d6a7", [(7.5, 19.8), (19.4, 17), (21.4, 27), (9, 27)]),
    ("#66bb6a", [(21.8, 16.9), (26, 17.5), (26, 27), (23.5, 27)]),
]


def draw(size: int) -> Image.Image:
    big = size * 8                                   # drawn large, then reduced: smooth edges
    k = big / 32
    img = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle((0, 0, big - 1, big - 1), radius=6 * k, fill="#1b5e20")
    for fill, pts in PARCELS:
        d.polygon([(x * k, y * k) for x, y in pts], fill=fill)
    return img.resize((size, size), Image.Resampling.LANCZOS)


if __name__ == "__main__":
    draw(48).save(OUT, format="ICO", sizes=[(16, 16), (32, 32), (48, 48)])
    print(OUT)
