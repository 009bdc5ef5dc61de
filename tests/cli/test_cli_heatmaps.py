"""Heatmaps: colour maps from the cmap package (checked against matplotlib), --cmap, --colorbar.

The colour tables are compared entry by entry with matplotlib's own 8-bit
tables; the command line runs as a subprocess on PNGs written by Pillow, and
its heatmaps are read back with Pillow (pixels and text chunks).
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import pixgmm

pytest.importorskip("click")
pytest.importorskip("cmap")
Image = pytest.importorskip("PIL.Image")
colormaps = pytest.importorskip("matplotlib").colormaps

from pixgmm.cli import colorbar as cb  # noqa: E402
from pixgmm.cli import render  # noqa: E402


def run_cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "pixgmm.cli", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def mpl_bytes(name, n=256):
    """matplotlib's 8-bit table of a colour map: what it writes for ``bytes=True``."""
    return colormaps[name](np.arange(n), bytes=True)[:, :3]


# -- the colour tables ------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["viridis", "magma", "inferno", "plasma", "cividis", "gray", "coolwarm", "viridis_r"],
)
def test_colour_tables_equal_matplotlibs(name):
    lut = render.colour_lut(name)
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    np.testing.assert_array_equal(lut, mpl_bytes(name))


def test_label_palette_is_matplotlibs_tab10():
    np.testing.assert_array_equal(render.label_palette(), mpl_bytes("tab10", 10))
    np.testing.assert_array_equal(render.PALETTE, render.label_palette())


def test_no_hand_copied_table_is_left():
    import inspect

    source = inspect.getsource(render)
    # a hand-copied table would hold RGB triples such as viridis's first (68, 1, 84)
    assert "(68, 1, 84)" not in source and "_VIRIDIS" not in source
    assert "(31, 119, 180)" not in source  # tab10's first colour


def test_unknown_colour_map_names_the_way_to_the_list():
    with pytest.raises(ValueError, match=r"unknown colour map 'viridiss'.*viridis.*cmap\.Catalog"):
        render.colour_map("viridiss")


def test_heatmap_uses_the_table_ends_and_blacks_out_nan():
    lut = render.colour_lut("magma")
    values = np.array([[0.0, 1.0, np.nan], [-5.0, 7.0, 0.5]])
    out = render.heatmap(values, 0.0, 1.0, lut)
    np.testing.assert_array_equal(out[0, 0], lut[0])
    np.testing.assert_array_equal(out[0, 1], lut[255])
    np.testing.assert_array_equal(out[0, 2], [0, 0, 0])
    np.testing.assert_array_equal(out[1, 0], lut[0])  # clipped
    np.testing.assert_array_equal(out[1, 1], lut[255])
    np.testing.assert_array_equal(out[1, 2], lut[128])  # 127.5 rounds to even: 128


# -- the colour bar ---------------------------------------------------------------------


def bar_rows(picture, width, height):
    """The colour bar of a picture whose heatmap is ``width`` x ``height``: one colour per row."""
    lay = cb.Layout(height)
    panel = picture[:, width:]
    bar = panel[lay.bar_y0 : lay.bar_y1, lay.bar_x0 : lay.bar_x1]
    assert (bar == bar[:, :1]).all(), "a bar row is not one colour"
    return bar[:, 0], lay


@pytest.mark.parametrize("height", [7, 40, 300])
def test_colour_bar_shows_the_table_from_vmax_to_vmin(height):
    lut = render.colour_lut("viridis")
    heat = render.heatmap(np.linspace(0, 1, height * 9).reshape(height, 9), 0.0, 1.0, lut)
    picture, ticks = cb.with_colorbar(heat, lut, -3.5, 12.25, "log ratio")
    np.testing.assert_array_equal(picture[:height, :9], heat)
    rows, lay = bar_rows(picture, 9, height)
    assert picture.shape[0] == lay.height >= height
    assert (picture[height:, :9] == 255).all()  # below a heatmap shorter than the bar: white
    # top to bottom, each row is a table entry at or below the one above (viridis has
    # two pairs of equal 8-bit entries: take the highest index that fits)
    got, last = [], 255
    for colour in rows:
        fits = [i for i in range(last + 1) if (lut[i] == colour).all()]
        assert fits, f"{colour} is not a table colour below entry {last}"
        last = fits[-1]
        got.append(last)
    assert got[0] == 255 and got[-1] == 0
    assert len(set(got)) >= min(254, len(got)) * 0.9  # a gradient, not a few bands
    assert ticks[0] == -3.5 and ticks[-1] == 12.25 and len(ticks) == lay.n_ticks >= 2
    # every tick has its label: ink right of the tick mark, on the tick's row
    text = picture[:, 9 + lay.label_x : 9 + lay.title_x]
    for row in lay.tick_rows():
        band = text[max(0, row - 2) : row + 3]
        assert (band < 128).any(), f"no label at row {row}"


def test_colour_bar_panel_depends_on_the_height_only():
    lut = render.colour_lut("magma")
    sizes = {
        cb.with_colorbar(np.zeros((50, 31, 3), np.uint8), lut, lo, hi, "x")[0].shape
        for lo, hi in [(0, 1), (-123456.0, -0.000123), (-1e-30, 5e30)]
    }
    assert len(sizes) == 1  # every frame of a video gets the same size


def test_tick_labels():
    assert [cb.tick_label(v) for v in cb.tick_values(0, 1, 5)] == ["0", "0.25", "0.5", "0.75", "1"]
    assert cb.tick_label(-0.0) == "0"
    assert cb.tick_label(-23.4712) == "-23.5"


# -- the command line -------------------------------------------------------------------


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """A 61 x 83 crop of the bundled photo, written by Pillow, in a fresh folder."""
    folder = tmp_path_factory.mktemp("heat")
    rgb = np.asarray(Image.open(pixgmm.__path__[0] + "/data/astronaut.jpg").convert("RGB"))
    crop = np.ascontiguousarray(rgb[30:91, 200:283])  # face and hair: a spread of P(skin)
    Image.fromarray(crop).save(folder / "face.png")
    return folder, crop


def nearest_entry(p):
    """The table entry of each probability: the nearest of 256 levels (float32, as written)."""
    return np.round(np.asarray(p, np.float32) * np.float32(255)).astype(int)


def read_png(path):
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")), dict(im.text)


def test_skin_heatmap_with_cmap_and_colour_bar(photo):
    folder, crop = photo
    h, w = crop.shape[:2]
    plain = run_cli(
        "skin", "face.png", "--save", "heatmap", "--cmap", "magma", "-o", "plain", cwd=folder
    )
    assert plain.returncode == 0, plain.stderr
    barred = run_cli(
        "skin", "face.png", "--save", "heatmap", "--cmap", "magma", "--colorbar", "-o", "bar",
        cwd=folder,
    )  # fmt: skip
    assert barred.returncode == 0, barred.stderr
    heat, text = read_png(folder / "plain" / "face.heatmap.png")
    pic, bar_text = read_png(folder / "bar" / "face.heatmap.png")

    # the plain heatmap is matplotlib's magma of the API's P(skin | colour)
    p = pixgmm.SkinDetector().probability(crop, channels="RGB")
    expected = mpl_bytes("magma")[nearest_entry(p)]
    assert heat.shape == (h, w, 3)
    np.testing.assert_array_equal(heat, expected)
    # the bar is beside it, its pixels unchanged
    assert pic.shape[1] > w and pic.shape[0] >= h
    np.testing.assert_array_equal(pic[:h, :w], heat)
    rows, _ = bar_rows(pic, w, h)
    lut = mpl_bytes("magma")
    np.testing.assert_array_equal(rows[0], lut[255])
    np.testing.assert_array_equal(rows[-1], lut[0])
    assert all(any((c == lut).all(axis=1)) for c in rows)

    # the range used, in the text chunks
    for t in (text, bar_text):
        assert t[cb.KEY_QUANTITY] == "P(skin | colour)"
        assert float(t[cb.KEY_VMIN]) == 0.0 and float(t[cb.KEY_VMAX]) == 1.0
        assert t[cb.KEY_CMAP].endswith("magma")
        assert t[cb.KEY_SIZE] == f"{w}x{h}"
    assert cb.KEY_TICKS not in text
    ticks = [float(v) for v in bar_text[cb.KEY_TICKS].split()]
    assert ticks[0] == 0.0 and ticks[-1] == 1.0 and ticks == sorted(ticks)


def test_density_heatmap_records_the_log_range_used(photo):
    folder, crop = photo
    model = pixgmm.Mixture([1.0], [[150, 110, 90]], [[500, 400, 400]], "diag", channels="RGB")
    model.save(folder / "model.json")
    proc = run_cli(
        "density", "face.png", "-m", "model.json", "--format", "png", "--colorbar", "-o", "dens",
        cwd=folder,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    pic, text = read_png(folder / "dens" / "face.density.png")
    logp = pixgmm.log_density(crop, model, channels="RGB")
    lo, hi = np.percentile(logp, 1.0), logp.max()
    assert float(text[cb.KEY_VMIN]) == pytest.approx(lo, rel=1e-6)
    assert float(text[cb.KEY_VMAX]) == pytest.approx(hi, rel=1e-6)
    assert text[cb.KEY_CMAP].endswith("viridis") and text[cb.KEY_QUANTITY] == "log density"
    ticks = [float(v) for v in text[cb.KEY_TICKS].split()]
    assert ticks[0] == float(text[cb.KEY_VMIN]) and ticks[-1] == float(text[cb.KEY_VMAX])
    rows, _ = bar_rows(pic, crop.shape[1], crop.shape[0])
    np.testing.assert_array_equal(rows[0], mpl_bytes("viridis")[255])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--save", "heatmap", "--cmap", "viridiss"], "Did you mean viridis"),
        (["--save", "heatmap", "--cmap", "no-such-map"], "cmap.Catalog().unique_keys()"),
        (["--save", "mask", "--colorbar"], "add heatmap to --save"),
        (["--save", "mask", "--cmap", "magma"], "--cmap applies to the heatmap"),
        (["--save", "heatmap", "--colorbar", "--chunks", "32"], "Zarr store"),
    ],
)
def test_heatmap_option_errors(photo, args, message):
    folder, _ = photo
    proc = run_cli("skin", "face.png", *args, "-o", "errors", cwd=folder)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert not (folder / "errors").exists()


def test_density_cmap_without_png_is_an_error(photo):
    folder, _ = photo
    proc = run_cli("density", "face.png", "-m", "jones-rehg-skin", "--cmap", "gray", cwd=folder)
    assert proc.returncode == 2 and "add png to --format" in proc.stderr


def test_lazy_heatmap_takes_the_cmap(photo):
    pytest.importorskip("dask")
    zarr = pytest.importorskip("zarr")
    tifffile = pytest.importorskip("tifffile")
    folder, crop = photo
    tifffile.imwrite(folder / "face.tif", crop, tile=(16, 16))
    proc = run_cli(
        "skin", "face.tif", "--chunks", "32", "--save", "heatmap", "--cmap", "cividis", "-o", "lazy",
        cwd=folder,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    heat = zarr.open_array(folder / "lazy" / "face.heatmap.zarr", mode="r")[:]
    p = pixgmm.SkinDetector().probability(crop, channels="RGB")
    np.testing.assert_array_equal(heat, mpl_bytes("cividis")[nearest_entry(p)])
