"""Draw the app icons (static/speciosa/icons/) from the favicon's leaf (favicon.svg).

Run: ``.venv/bin/python tools/icons.py``. Pillow only, so that no SVG renderer is needed."""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parents[1] / "src/speciosa/web/static/speciosa/icons"
GREEN = (0x1F, 0x6F, 0x5C, 255)
LEAF = (0xE8, 0xF3, 0xEE, 255)


def _cubic(p0, p1, p2, p3, n=48):
    return [tuple((1 - t) ** 3 * a + 3 * (1 - t) ** 2 * t * b + 3 * (1 - t) * t ** 2 * c + t ** 3 * d
                  for a, b, c, d in zip(p0, p1, p2, p3, strict=True))
            for t in (i / n for i in range(n + 1))]


def _leaf() -> list[tuple[float, float]]:
    """The favicon's path on its 32-unit grid: two curves and the half circle below."""
    pts = _cubic((16, 5), (22, 9), (24, 14), (24, 18))
    pts += [(16 + 8 * math.cos(a), 18 + 8 * math.sin(a)) for a in (math.pi * i / 48 for i in range(49))]
    pts += _cubic((8, 18), (8, 14), (10, 9), (16, 5))
    return pts


def draw(size: int, *, rounded: bool, leaf_scale: float) -> Image.Image:
    big = size * 4
    img = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    if rounded:
        d.rounded_rectangle((0, 0, big - 1, big - 1), radius=big * 7 / 32, fill=GREEN)
    else:
        d.rectangle((0, 0, big, big), fill=GREEN)
    unit = big / 32 * leaf_scale
    off = big / 2 - 16 * unit

    def at(p):
        return (off + p[0] * unit, off + (p[1] - 0.5) * unit)

    d.polygon([at(p) for p in _leaf()], fill=LEAF)
    d.line([at((16, 9)), at((16, 27))], fill=GREEN, width=max(1, round(1.6 * unit)))
    return img.resize((size, size), Image.LANCZOS)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    draw(192, rounded=True, leaf_scale=1.0).save(OUT / "icon-192.png", optimize=True)
    draw(512, rounded=True, leaf_scale=1.0).save(OUT / "icon-512.png", optimize=True)
    # maskable: full bleed, the leaf inside the central 80 % safe circle
    draw(512, rounded=False, leaf_scale=0.72).save(OUT / "icon-maskable-512.png", optimize=True)
    # iOS rounds the corners itself and shows transparency as black
    draw(180, rounded=False, leaf_scale=0.85).convert("RGB").save(OUT / "apple-touch-icon.png", optimize=True)


if __name__ == "__main__":
    main()
