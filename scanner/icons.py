"""The verdict's shapes, so that it is not told by colour alone (colour-blind people,
glare on the screen): a tick for allow, a cross for deny, a warning triangle for a
verdict the kiosk took offline and for the offline status. Drawn with Pillow at any
size; no image files."""

from __future__ import annotations

from PIL import ImageDraw

Color = tuple[int, int, int]  # RGB
WHITE: Color = (255, 255, 255)
AMBER: Color = (255, 170, 0)
INK: Color = (20, 20, 20)


def tick(draw: ImageDraw.ImageDraw, x: int, y: int, size: int, color: Color) -> None:
    """A white disc with a tick in `color` (the banner's), top left at (x, y)."""
    draw.ellipse((x, y, x + size, y + size), fill=WHITE)
    points = [(0.26, 0.54), (0.43, 0.71), (0.76, 0.34)]
    draw.line(
        [(x + a * size, y + b * size) for a, b in points],
        fill=color,
        width=max(3, size // 8),
        joint="curve",
    )


def cross(draw: ImageDraw.ImageDraw, x: int, y: int, size: int, color: Color) -> None:
    """A white disc with a cross in `color`."""
    draw.ellipse((x, y, x + size, y + size), fill=WHITE)
    width = max(3, size // 8)
    lo, hi = 0.31 * size, 0.69 * size
    draw.line((x + lo, y + lo, x + hi, y + hi), fill=color, width=width)
    draw.line((x + hi, y + lo, x + lo, y + hi), fill=color, width=width)


def warning(draw: ImageDraw.ImageDraw, x: int, y: int, size: int, fill: Color = AMBER) -> None:
    """A triangle with an exclamation mark (dark on `fill`), in a `size` square."""
    top, bottom = y + size * 0.06, y + size * 0.94
    draw.polygon([(x + size / 2, top), (x + size, bottom), (x, bottom)], fill=fill)
    bar = max(2, size // 9)
    cx = x + size / 2
    draw.rectangle((cx - bar / 2, y + size * 0.36, cx + bar / 2, y + size * 0.68), fill=INK)
    draw.ellipse(
        (cx - bar * 0.6, y + size * 0.75, cx + bar * 0.6, y + size * 0.75 + bar * 1.2), fill=INK
    )


def ring(draw: ImageDraw.ImageDraw, x: int, y: int, size: int, color: Color) -> None:
    """A hollow circle: waiting for something (the first connection)."""
    draw.ellipse((x, y, x + size, y + size), outline=color, width=max(2, size // 6))


def dot(draw: ImageDraw.ImageDraw, x: int, y: int, size: int, color: Color) -> None:
    draw.ellipse((x, y, x + size, y + size), fill=color)
