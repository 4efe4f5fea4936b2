#!/usr/bin/env python3
"""Draws Fluxgate's icons (no image library needed): the app icon and one tray icon per health
state. Run from the repository root; the PNGs are committed, so building never needs this."""
import struct
import zlib
from pathlib import Path

COLOURS = {
    "healthy": (46, 160, 67),    # green: every key usable
    "degraded": (219, 154, 4),   # amber: some keys cooling or dead
    "down": (207, 34, 46),       # red: no key available
    "paused": (110, 118, 129),   # grey: routing paused
}


def png(size, pixels):
    raw = b"".join(b"\x00" + bytes(row) for row in pixels)

    def chunk(kind, data):
        c = struct.pack(">I", len(data)) + kind + data
        return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def draw(size, colour, paused=False):
    """A filled disc with a white gate mark (two bars), or a pause mark when paused."""
    r, g, b = colour
    rows = []
    c = (size - 1) / 2
    for y in range(size):
        row = []
        for x in range(size):
            d = ((x - c) ** 2 + (y - c) ** 2) ** 0.5
            alpha = max(0.0, min(1.0, size / 2 - d))
            u, v = x / size, y / size
            bar = 0.28 <= v <= 0.72 and (0.30 <= u <= 0.42 or 0.58 <= u <= 0.70)
            flow = (not paused) and 0.46 <= v <= 0.54 and 0.18 <= u <= 0.82
            if bar or flow:
                px = (255, 255, 255)
            else:
                px = (r, g, b)
            row += [px[0], px[1], px[2], int(alpha * 255)]
        rows.append(row)
    return png(size, rows)


def main():
    out = Path("icons")
    out.mkdir(exist_ok=True)
    for name, colour in COLOURS.items():
        (out / f"tray-{name}.png").write_bytes(draw(32, colour, paused=name == "paused"))
    for size in (32, 128, 256):
        (out / f"{size}x{size}.png").write_bytes(draw(size, (37, 99, 235)))
    (out / "icon.png").write_bytes(draw(512, (37, 99, 235)))


if __name__ == "__main__":
    main()
