"""HistogramModel: fitting, the density it defines, evaluation through every path, persistence."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

import pixgmm


def reference_log_density(X, counts, edges, smoothing):
    """Look every pixel up in the bins of ``np.histogramdd`` edges (right-open bins)."""
    X = np.asarray(X, dtype=np.float64)
    total = counts.sum() + smoothing * counts.size
    volume = math.prod(e[1] - e[0] for e in edges)
    out = np.empty(X.shape[0])
    for i, x in enumerate(X):
        if np.isnan(x).any():
            out[i] = np.nan
            continue
        idx = []
        for c, e in enumerate(edges):
            if not e[0] <= x[c] < e[-1]:
                idx = None
                break
            idx.append(int(np.searchsorted(e, x[c], side="right")) - 1)
        if idx is None:
            out[i] = -np.inf
        else:
            n = counts[tuple(idx)] + smoothing
            out[i] = math.log(n / (total * volume)) if n > 0 else -np.inf
    return out


def test_fit_counts_equal_histogramdd(rng):
    px = rng.integers(0, 256, size=(3000, 3), dtype=np.uint8)
    h = pixgmm.HistogramModel.fit(px, bins=32)
    counts, _ = np.histogramdd(px.astype(float), bins=32, range=[(0, 256)] * 3)
    np.testing.assert_array_equal(h.counts, counts)
    assert h.bins == (32, 32, 32) and h.n_samples == 3000 and h.n_features == 3
    # an image is its pixels; channel_axis moves the channels
    img = px.reshape(50, 60, 3)
    assert pixgmm.HistogramModel.fit(img, bins=32) == h
    assert pixgmm.HistogramModel.fit(np.moveaxis(img, -1, 0), bins=32, channel_axis=0) == h


def test_fit_float_pixels_per_channel_bins_and_ranges(rng):
    px = np.column_stack([rng.uniform(0, 1, 500), rng.uniform(-5, 5, 500)])
    h = pixgmm.HistogramModel.fit(px, bins=[4, 10], range=[(0, 1), (-5, 5)], smoothing=0.5)
    counts, edges = np.histogramdd(px, bins=[4, 10], range=[(0, 1), (-5, 5)])
    np.testing.assert_array_equal(h.counts, counts)
    assert h.range == ((0.0, 1.0), (-5.0, 5.0))
    X = np.column_stack([rng.uniform(-0.2, 1.2, 300), rng.uniform(-6, 6, 300)])
    X[::17] = np.nan
    got = pixgmm.log_density(X, h)
    np.testing.assert_allclose(got, reference_log_density(X, counts, edges, 0.5), rtol=1e-12)
    assert np.isneginf(got[(X[:, 0] < 0) | (X[:, 1] > 5)]).all()


@pytest.mark.parametrize("smoothing", [0.0, 1.0, 3.5])
def test_density_integrates_to_one(rng, smoothing):
    px = rng.integers(0, 256, size=(400, 3), dtype=np.uint8)
    h = pixgmm.HistogramModel.fit(px, bins=(8, 16, 4), smoothing=smoothing)
    volume = 32 * 16 * 64
    total = np.exp(h.log_bin_densities).sum() * volume
    assert total == pytest.approx(1.0, rel=1e-12)
    # the formula of the docstring
    n = h.counts + smoothing
    np.testing.assert_allclose(
        np.exp(h.log_bin_densities), n / ((400 + smoothing * h.counts.size) * volume), rtol=1e-12
    )


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int16, np.float32, np.float64])
def test_every_dtype_path_matches_reference(rng, dtype):
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "ui" else None
    lo, hi = (info.min, info.max + 1) if info else (-100.0, 300.0)
    h = pixgmm.HistogramModel.fit(
        rng.uniform(lo, hi, size=(2000, 2)).astype(dtype), bins=(16, 8), range=(lo, hi)
    )
    edges = [np.linspace(lo, hi, b + 1) for b in h.bins]
    X = rng.uniform(lo, hi, size=(500, 2)).astype(dtype)
    got = pixgmm.log_density(X, h)
    # the output dtype rule: float32 for float32 images, float64 otherwise
    assert got.dtype == (np.float32 if dtype == np.float32 else np.float64)
    rtol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, reference_log_density(X, h.counts, edges, 1.0), rtol=rtol)
    np.testing.assert_allclose(pixgmm.density(X, h), np.exp(got), rtol=rtol)


def test_uint8_colour_table_equals_direct(rng):
    h = pixgmm.HistogramModel.fit(rng.integers(0, 256, (5000, 3), dtype=np.uint8), channels="RGB")
    img = rng.integers(0, 256, size=(30, 40, 3), dtype=np.uint8)
    direct = pixgmm.log_density(img, h, method="direct")
    np.testing.assert_array_equal(pixgmm.log_density(img, h, method="table"), direct)
    skin = pixgmm.models.jones_rehg_skin()
    np.testing.assert_allclose(
        pixgmm.log_ratio(img, h, skin, method="table"),
        pixgmm.log_ratio(img, h, skin, method="direct"),
        atol=1e-9,
    )
    with pytest.raises(ValueError, match="method='separable' needs mixtures"):
        pixgmm.log_density(img, h, method="separable")


def test_unnormalised_ratio_of_a_histogram_and_a_mixture_is_refused(rng):
    h = pixgmm.HistogramModel.fit(rng.integers(0, 256, (500, 3), dtype=np.uint8), channels="RGB")
    skin = pixgmm.models.jones_rehg_skin()
    img = rng.integers(0, 256, size=(4, 5, 3), dtype=np.uint8)
    for a, b in ((h, skin), (skin, h)):
        with pytest.raises(ValueError, match=r"normalized=False .* leave normalized=True"):
            pixgmm.log_ratio(img, a, b, normalized=False)
    # between two histograms, or for one histogram alone, there is nothing to drop
    np.testing.assert_array_equal(
        pixgmm.log_ratio(img, h, h, normalized=False), pixgmm.log_ratio(img, h, h)
    )
    np.testing.assert_array_equal(
        pixgmm.log_density(img, h, normalized=False), pixgmm.log_density(img, h)
    )


def test_skin_detector_with_histograms(rng):
    skin_px = rng.normal([200, 140, 110], 15, size=(3000, 3)).clip(0, 255).astype(np.uint8)
    other_px = rng.integers(0, 256, size=(6000, 3), dtype=np.uint8)
    det = pixgmm.SkinDetector(
        pixgmm.HistogramModel.fit(skin_px, bins=8, channels="RGB"),
        pixgmm.HistogramModel.fit(other_px, bins=8, channels="RGB"),
    )
    bgr = np.array([[[110, 140, 200], [160, 90, 40]]], np.uint8)
    assert det.mask(bgr, channels="BGR").tolist() == [[True, False]]
    lr = det.log_ratio(bgr, channels="BGR")
    np.testing.assert_allclose(lr, det.log_ratio(bgr, channels="BGR", method="direct"))
    np.testing.assert_allclose(det.probability(bgr, channels="BGR"), 1 / (1 + np.exp(-lr)))


def test_channel_order(rng):
    px = rng.integers(0, 256, size=(2000, 3), dtype=np.uint8)
    h = pixgmm.HistogramModel.fit(px, bins=(4, 8, 16), channels="RGB")
    b = h.with_channels("BGR")
    assert b.bins == (16, 8, 4) and b.channels == "BGR"
    assert h.with_channels("RGB") is h
    assert h.with_channels("BGR") is b  # cached
    bgr = px[:100, ::-1]
    np.testing.assert_array_equal(
        pixgmm.log_density(bgr, h, channels="BGR"), pixgmm.log_density(px[:100], h)
    )
    assert pixgmm.HistogramModel.fit(px[:, ::-1], bins=(16, 8, 4), channels="BGR") == b


def test_zero_density_and_nan():
    h = pixgmm.HistogramModel([[2.0, 0.0], [0.0, 0.0]], smoothing=0)
    X = np.array([[10.0, 10.0], [10.0, 200.0], [300.0, 10.0], [np.nan, 10.0]])
    got = pixgmm.log_density(X, h)
    assert got[0] == pytest.approx(-math.log(128 * 128))
    assert got[1] == -np.inf and got[2] == -np.inf and np.isnan(got[3])


def test_persistence(tmp_path, rng):
    h = pixgmm.HistogramModel.fit(
        rng.integers(0, 256, (300, 3), dtype=np.uint8), bins=(2, 3, 4), smoothing=0.25,
        channels="BGR",
    )  # fmt: skip
    path = tmp_path / "h.json"
    h.save(path)
    back = pixgmm.HistogramModel.load(path)
    assert back == h and hash(back) == hash(h)
    np.testing.assert_array_equal(back.counts, h.counts)
    assert back.smoothing == 0.25 and back.channels == "BGR"
    assert pickle.loads(pickle.dumps(h)) == h
    assert (
        repr(h)
        == "HistogramModel(bins=(2, 3, 4), range=(0.0, 256.0), smoothing=0.25, channels='BGR')"
    )
    with pytest.raises(AttributeError, match="immutable"):
        h.smoothing = 2
    with pytest.raises(ValueError):
        h.counts[0, 0, 0] = 1


def test_identity_covers_bins_range_smoothing_and_channels():
    counts = np.arange(1.0, 7.0)
    base = pixgmm.HistogramModel(counts.reshape(2, 3), range=(0, 6), channels="RG")
    others = [
        pixgmm.HistogramModel(counts.reshape(3, 2), range=(0, 6), channels="RG"),  # same bytes
        pixgmm.HistogramModel(counts.reshape(6, 1), range=(0, 6), channels="RG"),
        pixgmm.HistogramModel(counts.reshape(2, 3), range=(0, 7), channels="RG"),
        pixgmm.HistogramModel(counts.reshape(2, 3), range=[(0, 6), (0, 7)], channels="RG"),
        pixgmm.HistogramModel(counts.reshape(2, 3), range=(0, 6), channels="RG", smoothing=0.5),
        pixgmm.HistogramModel(counts.reshape(2, 3), range=(0, 6), channels="GR"),
        pixgmm.HistogramModel(counts.reshape(2, 3), range=(0, 6)),
        base.with_channels("GR"),
    ]
    fps = {h._fingerprint for h in [base, *others]}
    assert len(fps) == len(others) + 1
    assert all(h != base for h in others)
    same = pixgmm.HistogramModel(counts.reshape(2, 3).tolist(), range=[(0, 6)] * 2, channels="rg")
    assert same == base and hash(same) == hash(base) and same._fingerprint == base._fingerprint
    assert base.with_channels("GR").with_channels("RG") == base
    assert set(base.to_dict()) == {"schema", "version", *base._defining_fields()}


def test_load_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "pixgmm.mixture", "version": 1}')
    with pytest.raises(ValueError, match=r"field \$\.schema must be \"pixgmm\.histogram\".*"
                       r"read it with pixgmm\.Mixture\.load"):  # fmt: skip
        pixgmm.HistogramModel.load(bad)
    bad.write_text('{"schema": "pixgmm.histogram", "version": 1, "bins": [2], "range": [0, 1]}')
    with pytest.raises(ValueError, match=r"field \$\.counts is missing"):
        pixgmm.HistogramModel.load(bad)
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        pixgmm.HistogramModel.load(bad)
    with pytest.raises(FileNotFoundError, match="cannot read model file"):
        pixgmm.HistogramModel.load(tmp_path / "missing.json")


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"counts": [[1.0, -1.0]]}, ValueError, "non-negative"),
        ({"counts": [[0.0, 0.0]], "smoothing": 0}, ValueError, "histogram is empty"),
        ({"counts": [1.0, 2.0], "smoothing": -1}, ValueError, "smoothing must be a finite"),
        ({"counts": [1.0, 2.0], "smoothing": "a"}, TypeError, "smoothing must be a number"),
        ({"counts": [1.0, 2.0], "range": (5, 1)}, ValueError, "low < high"),
        ({"counts": [[1.0, 2.0]], "range": [(0, 1)] * 3}, ValueError, "one pair per channel"),
        ({"counts": [[1.0, 2.0]], "channels": "RGB"}, ValueError, "counts has 2 axes"),
        ({"counts": 3.0}, ValueError, "at least one bin"),
        ({"counts": "abc"}, TypeError, "counts must be an array"),
    ],
)
def test_constructor_errors(kwargs, exc, match):
    counts = kwargs.pop("counts")
    with pytest.raises(exc, match=match):
        pixgmm.HistogramModel(counts, **kwargs)


def test_fit_errors():
    px = np.array([[1.0, 2.0, 3.0], [4.0, np.nan, 6.0]])
    with pytest.raises(ValueError, match="pixels contains NaN"):
        pixgmm.HistogramModel.fit(px)
    with pytest.raises(ValueError, match=r"1 pixel\(s\) lie outside range"):
        pixgmm.HistogramModel.fit(np.array([[1, 2, 3], [300, 0, 0]], np.uint16))
    with pytest.raises(ValueError, match="pixels is empty"):
        pixgmm.HistogramModel.fit(np.zeros((0, 3), np.uint8))
    with pytest.raises(ValueError, match="bins must be a positive int or 3"):
        pixgmm.HistogramModel.fit(np.zeros((4, 3), np.uint8), bins=[4, 4])
    with pytest.raises(ValueError, match="bins must be a positive"):
        pixgmm.HistogramModel.fit(np.zeros((4, 3), np.uint8), bins=0)
    with pytest.raises(TypeError, match="bins must be an int"):
        pixgmm.HistogramModel.fit(np.zeros((4, 3), np.uint8), bins=2.5)
    with pytest.raises(TypeError, match="pixels has boolean dtype"):
        pixgmm.HistogramModel.fit(np.zeros((4, 3), bool))


def test_fit_counts_many_images_one_by_one(rng):
    HistogramModel = pixgmm.HistogramModel
    images = [rng.integers(0, 256, (h, 7, 3), dtype=np.uint8) for h in (5, 11, 0, 3)]
    whole = HistogramModel.fit(np.concatenate([im.reshape(-1, 3) for im in images]), bins=8)
    assert HistogramModel.fit(images, bins=8) == whole  # a list of arrays
    consumed = []

    def reading():  # a generator: each image is counted before the next is read
        for i, im in enumerate(images):
            consumed.append(i)
            yield im

    assert HistogramModel.fit(reading(), bins=8) == whole
    assert consumed == [0, 1, 2, 3]
    # channel-first images and a mask: the caller selects pixels per image
    assert HistogramModel.fit([np.moveaxis(im, -1, 0) for im in images], bins=8,
                              channel_axis=0) == whole  # fmt: skip
    with pytest.raises(ValueError, match=r"pixels\[1\] has 2 channel\(s\)"):
        HistogramModel.fit([images[0], images[1][..., :2]], bins=8)
    with pytest.raises(ValueError, match="holds no pixels"):
        HistogramModel.fit(iter([images[2]]), bins=8)
    with pytest.raises(ValueError, match=r"lie outside range.*pixels\[1\]"):
        HistogramModel.fit([images[0], images[1].astype(np.int16) - 5], bins=8)
