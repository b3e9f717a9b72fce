"""Draw the integration's brand images (brands/custom_integrations/ev_charging_expert/).

The layout is the one of the home-assistant/brands repository, which HA and HACS read icons
from: icon.png (256x256), icon@2x.png (512x512), logo.png and logo@2x.png. Regenerate with
`python -m tools.brand_icons`; docs/development.md says how to submit them upstream.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

OUT = (
    Path(__file__).resolve().parent.parent / "brands" / "custom_integrations" / "ev_charging_expert"
)
GREEN = (24, 160, 88, 255)
WHITE = (255, 255, 255, 255)
# A lightning bolt in a 100x100 box.
BOLT = [(58, 6), (22, 56), (46, 56), (38, 94), (78, 40), (54, 40), (62, 6)]


def icon(size: int) -> Image.Image:
    """A green rounded square with a white bolt."""
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((0, 0, size - 1, size - 1), radius=size // 5, fill=GREEN)
    scale = size / 100
    draw.polygon([(x * scale, y * scale) for x, y in BOLT], fill=WHITE)
    return image


def logo(height: int) -> Image.Image:
    """The icon; a wordmark needs a font the repository does not ship."""
    return icon(height)


def main() -> None:
    """Write the four images."""
    OUT.mkdir(parents=True, exist_ok=True)
    icon(256).save(OUT / "icon.png")
    icon(512).save(OUT / "icon@2x.png")
    logo(256).save(OUT / "logo.png")
    logo(512).save(OUT / "logo@2x.png")


if __name__ == "__main__":
    main()
