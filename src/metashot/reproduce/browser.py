"""Look at a rendered report in a real browser (headless Chromium): check it, screenshot it.

    python -m metashot.reproduce.browser check DIR/index.html
    python -m metashot.reproduce.browser screenshot DIR/index.html docs/img/report.png [--width 1280]

``check`` loads a copy of the page with a small script appended (the report itself has no script)
that records, after the ``load`` event, whether every ``<img>`` decoded (``naturalWidth > 0``) and
whether every table has body rows; Chromium's ``--dump-dom`` hands the result back. Needs the
Debian package ``chromium`` (``apt-get install -y chromium``) or ``$CHROMIUM`` pointing at a binary.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

# Root in containers needs --no-sandbox; the rest keeps Chromium off the network and quiet.
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
)

_CHECK_ID = "metashot-browser-check"
_CHECK_SCRIPT = """
<script>
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var tables = Array.prototype.slice.call(document.querySelectorAll("table"));
  var result = {
    images: imgs.length,
    images_loaded: imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length,
    broken_images: imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
                       .map(function (i) { return i.alt || i.src.slice(0, 60); }),
    tables: tables.length,
    table_rows: tables.map(function (t) { return t.tBodies.length ? t.tBodies[0].rows.length : 0; }),
    empty_cells: tables.map(function (t) {
      return Array.prototype.slice.call(t.querySelectorAll("tbody td"))
        .filter(function (c) { return c.textContent.trim() === ""; }).length; }),
    quick_banner: !!document.getElementById("quick-banner"),
    sections: Array.prototype.slice.call(document.querySelectorAll("section[id]")).map(function (s) { return s.id; }),
    height: Math.ceil(document.documentElement.scrollHeight),
    external: Array.prototype.slice.call(document.querySelectorAll("[src],link[href]"))
                 .map(function (e) { return e.getAttribute("src") || e.getAttribute("href"); })
                 .filter(function (u) { return !/^data:/.test(u); })
  };
  var pre = document.createElement("pre");
  pre.id = "@CHECK_ID@";
  pre.textContent = JSON.stringify(result);
  document.body.appendChild(pre);
});
</script>
""".replace("@CHECK_ID@", _CHECK_ID)


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome binary ($CHROMIUM first), or None."""
    env = os.environ.get("CHROMIUM")
    if env and shutil.which(env):
        return shutil.which(env)
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _chromium(args: list[str], profile: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    binary = find_chromium()
    if binary is None:
        raise FileNotFoundError("no chromium binary found; install it with: apt-get install -y chromium")
    command = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def check_page(html_path: Path, *, width: int = 1280, timeout: float = 120.0) -> dict[str, Any]:
    """Load ``html_path`` in headless Chromium (window ``width`` px wide); return what the page
    looked like after ``load``.

    Keys: images, images_loaded, broken_images, tables, table_rows (body rows per table),
    empty_cells (per table), quick_banner, sections (ids), height (px), external (non-data URLs).
    """
    with tempfile.TemporaryDirectory(prefix="metashot-chromium-") as tmp:
        page = Path(tmp) / "page.html"
        text = Path(html_path).read_text(encoding="utf-8")
        page.write_text(text.replace("</body>", _CHECK_SCRIPT + "</body>", 1), encoding="utf-8")
        done = _chromium([f"--window-size={width},900", "--virtual-time-budget=10000", "--dump-dom", page.as_uri()],
                         Path(tmp) / "profile", timeout)
    match = re.search(rf'<pre id="{_CHECK_ID}">(.*?)</pre>', done.stdout, re.DOTALL)
    if match is None:
        raise RuntimeError(f"chromium did not run the check script (exit {done.returncode}): "
                           f"{done.stderr.strip()[-500:]}")
    return json.loads(html.unescape(match.group(1)))


def screenshot(html_path: Path, png_path: Path, *, width: int = 1280, height: int | None = None,
               scale: float = 1.0, timeout: float = 120.0) -> Path:
    """Save a PNG of the whole page (height measured first unless given), optionally downscaled
    by ``scale`` and saved with a 256-colour palette to keep it small."""
    if height is None:
        height = min(max(int(check_page(html_path, width=width, timeout=timeout)["height"]), 400), 16000)
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="metashot-chromium-") as tmp:
        raw = Path(tmp) / "shot.png"
        done = _chromium([f"--window-size={width},{height}", f"--screenshot={raw}", Path(html_path).resolve().as_uri()],
                         Path(tmp) / "profile", timeout)
        if not raw.exists():
            raise RuntimeError(f"chromium wrote no screenshot (exit {done.returncode}): {done.stderr.strip()[-500:]}")
        from PIL import Image

        with Image.open(raw) as image:
            image = image.convert("RGB")
            if scale != 1.0:
                image = image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS)
            image.quantize(colors=256).save(png_path, optimize=True)
    return png_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m metashot.reproduce.browser", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_check = sub.add_parser("check", help="print what headless Chromium saw (JSON); exit 1 if anything is off")
    p_check.add_argument("html", type=Path)
    p_shot = sub.add_parser("screenshot", help="save a PNG of the whole rendered page")
    p_shot.add_argument("html", type=Path)
    p_shot.add_argument("png", type=Path)
    p_shot.add_argument("--width", type=int, default=1280)
    p_shot.add_argument("--height", type=int, default=None, help="default: the page's full height")
    p_shot.add_argument("--scale", type=float, default=1.0, help="downscale factor, e.g. 0.6 for docs")
    args = parser.parse_args(argv)
    if find_chromium() is None:
        print("error: no chromium binary found; install it with: apt-get install -y chromium", file=sys.stderr)
        return 2
    if args.command == "check":
        result = check_page(args.html)
        print(json.dumps(result, indent=2))
        ok = (result["images_loaded"] == result["images"] and all(result["table_rows"])
              and not result["external"])
        return 0 if ok else 1
    path = screenshot(args.html, args.png, width=args.width, height=args.height, scale=args.scale)
    print(f"{path} ({path.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
