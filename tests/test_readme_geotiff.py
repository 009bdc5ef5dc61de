"""The user guide's GeoTIFF example, run as written on GeoTIFFs written by rasterio.

The code block is read from the guide's classification page, docs/guide/classification.md
(the one after "A multispectral GeoTIFF classified"; it was the README's), so the example
cannot drift from what works.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

PAGE = Path(__file__).resolve().parents[1] / "docs" / "guide" / "classification.md"

rasterio = pytest.importorskip("rasterio")
pytest.importorskip("rioxarray")
pytest.importorskip("dask")


def _example():
    text = PAGE.read_text(encoding="utf-8")
    start = text.index("A multispectral GeoTIFF classified")
    block = re.search(r"```python\n(.*?)```", text[start:], re.S)
    return block.group(1)


def _scene(tmp_path, rng):
    """A 6-class, 4-band uint16 scene, a sparse training raster, both georeferenced."""
    from rasterio.transform import from_origin

    h, w, bands = 120, 160, 4
    spectra = rng.uniform(2000, 60000, (6, bands))
    field = rng.integers(0, 6, (h // 20, w // 20)).repeat(20, 0).repeat(20, 1)
    img = spectra[field] + rng.normal(0, 900, (h, w, bands))
    img = np.clip(img, 1, 65535).astype(np.uint16)
    img[:3, :5] = 0  # a nodata corner
    train = np.where(rng.random((h, w)) < 0.3, field + 1, 0).astype(np.uint8)
    train[:3, :5] = 0
    transform = from_origin(300000.0, 5000000.0, 10.0, 10.0)
    common = {"driver": "GTiff", "width": w, "height": h, "crs": "EPSG:32633",
              "transform": transform}  # fmt: skip
    with rasterio.open(tmp_path / "scene.tif", "w", count=bands, dtype="uint16", nodata=0,
                       tiled=True, blockxsize=64, blockysize=64, **common) as dst:  # fmt: skip
        dst.write(np.moveaxis(img, -1, 0))
    with rasterio.open(tmp_path / "training.tif", "w", count=1, dtype="uint8", **common) as dst:
        dst.write(train[None])
    return field, transform


def test_readme_geotiff_example_runs_and_keeps_the_georeferencing(tmp_path, rng, monkeypatch):
    field, transform = _scene(tmp_path, rng)
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(_example(), str(PAGE), "exec"), namespace)
    with rasterio.open(tmp_path / "landcover.tif") as src:
        assert src.crs.to_epsg() == 32633 and src.transform == transform
        assert src.nodata == 0 and src.dtypes[0] == "uint8"
        landcover = src.read(1)
    with rasterio.open(tmp_path / "confidence.tif") as src:
        assert src.crs.to_epsg() == 32633 and src.dtypes[0] == "float32"
        confidence = src.read(1)
    with rasterio.open(tmp_path / "margin.tif") as src:  # written in the same pass
        assert src.transform == transform and src.dtypes[0] == "float32"
        margin = src.read(1)
    assert np.isnan(margin[:3, :5]).all() and (margin[3:] >= 0).all()
    valid = np.ones(field.shape, bool)
    valid[:3, :5] = False
    assert (landcover[~valid] == 0).all() and np.isnan(confidence[~valid]).all()
    # the classes are well separated: nearly every pixel gets its true class (or is rejected)
    got = landcover[valid]
    assert np.mean((got == field[valid] + 1) | (got == 255)) > 0.99
    assert np.mean(got == 255) < 0.02
    assert ((confidence[valid] > 0) & (confidence[valid] <= 1)).all()
