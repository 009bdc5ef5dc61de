"""pixgmm classify's uncertainty maps, per-pixel priors and --chunks, against the Python API."""

from __future__ import annotations

import numpy as np
import pytest

import pixgmm

rasterio = pytest.importorskip("rasterio")
pytest.importorskip("click")

from rasterio.transform import from_origin  # noqa: E402

from cli_run import invoke  # noqa: E402
from pixgmm.io import windows  # noqa: E402

CRS = "EPSG:32633"
TRANSFORM = from_origin(400000.0, 5000000.0, 10.0, 10.0)


def write(path, bands, dtype, nodata=None):
    with rasterio.open(path, "w", driver="GTiff", width=bands.shape[2], height=bands.shape[1],
                       count=bands.shape[0], dtype=dtype, crs=CRS, transform=TRANSFORM,
                       nodata=nodata) as dst:  # fmt: skip
        dst.write(bands.astype(dtype))


def read(path):
    with rasterio.open(path) as src:
        return src.read()


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    d = tmp_path_factory.mktemp("classify-maps")
    rng = np.random.default_rng(8)
    h, w = 260, 190
    field = np.minimum(np.arange(w)[None, :].repeat(h, 0) // 64, 2)
    spectra = np.array([[900, 1200, 800], [1500, 1500, 1600], [4000, 4200, 3900]])
    pixels = np.clip(spectra[field] + rng.normal(0, 300, (h, w, 3)), 1, 65535).astype(np.uint16)
    pixels[:10, :10] = 0  # nodata
    write(d / "scene.tif", np.moveaxis(pixels, -1, 0), "uint16", nodata=0)
    specs, models = [], {}
    for c in range(3):
        models[c + 1] = pixgmm.fit(pixels[field == c][100:].astype(np.float64), 1, "full")
        models[c + 1].save(d / f"c{c + 1}.json")
        specs += ["-m", f"{c + 1}={d / f'c{c + 1}.json'}"]
    priors = np.ones((3, h, w), np.float32)
    priors[0, :, : w // 2] = 0  # class 1 forbidden on the left half
    priors[1] *= np.linspace(0.1, 4, w, dtype=np.float32)[None, :]  # not normalised
    write(d / "priors.tif", priors, "float32")
    write(d / "two-bands.tif", priors[:2], "float32")
    write(d / "narrow.tif", priors[:, :, :-1], "float32")
    valid = np.ones((h, w), bool)
    valid[:10, :10] = False
    return {"dir": d, "pixels": pixels, "models": models, "specs": specs, "priors": priors,
            "valid": valid}  # fmt: skip


def api(scene, outputs, priors=None):
    clf = pixgmm.Classifier(scene["models"])
    px = scene["pixels"].astype(np.float64)
    px[~scene["valid"]] = np.nan
    pri = None if priors is None else np.moveaxis(priors, 0, -1)
    return clf.classify(px, outputs, fill=255, priors=pri)


@pytest.mark.parametrize("small", [False, True])
def test_margin_and_entropy_equal_the_api_streamed_or_not(scene, small, tmp_path, monkeypatch):
    if small:
        monkeypatch.setattr(windows, "WINDOW_BYTES", 16 * 1024)  # many windows
    d = scene["dir"]
    result = invoke("classify", d / "scene.tif", *scene["specs"], "--scale", "none", "--save",
                    "labels,confidence,margin,entropy", "-o", tmp_path, cwd=tmp_path)  # fmt: skip
    assert result.exit_code == 0, result.output
    want = api(scene, ("labels", "confidence", "margin", "entropy"))
    np.testing.assert_array_equal(read(tmp_path / "scene.labels.tif")[0], want["labels"])
    for name in ("confidence", "margin", "entropy"):
        got = read(tmp_path / f"scene.{name}.tif")[0]
        np.testing.assert_allclose(got, want[name], rtol=1e-6, atol=1e-7)
        assert np.isnan(got[~scene["valid"]]).all() and np.isfinite(got[scene["valid"]]).all()
    entropy = read(tmp_path / "scene.entropy.tif")[0][scene["valid"]]
    assert entropy.min() >= 0 and entropy.max() <= np.log(3) + 1e-6


@pytest.mark.parametrize("lazy", [False, True])
def test_a_prior_raster_gives_every_pixel_its_priors(scene, lazy, tmp_path, monkeypatch):
    monkeypatch.setattr(windows, "WINDOW_BYTES", 16 * 1024)
    d = scene["dir"]
    extra = ["--chunks", "64"] if lazy else []
    result = invoke("classify", d / "scene.tif", *scene["specs"], "--scale", "none",
                    "--prior-raster", d / "priors.tif", "--save", "labels,margin", *extra,
                    "-o", tmp_path, cwd=tmp_path)  # fmt: skip
    assert result.exit_code == 0, result.output
    if lazy:
        import zarr

        labels = zarr.open_array(tmp_path / "scene.labels.zarr", mode="r")[:]
        margin = zarr.open_array(tmp_path / "scene.margin.zarr", mode="r")[:]
    else:
        labels = read(tmp_path / "scene.labels.tif")[0]
        margin = read(tmp_path / "scene.margin.tif")[0]
    want = api(scene, ("labels", "margin"), scene["priors"])
    np.testing.assert_array_equal(labels, want["labels"])
    np.testing.assert_allclose(margin, want["margin"], rtol=1e-6, atol=1e-7)
    left = (slice(None), slice(0, labels.shape[1] // 2))
    assert not (labels[left] == 1).any()  # a zero prior forbids the class
    plain = api(scene, ("labels",))["labels"]
    assert (plain[left] == 1).sum() > 1000  # ... which it takes without the priors


def test_prior_raster_mistakes_are_clear(scene, tmp_path):
    d = scene["dir"]
    args = ["classify", d / "scene.tif", *scene["specs"], "--scale", "none", "--json"]
    for name, words in (("two-bands.tif", "has 2 band(s) but 3 are needed, one per class"),
                        ("narrow.tif", "it is 189 x 260 pixels, the image 190 x 260")):  # fmt: skip
        result = invoke(*args, "--prior-raster", d / name, "-o", tmp_path / name, cwd=tmp_path)
        assert result.exit_code == 1
        assert words in result.output and "--prior-raster" in result.output
    result = invoke(*args, "--prior-raster", d / "priors.tif", "--prior", "1=0.5", "--prior",
                    "2=0.3", "--prior", "3=0.2", "-o", tmp_path, cwd=tmp_path)  # fmt: skip
    assert result.exit_code == 2 and "leave out --prior" in result.output


def test_classify_with_chunks_writes_the_in_memory_maps_as_zarr(scene, tmp_path):
    zarr = pytest.importorskip("zarr")
    d = scene["dir"]
    args = ["classify", d / "scene.tif", *scene["specs"], "--scale", "none", "--chi2-level",
            "0.999", "--save", "labels,colour,confidence"]  # fmt: skip
    assert invoke(*args, "-o", tmp_path / "mem", cwd=tmp_path).exit_code == 0
    result = invoke(*args, "--chunks", "64", "-o", tmp_path / "big", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    labels = zarr.open_array(tmp_path / "big" / "scene.labels.zarr", mode="r")
    assert labels.chunks == (64, 64) and dict(labels.attrs)["nodata"] == 255
    np.testing.assert_array_equal(labels[:], read(tmp_path / "mem" / "scene.labels.tif")[0])
    np.testing.assert_allclose(
        zarr.open_array(tmp_path / "big" / "scene.confidence.zarr", mode="r")[:],
        read(tmp_path / "mem" / "scene.confidence.tif")[0], rtol=1e-6)  # fmt: skip
    colour = zarr.open_array(tmp_path / "big" / "scene.labels-colour.zarr", mode="r")[:]
    assert colour.shape == (*labels.shape, 3) and colour.dtype == np.uint8
