"""The rendered report in a real browser: headless Chromium loads index.html, every figure decodes
and every table has rows. Skips only when no chromium binary is installed."""

from __future__ import annotations

import pytest

from metashot.reproduce import ReproduceOptions, run_all, write_report
from metashot.reproduce.browser import check_page, find_chromium, screenshot

pytestmark = pytest.mark.skipif(
    find_chromium() is None, reason="chromium is not installed (Debian: apt-get install -y chromium)"
)


@pytest.fixture
def report_dir(tmp_path, fake_systems):
    fake_systems(fewshot="good", optim="good", chem="data", rnn="good")
    outcomes = run_all(ReproduceOptions(out_dir=tmp_path, quick=True, progress=False))
    write_report(outcomes, {"quick": True, "seed": 0}, tmp_path)
    return tmp_path


def test_every_figure_loads_and_every_table_is_filled_in_chromium(report_dir):
    seen = check_page(report_dir / "index.html")
    assert seen["images"] == 6  # 3 working fake systems x 2 figures
    assert seen["images_loaded"] == 6, seen["broken_images"]
    assert seen["tables"] == 4  # summary + one claims table per working system
    assert all(rows > 0 for rows in seen["table_rows"]), seen["table_rows"]
    assert seen["table_rows"][0] == 4  # the summary lists every system, the missing one too
    assert seen["quick_banner"] is True
    assert seen["sections"] == ["summary", "fewshot", "optim", "chem", "rnn"]
    assert seen["external"] == []


def test_the_check_notices_a_figure_that_does_not_decode(report_dir):
    outcomes = run_all(ReproduceOptions(out_dir=report_dir / "again", systems=["optim"], progress=False))
    (report_dir / "again" / "optim" / "grid.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    write_report(outcomes, {}, report_dir / "again")
    seen = check_page(report_dir / "again" / "index.html")
    assert seen["images"] == 2 and seen["images_loaded"] == 1
    assert seen["broken_images"] == ["optim grid"]


def test_screenshot_of_the_report_is_a_png_of_the_whole_page(report_dir, tmp_path):
    from PIL import Image

    path = screenshot(report_dir / "index.html", tmp_path / "shot.png", width=1000, scale=0.5)
    with Image.open(path) as image:
        assert image.width == 500
        assert image.height > 600  # the full page height, not just one window
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
        assert colours is None or len(colours) > 10  # something was drawn, not a blank page
