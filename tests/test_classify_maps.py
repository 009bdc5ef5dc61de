"""Classifier.classify: labels, confidence, margin, entropy and the chi-square reject in one
pass, per-pixel priors, output dtypes. Every map is checked against independent computations:
the per-pixel loop of ``tests/reference.py``, and the maps computed one by one from
``log_posterior``/``probability`` and ``pixgmm.evaluate.min_mahalanobis``."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special
import scipy.stats
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pixgmm
import reference as ref
from pixgmm.evaluate import min_mahalanobis

ALL = ("labels", "confidence", "margin", "entropy")


def classes(rng, d, kinds=("full", "diag", "full", "spherical"), k=(1, 2, 1, 3)):
    """One class per entry of ``kinds``, with ``k`` components each, means over 0..4000."""
    out = {}
    for c, (kind, kc) in enumerate(zip(kinds, k)):
        out[c + 1] = ref.random_mixture(rng, kind, d, kc, 0.0, 4000.0, spread=(0.04, 0.12))
    return out


def image_from(models, rng, shape):
    """Pixels drawn from the classes (so that every class wins somewhere), plus noise."""
    ms = list(models.values())
    n = int(np.prod(shape))
    which = rng.integers(0, len(ms), n)
    d = ms[0].n_features
    out = np.empty((n, d))
    for c, m in enumerate(ms):
        sel = which == c
        comp = rng.choice(m.n_components, size=int(sel.sum()), p=m.weights / m.weights.sum())
        low = np.linalg.cholesky(m.full_covariances())
        z = rng.standard_normal((int(sel.sum()), d))
        out[sel] = m.means[comp] + np.einsum("nij,nj->ni", low[comp], z) * 1.3
    return out.reshape(*shape, d)


def separate_maps(clf, image, chi2_max=None, **kw):
    """The maps one by one, from ``log_posterior``, ``probability`` and ``min_mahalanobis``."""
    lp = clf.log_posterior(image, dtype=np.float64, **kw)
    p = clf.probability(image, dtype=np.float64, **kw)
    undefined = np.isnan(lp).any(axis=-1)
    index = np.where(undefined, -1, np.argmax(np.where(undefined[..., None], 0, lp), axis=-1))
    top2 = np.sort(p, axis=-1)[..., ::-1]
    second = top2[..., 1] if p.shape[-1] > 1 else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(p > 0, p * lp, 0.0).sum(axis=-1)
    entropy[undefined] = np.nan
    rejected = np.zeros(index.shape, bool)
    if chi2_max is not None:
        kw.pop("priors", None)
        d2 = np.stack([min_mahalanobis(image, m, **kw) for m in clf.models.values()], -1)
        won = np.take_along_axis(d2, np.maximum(index, 0)[..., None], -1)[..., 0]
        rejected = (won > chi2_max) & ~undefined
    return index, top2[..., 0], top2[..., 0] - second, entropy, rejected


def assert_maps(maps, clf, index, conf, margin, entropy, rejected, *, fill, reject, atol):
    labels = np.asarray(clf.labels)[np.maximum(index, 0)].astype(maps["labels"].dtype)
    if (index < 0).any():
        labels[index < 0] = fill
    if rejected.any():
        labels[rejected] = reject
    np.testing.assert_array_equal(maps["labels"], labels)
    for name, expected in (("confidence", conf), ("margin", margin), ("entropy", entropy)):
        got = maps[name]
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg=name)
        np.testing.assert_allclose(got, expected, rtol=0, atol=atol, err_msg=name)


@pytest.mark.parametrize(
    ("d", "kinds", "k"),
    [
        (10, ("full",) * 6, (1,) * 6),  # the land-cover case: one Gaussian per class
        (5, ("full", "diag", "full", "spherical"), (1, 2, 3, 1)),
        (3, ("diag", "full", "tied"), (2, 1, 3)),
        (17, ("full", "diag", "full"), (1, 2, 2)),  # above the unrolled channel counts
        (1, ("spherical", "full"), (2, 1)),
    ],
)
def test_one_pass_equals_the_maps_computed_one_by_one(rng, d, kinds, k, monkeypatch):
    from pixgmm._engine import classes as kernels

    models = classes(rng, d, kinds, k)
    clf = pixgmm.Classifier(models, priors=rng.uniform(0.5, 2.0, len(models)))
    img = image_from(models, rng, (23, 19)).astype(np.float32)
    img[2, 3, 0] = np.nan
    img[5, 6] = 1e9  # far from every class: kept, then rejected
    used = []
    real = kernels.pixels_kernel
    monkeypatch.setattr(kernels, "pixels_kernel", lambda n: used.append(n) or real(n))
    level = 0.99
    maps = clf.classify(img, ALL, chi2_level=level, reject=99, fill=0, dtype=np.float64)
    assert used == [d]  # the one-pass kernel, with its channel count
    assert list(maps) == list(ALL)
    chi2_max = scipy.stats.chi2.ppf(level, d)
    expected = separate_maps(clf, img, chi2_max)
    assert expected[4].any() and (expected[0] >= 0).sum() > expected[4].sum()
    assert len(set(expected[0][expected[0] >= 0].tolist())) == len(models)
    assert_maps(maps, clf, *expected, fill=0, reject=99, atol=1e-12)
    assert maps["labels"][2, 3] == 0 and maps["labels"][5, 6] == 99


@pytest.mark.parametrize("d", [4, 10])
def test_one_pass_equals_the_per_pixel_loop(rng, d):
    models = classes(rng, d, ("full", "diag", "full"), (2, 1, 1))
    priors = np.array([0.5, 0.2, 0.3])
    clf = pixgmm.Classifier(models, priors=priors)
    img = image_from(models, rng, (9, 7))
    img[1, 1, 0] = np.nan
    maps = clf.classify(img, ALL, chi2_level=0.95, reject=-2, fill=-1, dtype=np.float64)
    log_priors = np.broadcast_to(np.log(priors), (63, 3))
    index, conf, margin, entropy, rejected = ref.classify_loop(
        img.reshape(-1, d), list(models.values()), log_priors, scipy.stats.chi2.ppf(0.95, d)
    )
    assert rejected.any() and (~rejected).any()
    assert_maps(
        {k: v.reshape(-1) for k, v in maps.items()}, clf, index, conf, margin, entropy,
        rejected, fill=-1, reject=-2, atol=1e-12,
    )  # fmt: skip


def test_histograms_and_colour_tables_take_the_score_path(rng, monkeypatch):
    """Classes the direct engine does not take are scored per class; one kernel decides."""
    from pixgmm._engine import classes as kernels

    px = rng.integers(0, 256, (3000, 3), dtype=np.uint8)
    hist = pixgmm.HistogramModel.fit(px[px[:, 0] > 128], bins=16, smoothing=1.0)
    mix = pixgmm.Mixture([1.0], [[60.0, 128.0, 128.0]], [[900.0, 4000.0, 4000.0]], "diag")
    clf = pixgmm.Classifier({"bright": hist, "dark": mix, "mid": ref.random_mixture(
        rng, "diag", 3, 2, 0, 255)})  # fmt: skip
    img = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    monkeypatch.setattr(kernels, "pixels_kernel", None)  # never reached
    maps = clf.classify(img, ALL, dtype=np.float64)
    index, conf, margin, entropy, _ = separate_maps(clf, img)
    assert_maps(maps, clf, index, conf, margin, entropy, np.zeros_like(index, bool),
                fill=None, reject=None, atol=1e-12)  # fmt: skip


def test_chi2_on_8bit_colour_takes_the_one_pass_kernel_and_agrees_with_the_tables(rng):
    models = classes(rng, 3, ("diag", "diag", "spherical"), (1, 2, 1))
    clf = pixgmm.Classifier(models)
    img = rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)
    kw = {"chi2_level": 0.9, "reject": 0, "dtype": np.float64}
    fused = clf.classify(img, ALL, **kw)
    forced = clf.classify(img, ALL, method="separable", **kw)  # per class, then decided
    np.testing.assert_array_equal(fused["labels"], forced["labels"])
    assert (fused["labels"] == 0).any()
    for name in ALL[1:]:
        np.testing.assert_allclose(fused[name], forced[name], rtol=0, atol=1e-12)


def test_margin_entropy_and_confidence_methods_are_the_classify_maps(rng):
    clf = pixgmm.Classifier(classes(rng, 4))
    img = rng.uniform(0, 4000, (12, 13, 4))
    maps = clf.classify(img, ALL)
    for name in ALL[1:]:
        one = getattr(clf, name)(img)
        assert one.dtype == np.float32
        np.testing.assert_array_equal(one, maps[name])
    labels, conf = clf.predict(img, return_confidence=True)
    np.testing.assert_array_equal(labels, maps["labels"])
    np.testing.assert_array_equal(conf, maps["confidence"])
    h = maps["entropy"]
    assert (h >= 0).all() and (h <= np.log(4) + 1e-6).all()
    assert (maps["margin"] <= maps["confidence"]).all() and (maps["margin"] >= 0).all()


def test_one_class(rng):
    clf = pixgmm.Classifier({"only": ref.random_mixture(rng, "full", 3, 2)})
    img = rng.uniform(0, 255, (4, 5, 3))
    maps = clf.classify(img, ALL)
    assert (maps["labels"] == "only").all()
    assert (maps["confidence"] == 1).all() and (maps["margin"] == 1).all()
    assert (maps["entropy"] == 0).all()


# -- per-pixel priors -----------------------------------------------------------------------


def hand_made_posterior(clf, img, priors):
    """log p(x | c) + log prior (the pixel's, divided by its sum), renormalised, by hand."""
    loglik = np.stack([pixgmm.log_density(img, m) for m in clf.models.values()], -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = loglik + np.log(priors) - np.log(priors.sum(-1, keepdims=True))
        return s - scipy.special.logsumexp(s, axis=-1, keepdims=True)


def test_pixel_priors_against_a_hand_made_posterior(rng):
    models = classes(rng, 5)
    # the classifier's own priors are replaced by the pixels' priors
    clf = pixgmm.Classifier(models, priors=[0.7, 0.1, 0.1, 0.1])
    img = image_from(models, rng, (17, 21))
    priors = rng.uniform(0, 5, (17, 21, 4))
    priors[0, :4] = [[0, 1, 1, 1], [1, 0, 0, 0], [0, 0, 0, 7], [2, 2, 2, 2]]
    expected = hand_made_posterior(clf, img, priors)
    np.testing.assert_allclose(clf.log_posterior(img, priors=priors), expected, atol=1e-9)
    np.testing.assert_allclose(clf.probability(img, priors=priors), np.exp(expected), atol=1e-12)
    maps = clf.classify(img, ALL, priors=priors, dtype=np.float64)
    p = np.exp(expected)
    np.testing.assert_array_equal(maps["labels"], np.asarray(clf.labels)[expected.argmax(-1)])
    np.testing.assert_allclose(maps["confidence"], p.max(-1), atol=1e-12)
    top2 = np.sort(p, -1)
    np.testing.assert_allclose(maps["margin"], top2[..., -1] - top2[..., -2], atol=1e-12)
    with np.errstate(invalid="ignore"):
        h = -np.where(p > 0, p * expected, 0).sum(-1)
    np.testing.assert_allclose(maps["entropy"], h, atol=1e-12)
    assert maps["labels"][0, 1] == 1 and maps["labels"][0, 2] == 4  # the only allowed class
    # with equal class priors: the log posterior plus the log prior, renormalised
    plain = pixgmm.Classifier(models)
    with np.errstate(divide="ignore"):
        s = plain.log_posterior(img) + np.log(priors / priors.sum(-1, keepdims=True))
    by_hand = s - scipy.special.logsumexp(s, axis=-1, keepdims=True)
    np.testing.assert_allclose(plain.log_posterior(img, priors=priors), by_hand, atol=1e-9)
    # priors need not sum to 1, and constant priors are the classifier's
    np.testing.assert_allclose(plain.log_posterior(img, priors=priors * 1e6), by_hand, atol=1e-9)
    equal = plain.classify(img, ALL, priors=np.ones((17, 21, 4)))
    for name, value in plain.classify(img, ALL).items():
        np.testing.assert_array_equal(equal[name], value)


def test_a_zero_prior_forbids_the_class_and_all_zero_has_no_class(rng):
    models = classes(rng, 3, ("full", "full"), (1, 1))
    clf = pixgmm.Classifier(models)
    img = image_from(models, rng, (6, 7))
    free = clf.predict(img)
    priors = np.ones((6, 7, 2))
    priors[..., 0] = 0  # class 1 forbidden everywhere
    priors[0, 0] = 0  # no class at all
    with pytest.raises(ValueError, match=r"1 pixel\(s\) cannot be classified.*zero prior"):
        clf.predict(img, priors=priors)
    maps = clf.classify(img, ALL, priors=priors, fill=0)
    assert maps["labels"][0, 0] == 0 and (maps["labels"].reshape(-1)[1:] == 2).all()
    assert (free == 1).any()  # class 1 would have won somewhere
    for name in ALL[1:]:
        assert np.isnan(maps[name][0, 0])
    rest = np.ones((6, 7), bool)
    rest[0, 0] = False
    assert (maps["confidence"][rest] == 1).all() and (maps["entropy"][rest] == 0).all()
    lp = clf.log_posterior(img, priors=priors)
    assert np.isnan(lp[0, 0]).all() and (lp[rest][:, 0] == -np.inf).all()


def test_prior_axis_and_xarray_priors(rng):
    models = classes(rng, 3, ("full", "diag", "full"), (1, 1, 1))
    clf = pixgmm.Classifier(models)
    img = image_from(models, rng, (8, 9))
    priors = rng.uniform(0, 1, (3, 8, 9))  # a prior raster: one band per class first
    expected = clf.classify(img, ALL, priors=np.moveaxis(priors, 0, -1))
    got = clf.classify(img, ALL, priors=priors, prior_axis=0)
    for name in ALL:
        np.testing.assert_array_equal(got[name], expected[name])
    xr = pytest.importorskip("xarray")
    ximg = xr.DataArray(np.moveaxis(img, -1, 0), dims=("band", "y", "x"), attrs={"units": "DN"})
    xpri = xr.DataArray(priors.transpose(0, 2, 1), dims=("class", "x", "y"))  # any order
    xmaps = clf.classify(ximg, ALL, channel_axis="band", priors=xpri, prior_axis="class")
    for name in ALL:
        assert xmaps[name].dims == ("y", "x")
        np.testing.assert_array_equal(xmaps[name].values, expected[name])
    assert xmaps["labels"].name == "class" and xmaps["margin"].name == "margin"
    np.testing.assert_array_equal(
        clf.log_posterior(ximg, channel_axis="band", priors=xpri, prior_axis="class").values,
        clf.log_posterior(img, priors=np.moveaxis(priors, 0, -1)),
    )
    with pytest.raises(ValueError, match=r"priors has dimensions \['class', 'x', 'z'\]"):
        clf.classify(ximg, channel_axis="band", priors=xpri.rename(y="z"), prior_axis="class")
    on_grid = ximg.assign_coords(x=np.arange(9) * 10.0, y=np.arange(8) * -10.0)
    shifted = xpri.assign_coords(x=np.arange(9) * 10.0 + 5, y=np.arange(8) * -10.0)
    with pytest.raises(ValueError, match="priors' 'x' coordinates differ from the image's"):
        clf.classify(on_grid, channel_axis="band", priors=shifted, prior_axis="class")
    aligned = shifted.assign_coords(x=on_grid.x)
    got = clf.classify(on_grid, ALL, channel_axis="band", priors=aligned, prior_axis="class")
    np.testing.assert_array_equal(got["labels"].values, expected["labels"])


@pytest.mark.parametrize(
    ("priors", "kw", "exc", "match"),
    [
        (
            np.ones((8, 9, 2)),
            {},
            ValueError,
            r"priors has shape \(8, 9, 2\): 2 band\(s\) along prior_axis=-1, but the classifier "
            r"has 3 classes \[1, 2, 3\]",
        ),
        (
            np.ones((8, 10, 3)),
            {},
            ValueError,
            r"priors has shape \(8, 10, 3\).*not the image's \(shape \(8, 9\).*pass priors of "
            r"shape \(8, 9, 3\)",
        ),
        (
            np.ones((3, 8, 9)),
            {},
            ValueError,
            r"priors has shape \(3, 8, 9\): 9 band\(s\) along prior_axis=-1",
        ),
        (np.ones((8, 9, 3)), {"prior_axis": 3}, ValueError, "prior_axis=3 is out of range"),
        (np.ones((8, 9, 3)), {"prior_axis": "class"}, TypeError, "names a dimension"),
        (np.ones((8, 9, 3)), {"prior_axis": 1.0}, TypeError, "prior_axis must be an integer"),
        (np.full((8, 9, 3), "a"), {}, TypeError, "priors must hold numbers"),
        (2.0, {}, ValueError, "priors is a scalar"),
    ],
)
def test_bad_priors_are_clear_errors(rng, priors, kw, exc, match):
    clf = pixgmm.Classifier(classes(rng, 3, ("full", "diag", "full"), (1, 1, 1)))
    img = rng.uniform(0, 4000, (8, 9, 3))
    with pytest.raises(exc, match=match):
        clf.predict(img, priors=priors, **kw)


@pytest.mark.parametrize("value", [np.nan, -0.5, np.inf])
@pytest.mark.parametrize("method", ["predict", "margin", "log_posterior", "probability"])
def test_nan_negative_or_infinite_priors_are_errors(rng, value, method):
    clf = pixgmm.Classifier(classes(rng, 3, ("full", "diag", "full"), (1, 1, 1)))
    img = rng.uniform(0, 4000, (8, 9, 3))
    priors = np.ones((8, 9, 3))
    priors[4, 5, 1] = value
    with pytest.raises(ValueError, match=rf"priors must be finite and >= 0.*class 2 holds {value}"):
        getattr(clf, method)(img, priors=priors)


# -- dtypes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "fill", "reject", "dtype"),
    [
        ((1, 2, 3), None, None, np.uint8),
        ((1, 2, 3), 0, 255, np.uint8),
        ((1, 2, 3), -1, None, np.int8),
        ((1, 2, 3), -1, 255, np.int16),
        ((10, 20, 30), 0, 1000, np.uint16),
        ((0, 2**40, 7), None, None, np.uint64),
        ((0, -(2**40), 7), None, None, np.int64),
        ((np.int64(1), np.uint8(2), 3), None, None, np.uint8),
        (("a", "bb", "c"), "none", "?", np.dtype("<U4")),
        ((1.5, 2.5, 3.5), None, None, np.float64),
    ],
)
def test_label_dtype_is_the_smallest_that_holds_every_label(rng, labels, fill, reject, dtype):
    models = classes(rng, 2, ("full", "diag", "full"), (1, 1, 1))
    clf = pixgmm.Classifier(dict(zip(labels, models.values())))
    img = image_from(models, rng, (10, 11))
    img[0, 0, 0] = np.nan
    kw = {"fill": fill if fill is not None else labels[0]}  # else a label value: its dtype
    if reject is not None:
        kw.update(min_probability=0.999, reject=reject)
    got = clf.predict(img, **kw)
    assert got.dtype == np.dtype(dtype)
    index = np.argmax(clf.log_posterior(img), -1)
    ok = ~np.isnan(img).any(-1)
    plain = np.array(labels, dtype=object)[index]
    if reject is not None:
        keep = ok & (clf.confidence(img, dtype=np.float64) >= 0.999)
    else:
        keep = ok
    assert got[keep].tolist() == plain[keep].tolist()
    assert got[0, 0] == kw["fill"]


def test_map_dtypes_and_bad_outputs(rng):
    clf = pixgmm.Classifier(classes(rng, 3, ("full", "diag"), (1, 1)))
    img = rng.uniform(0, 4000, (5, 6, 3)).astype(np.float32)
    for dtype, expected in ((None, np.float32), (np.float32, np.float32), ("f8", np.float64)):
        maps = clf.classify(img, ALL[1:], dtype=dtype)
        assert {m.dtype for m in maps.values()} == {np.dtype(expected)}
    f32 = clf.classify(img, ALL[1:])
    f64 = clf.classify(img, ALL[1:], dtype=np.float64)
    for name in ALL[1:]:
        np.testing.assert_array_equal(f32[name], f64[name].astype(np.float32))
    assert list(clf.classify(img, "entropy")) == ["entropy"]
    assert list(clf.classify(img, ["margin", "labels", "margin"])) == ["margin", "labels"]
    with pytest.raises(ValueError, match=r"outputs names \['probability'\].*choose from"):
        clf.classify(img, ("labels", "probability"))
    with pytest.raises(ValueError, match="outputs is empty"):
        clf.classify(img, ())
    with pytest.raises(TypeError, match="outputs must be a sequence"):
        clf.classify(img, 3)
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        clf.margin(img, dtype=np.int32)


# -- Dask -----------------------------------------------------------------------------------


@pytest.mark.parametrize("chunks", [(7, 11, 4), (1, 13, 2), (23, 19, 4), (5, (3, 4, 5, 7), 1)])
def test_dask_equals_numpy_over_odd_chunkings(rng, chunks):
    da = pytest.importorskip("dask.array")
    dask = pytest.importorskip("dask")
    models = classes(rng, 4, ("full", "diag", "full"), (1, 2, 1))
    clf = pixgmm.Classifier(models)
    img = image_from(models, rng, (23, 19)).astype(np.float32)
    img[3, 4, 1] = np.nan
    priors = rng.uniform(0, 1, (23, 19, 3))
    priors[6, 6] = 0
    kw = {"fill": 0, "chi2_level": 0.99, "reject": 9}
    expected = clf.classify(img, ALL, priors=priors, **kw)
    dimg = da.from_array(img, chunks=chunks)
    for p in (priors, da.from_array(priors, chunks=(5, 5, 2))):  # NumPy or differently chunked
        lazy = clf.classify(dimg, ALL, priors=p, **kw)
        assert all(isinstance(v, da.Array) for v in lazy.values())
        assert {v.chunks for v in lazy.values()} == {dimg.chunks[:2]}
        got = dask.compute(lazy)[0]
        for name in ALL:
            assert got[name].dtype == expected[name].dtype
            np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    # the maps asked together come from one task per block
    keys = [k for v in lazy.values() for k in dict(v.__dask_graph__())
            if isinstance(k, tuple) and k[0].startswith("pixgmm-best-class")]  # fmt: skip
    assert len(set(keys)) == np.prod(dimg.numblocks[:2])
    # histograms: the class scores per block, then the same decision
    hist = {1: pixgmm.HistogramModel.fit(rng.integers(0, 256, (500, 4)), bins=4), 2: models[2]}
    hclf = pixgmm.Classifier(hist)
    u8 = rng.integers(0, 256, (23, 19, 4), dtype=np.uint8)
    hexp = hclf.classify(u8, ALL, priors=priors[..., :2], fill=0)
    hgot = hclf.classify(da.from_array(u8, chunks=chunks), ALL, priors=priors[..., :2], fill=0)
    assert hexp["labels"][6, 6] == 0
    for name in ALL:
        np.testing.assert_array_equal(hgot[name].compute(), hexp[name])


def test_dask_errors_are_raised_at_compute(rng):
    da = pytest.importorskip("dask.array")
    clf = pixgmm.Classifier(classes(rng, 3, ("full", "diag"), (1, 1)))
    img = rng.uniform(0, 4000, (10, 10, 3))
    img[2, 2, 2] = np.nan
    lazy = clf.predict(da.from_array(img, chunks=5))
    with pytest.raises(ValueError, match=r"1 pixel\(s\) cannot be classified"):
        lazy.compute()
    priors = np.ones((10, 10, 2))
    priors[8, 8, 0] = -1
    lazy = clf.margin(da.from_array(img, chunks=5), priors=priors)
    with pytest.raises(ValueError, match="priors must be finite and >= 0"):
        lazy.compute()


# -- memory and layouts ---------------------------------------------------------------------


def test_no_whole_image_copy_for_a_big_endian_image(rng, monkeypatch):
    """A big-endian float64 image is converted block by block, never copied whole."""
    import tracemalloc

    from pixgmm.classify import _decide

    models = classes(rng, 4, ("full", "diag"), (1, 1))
    clf = pixgmm.Classifier(models)
    img = rng.uniform(0, 4000, (512, 1024, 4)).astype(">f8")  # 16 MiB
    monkeypatch.setattr(_decide, "DECIDE_BLOCK", 1 << 15)  # 1 MiB of pixels per block
    clf.predict(img[:8])  # compile and import outside the measurement
    tracemalloc.start()
    labels, conf = clf.predict(img, return_confidence=True)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    outputs = labels.nbytes + conf.nbytes  # 0.5 + 2 MiB
    assert peak < outputs + 4 * 2**20, peak  # far below the 16 MiB of a native copy
    np.testing.assert_array_equal(labels, clf.predict(img.astype("<f8")))


def fuzz_settings(max_examples):
    return settings(
        max_examples=max_examples, derandomize=True, database=None, deadline=None,
        suppress_health_check=list(HealthCheck),
    )  # fmt: skip


@fuzz_settings(30)
@given(
    dtype=st.sampled_from(["u1", "u2", "<f4", ">f4", "<f8", ">f8"]),
    d=st.sampled_from([3, 6]),  # (each channel count, dtype and layout compiles a kernel)
    step=st.sampled_from([1, 2, -1]),
    channels_first=st.booleans(),
    read_only=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_any_dtype_and_layout_gives_the_maps_of_the_native_image(
    dtype, d, step, channels_first, read_only, seed
):
    rng = np.random.default_rng(seed)
    hi = 255 if dtype == "u1" else 4000
    models = {
        c: ref.random_mixture(rng, kind, d, k, 0.0, hi)
        for c, (kind, k) in enumerate((("full", 1), ("diag", 2), ("spherical", 1)))
    }
    clf = pixgmm.Classifier(models, priors=rng.uniform(0.2, 1, 3))
    base = rng.uniform(0, hi, (15, 14, d)).astype(dtype)
    view = base[::step, ::2]
    priors = rng.uniform(0, 1, (*view.shape[:2], 3))
    if channels_first:
        view = np.moveaxis(view, -1, 0)
    if read_only:
        view.flags.writeable = False
    axis = 0 if channels_first else -1
    kw = {"channel_axis": axis, "priors": priors, "dtype": np.float64, "fill": -1}
    got = clf.classify(view, ALL, **kw)
    native = np.ascontiguousarray(np.moveaxis(view, axis, -1)).astype(np.float64)
    expected = clf.classify(native, ALL, **{**kw, "channel_axis": -1})
    np.testing.assert_array_equal(got["labels"], expected["labels"])
    for name in ALL[1:]:  # 8-bit images may take per-channel tables: rounding apart
        np.testing.assert_allclose(got[name], expected[name], rtol=0, atol=1e-12, err_msg=name)
    index, conf, margin, entropy, _ = separate_maps(clf, native, priors=priors)
    assert_maps(got, clf, index, conf, margin, entropy, np.zeros_like(index, bool),
                fill=-1, reject=None, atol=1e-9)  # fmt: skip
