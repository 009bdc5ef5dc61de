"""Dask-array images: lazy results equal to the NumPy results, over odd chunkings.

Every evaluation function, uint8 (colour-table and separable engines) and float
images, chunks that do not divide the shape and chunks that split the channel
axis, on dask's threaded and synchronous schedulers. The graph is checked to
hold each model once.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import pixgmm
from pixgmm import evaluate as ev
from pixgmm._engine import table as table_engine

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
cloudpickle = pytest.importorskip("cloudpickle")

SINGLE = ("density", "log_density", "responsibilities", "predict")
FUNCS = (*SINGLE, "log_ratio")


def test_import_pixgmm_does_not_import_dask():
    code = "import pixgmm, sys; assert 'dask' not in sys.modules, sorted(sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def _models():
    a = pixgmm.Mixture(
        [0.2, 0.5, 0.3],
        [[200, 150, 120], [90, 60, 40], [30, 200, 90]],
        [[300, 250, 400], [600, 500, 700], [150, 900, 300]],
        "diag",
        channels="RGB",
    )
    cov = np.array([[[900, 200, 100], [200, 800, 150], [100, 150, 700]]] * 2, float)
    b = pixgmm.Mixture([0.6, 0.4], [[120, 120, 120], [220, 40, 60]], cov, "full", channels="RGB")
    return a, b


def _call(name, image, a, b, **kw):
    f = getattr(pixgmm, name)
    if name == "log_ratio":
        return f(image, a, b, **kw)
    return f(image, a, **kw)


def _check(lazy, expected):
    assert isinstance(lazy, da.Array)
    assert lazy.shape == expected.shape
    assert lazy.dtype == expected.dtype
    got = lazy.compute()
    assert got.shape == expected.shape and got.dtype == expected.dtype
    if expected.dtype.kind == "i":
        np.testing.assert_array_equal(got, expected)
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-300)
    return got


@pytest.mark.parametrize("scheduler", ["threads", "sync"])
@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize(
    "chunks",
    [(7, 11, 3), (10, 13, 2), (37, 41, 1), (5, 41, 3), (64, 64, 3)],
    ids=["odd", "split-channels", "one-channel-chunks", "rows", "one-block"],
)
def test_every_function_equals_numpy(name, chunks, scheduler, rng):
    a, b = _models()
    img = rng.integers(0, 256, (37, 41, 3), dtype=np.uint8)
    expected = _call(name, img, a, b)
    lazy = _call(name, da.from_array(img, chunks=chunks), a, b)
    assert lazy.chunks[:2] == da.from_array(img, chunks=chunks).chunks[:2]
    if name == "responsibilities":
        assert lazy.chunks[2] == (a.n_components,)
    with dask.config.set(scheduler=scheduler):
        _check(lazy, expected)


@pytest.mark.parametrize("name", ["density", "log_density", "log_ratio"])
@pytest.mark.parametrize("method", ["table", "separable", "direct"])
def test_forced_engines_on_uint8(name, method, rng):
    a, b = _models()
    if method == "separable":
        b = pixgmm.Mixture([0.5, 0.5], [[10, 20, 30], [200, 100, 50]], [40.0, 900.0], "spherical")
    img = rng.integers(0, 256, (29, 33, 3), dtype=np.uint8)
    expected = _call(name, img, a, b, method=method)
    _check(_call(name, da.from_array(img, chunks=(8, 9, 2)), a, b, method=method), expected)


def test_auto_engine_is_chosen_for_the_whole_image(rng, monkeypatch):
    """A megapixel uint8 image cut into small blocks still gets the colour table."""
    a, _ = _models()
    img = rng.integers(0, 256, (1030, 1020, 3), dtype=np.uint8)
    assert img.shape[0] * img.shape[1] >= ev.TABLE_MIN_PIXELS
    expected = pixgmm.log_density(img, a)
    lazy = pixgmm.log_density(da.from_array(img, chunks=(300, 257, 3)), a)
    seen = []
    original = table_engine.gather

    def spy(*args):
        seen.append(args[0].shape[0])
        return original(*args)

    monkeypatch.setattr(table_engine, "gather", spy)
    got = lazy.compute(scheduler="sync")
    assert len(seen) == lazy.npartitions  # every block went through the table
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(
    "dtype", ["<f4", ">f4", "<f8", ">f8", "u1", "<u2", "f2"], ids=lambda d: str(d)
)
@pytest.mark.parametrize("name", FUNCS)
def test_dtypes(name, dtype, rng):
    a, b = _models()
    img = (rng.random((23, 19, 3)) * 255).astype(dtype)
    expected = _call(name, img, a, b)
    _check(_call(name, da.from_array(img, chunks=(6, 7, 2)), a, b), expected)


@pytest.mark.parametrize("name", FUNCS)
def test_channels_first_and_keywords(name, rng):
    a, b = _models()
    img = rng.integers(0, 256, (3, 21, 26), dtype=np.uint8)
    kw = {"channel_axis": 0, "channels": "BGR", "normalized": False}
    if name != "predict":
        kw["dtype"] = np.float32
    expected = _call(name, img, a, b, **kw)
    lazy = _call(name, da.from_array(img, chunks=(1, 8, 9)), a, b, **kw)
    assert lazy.chunks[:2] == ((8, 8, 5), (9, 9, 8))
    _check(lazy, expected)


def test_batch_of_images_and_grayscale(rng):
    a, _ = _models()
    batch = rng.integers(0, 256, (3, 17, 15, 3), dtype=np.uint8)
    _check(
        pixgmm.log_density(da.from_array(batch, chunks=(2, 5, 6, 2)), a),
        pixgmm.log_density(batch, a),
    )
    gray = pixgmm.Mixture([0.5, 0.5], [[0.0], [5.0]], [1.0, 2.0], "spherical")
    x = rng.normal(2, 4, (40, 30))
    x[3, 4] = np.nan
    for name in SINGLE:
        f = getattr(pixgmm, name)
        expected = f(x, gray, channel_axis=None)
        lazy = f(da.from_array(x, chunks=(9, 11)), gray, channel_axis=None)
        assert lazy.chunks[:2] == ((9, 9, 9, 9, 4), (11, 11, 8))
        got = lazy.compute()
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
        np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_sklearn_and_kernel_models_are_coerced_once(rng):
    a, _ = _models()
    triples = [(m, c, w) for m, c, w in zip(a.means, a.covariances, a.weights)]
    img = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
    lazy = pixgmm.density(da.from_array(img, chunks=7), triples)
    models = [v for v in dict(lazy.__dask_graph__()).values() if _is_model_node(v)]
    assert len(models) == 1
    _check(lazy, pixgmm.density(img, triples))


def _is_model_node(value):
    data = getattr(value, "value", None)
    return isinstance(data, pixgmm.Mixture)


def test_model_is_in_the_graph_once(rng):
    """One key per model; block tasks refer to it and are much smaller than the model."""
    k = 64
    means = rng.uniform(0, 255, (k, 3))
    cov = np.stack([np.eye(3) * rng.uniform(50, 500) for _ in range(k)])
    big = pixgmm.Mixture(np.full(k, 1 / k), means, cov, "full")
    img = da.zeros((512, 512, 3), dtype=np.uint8, chunks=(64, 64, 3))
    lazy = pixgmm.log_density(img, big)
    graph = dict(lazy.__dask_graph__())
    model_keys = [key for key, v in graph.items() if _is_model_node(v)]
    assert len(model_keys) == 1
    model_bytes = len(cloudpickle.dumps(big))
    block_keys = [key for key in graph if isinstance(key, tuple) and key[0] == lazy.name]
    assert len(block_keys) == lazy.npartitions == 64
    sizes = [len(cloudpickle.dumps(graph[key])) for key in block_keys]
    assert max(sizes) < model_bytes / 4, (max(sizes), model_bytes)
    # the whole graph grows by far less than a model per block
    assert len(cloudpickle.dumps(graph)) < model_bytes + 64 * max(sizes) + 64 * 1024


def test_table_is_built_once_per_process(rng, monkeypatch):
    a, _ = _models()
    pixgmm.clear_cache()
    calls = []
    original = table_engine.log_table_chunks

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(table_engine, "log_table_chunks", counting)
    img = rng.integers(0, 256, (60, 60, 3), dtype=np.uint8)
    lazy = pixgmm.density(da.from_array(img, chunks=(15, 15, 3)), a, method="table")
    with dask.config.set(scheduler="threads", num_workers=4):
        got = lazy.compute()
    assert len(calls) == 1
    np.testing.assert_array_equal(got, pixgmm.density(img, a, method="table"))
    pixgmm.clear_cache()


def test_empty_and_unknown_chunks(rng):
    a, _ = _models()
    empty = da.zeros((0, 5, 3), dtype=np.uint8, chunks=2)
    assert pixgmm.density(empty, a).compute().shape == (0, 5)
    x = da.from_array(rng.integers(0, 256, (10, 3), dtype=np.uint8), chunks=4)
    unknown = x[x[:, 0] > 100]
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        pixgmm.density(unknown, a)


def test_errors_are_raised_before_any_task_runs(rng):
    a, b = _models()
    img = da.zeros((10, 12, 3), dtype=np.uint8, chunks=5)
    with pytest.raises(TypeError, match="out"):
        pixgmm.density(img, a, out=np.empty((10, 12)))
    with pytest.raises(TypeError, match="out"):
        pixgmm.density(img, a, out=da.zeros((10, 12)))
    with pytest.raises(ValueError, match=r"4 channel\(s\).*shape \(10, 12, 4\)"):
        pixgmm.density(da.zeros((10, 12, 4), dtype=np.uint8, chunks=5), a)
    with pytest.raises(ValueError, match="method"):
        pixgmm.density(img, a, method="fast")
    with pytest.raises(ValueError, match="method='table'"):
        pixgmm.density(img.astype(np.float32), a, method="table")
    with pytest.raises(ValueError, match="dtype"):
        pixgmm.density(img, a, dtype=np.int32)
    with pytest.raises(TypeError, match="boolean"):
        pixgmm.density(img > 0, a)
    with pytest.raises(TypeError, match="colour"):
        pixgmm.density(img, a, colour=True)
    with pytest.raises(ValueError, match="channels"):
        pixgmm.density(img, a, channels="XYZ")
    with pytest.raises(ValueError, match="features"):
        pixgmm.log_ratio(img, a, pixgmm.Mixture([1.0], [[0.0]], [1.0], "spherical"))
    with pytest.raises(ValueError, match="channel_axis"):
        pixgmm.density(img, a, channel_axis=3)


def test_different_images_get_different_keys(rng):
    a, _ = _models()
    x = da.from_array(rng.integers(0, 256, (10, 10, 3), dtype=np.uint8), chunks=5)
    y = da.from_array(rng.integers(0, 256, (10, 10, 3), dtype=np.uint8), chunks=5)
    assert pixgmm.density(x, a).name != pixgmm.density(y, a).name
    assert pixgmm.density(x, a).name == pixgmm.density(x, a).name
    assert pixgmm.density(x, a).name != pixgmm.density(x, a, normalized=False).name
    got = da.stack([pixgmm.density(x, a), pixgmm.density(y, a)]).compute()
    np.testing.assert_array_equal(got[1], pixgmm.density(y.compute(), a))


@pytest.mark.parametrize("name", ["density", "log_density", "log_ratio"])
def test_histogram_model(name, rng):
    if not hasattr(pixgmm, "HistogramModel"):
        pytest.skip("pixgmm.HistogramModel is not available")
    a, _ = _models()
    pixels = rng.integers(0, 256, (5000, 3), dtype=np.uint8)
    hist = pixgmm.HistogramModel.fit(pixels, bins=16)
    img = rng.integers(0, 256, (31, 29, 3), dtype=np.uint8)
    args = (hist, a) if name == "log_ratio" else (hist,)
    f = getattr(pixgmm, name)
    for method in ("auto", "table"):
        expected = f(img, *args, method=method)
        _check(f(da.from_array(img, chunks=(8, 9, 2)), *args, method=method), expected)


# -- the skin detector and the classifier on dask arrays -------------------------
def _detector():
    a, b = _models()
    return pixgmm.SkinDetector(a, b, prior=0.3)


def _classifier():
    a, b = _models()
    c = pixgmm.Mixture([1.0], [[60, 60, 200]], [[800, 800, 800]], "diag")
    return pixgmm.Classifier({"skin": a, "sky": c, "other": b}, priors=[0.2, 0.3, 0.5])


@pytest.mark.parametrize("scheduler", ["threads", "sync"])
@pytest.mark.parametrize(
    "method, kw",
    [
        ("log_ratio", {}),
        ("log_ratio", {"dtype": np.float32, "channels": "BGR"}),
        ("probability", {}),
        ("mask", {}),
        ("mask", {"ratio": 2.0}),
        ("mask", {"probability": 0.8}),
    ],
)
def test_skin_detector_methods_are_lazy_and_equal_numpy(method, kw, scheduler, rng):
    detector = _detector()
    img = rng.integers(0, 256, (37, 41, 3), dtype=np.uint8)
    img[:5, :5] = [205, 150, 125]  # some pixels on the skin side of every threshold
    dimg = da.from_array(img, chunks=(10, 13, 2))  # the channel axis split
    expected = getattr(detector, method)(img, **kw)
    lazy = getattr(detector, method)(dimg, **kw)
    assert isinstance(lazy, da.Array)
    assert lazy.chunks == dimg.chunks[:2]
    with dask.config.set(scheduler=scheduler):
        got = _check(lazy, expected)
    if method == "mask":
        assert got.any() and not got.all()


def test_skin_detector_on_float_channels_first(rng):
    detector = _detector()
    img = (rng.random((3, 25, 30)) * 255).astype(np.float32)
    img[0, 2, 3] = np.nan
    dimg = da.from_array(img, chunks=(1, 9, 8))
    for method in ("log_ratio", "probability", "mask"):
        expected = getattr(detector, method)(img, channel_axis=0)
        lazy = getattr(detector, method)(dimg, channel_axis=0)
        assert lazy.chunks == ((9, 9, 7), (8, 8, 8, 6))
        got = lazy.compute()
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
        np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_skin_detector_models_are_in_the_graph_once(rng):
    detector = _detector()
    dimg = da.from_array(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8), chunks=(8, 8, 3))
    for method in ("log_ratio", "probability", "mask"):
        graph = dict(getattr(detector, method)(dimg).__dask_graph__())
        models = [v for v in graph.values() if _is_model_node(v)]
        assert len(models) == 2, method  # skin and non-skin, once each, for 25 blocks


@pytest.mark.parametrize("method", ["log_posterior", "probability"])
def test_classifier_scores_equal_numpy(method, rng):
    clf = _classifier()
    img = rng.integers(0, 256, (37, 41, 3), dtype=np.uint8)
    dimg = da.from_array(img, chunks=(10, 13, 2))
    expected = getattr(clf, method)(img)
    lazy = getattr(clf, method)(dimg)
    assert isinstance(lazy, da.Array)
    assert lazy.chunks[:2] == dimg.chunks[:2]
    _check(lazy, expected)
    graph = dict(lazy.__dask_graph__())
    assert len([v for v in graph.values() if _is_model_node(v)]) == 3


@pytest.mark.parametrize("method", ["log_posterior", "probability", "predict"])
def test_classifier_methods_are_lazy_with_the_class_axis_in_one_chunk(method, rng):
    clf = _classifier()
    img = rng.integers(0, 256, (37, 41, 3), dtype=np.uint8)
    dimg = da.from_array(img, chunks=(10, 13, 2))
    expected = getattr(clf, method)(img)
    lazy = getattr(clf, method)(dimg)
    assert isinstance(lazy, da.Array)
    if method == "predict":
        assert lazy.chunks == dimg.chunks[:2]
        np.testing.assert_array_equal(lazy.compute(), expected)
    else:
        assert lazy.chunks == (*dimg.chunks[:2], (3,))
        _check(lazy, expected)


def test_classifier_predict_with_fill_is_lazy(rng):
    clf = _classifier()
    img = (rng.random((20, 22, 3)) * 255).astype(np.float64)
    img[3, 4, 1] = np.nan
    dimg = da.from_array(img, chunks=(7, 8, 3))
    lazy = clf.predict(dimg, fill="none")
    assert isinstance(lazy, da.Array) and lazy.chunks == dimg.chunks[:2]
    got = lazy.compute()
    assert got[3, 4] == "none"
    np.testing.assert_array_equal(got, clf.predict(img, fill="none"))


@pytest.mark.parametrize("name", FUNCS)
def test_block_tasks_pickle_no_code(name, rng):
    """Block tasks name pixgmm's functions; no function is pickled by value into each task."""
    a, b = _models()
    img = da.zeros((64, 64, 3), dtype=np.uint8, chunks=(16, 16, 3))
    lazy = _call(name, img, a, b)
    graph = dict(lazy.__dask_graph__())
    block = cloudpickle.dumps(graph[(lazy.name,) + (0,) * lazy.ndim])
    assert b"_make_function" not in block and b"CodeType" not in block
    assert len(block) < 1024, len(block)
    np.testing.assert_array_equal(
        lazy.compute(), _call(name, np.zeros((64, 64, 3), np.uint8), a, b)
    )


def _spectral_classifier():
    r = np.random.default_rng(5)
    models = {}
    for label, kind in ((10, "full"), (20, "diag"), (30, "full")):
        k = 3
        means = r.uniform(500, 3500, (k, 5))
        if kind == "full":
            a = r.normal(0, 1, (k, 5, 5))
            cov = (a @ a.transpose(0, 2, 1) + 5 * np.eye(5)) * 4e4
        else:
            cov = r.uniform(1e4, 9e4, (k, 5))
        models[label] = pixgmm.Mixture(r.dirichlet(np.ones(k)), means, cov, kind)
    return pixgmm.Classifier(models, priors=[0.5, 0.3, 0.2])


def _best_class_keys(*arrays):
    graph = {}
    for a in arrays:
        graph.update(dict(a.__dask_graph__()))
    return [k for k in graph if isinstance(k, tuple) and k[0].startswith("pixgmm-best-class")]


def test_classifier_one_pass_on_dask_equals_numpy_and_is_shared(rng):
    """Multispectral classes the direct engine takes are scored in one task per block, and
    labels and confidence asked for together (or in two calls with the same arguments)
    share those tasks."""
    clf = _spectral_classifier()
    img = rng.uniform(0, 4000, (5, 33, 41)).astype(np.uint16)  # channels first
    dimg = da.from_array(img, chunks=(2, 10, 13))  # the channel axis split
    kw = {"channel_axis": 0, "min_probability": 0.9, "reject": -1}
    exp_labels, exp_conf = clf.predict(img, return_confidence=True, **kw)
    assert (exp_labels == -1).any() and (exp_labels != -1).any()
    labels, conf = clf.predict(dimg, return_confidence=True, **kw)
    assert labels.chunks == conf.chunks == ((10, 10, 10, 3), (13, 13, 13, 2))
    assert len(_best_class_keys(labels, conf)) == 16  # one per block, not one per output
    again = clf.predict(dimg, return_confidence=True, **kw)[1]
    assert len(_best_class_keys(labels, conf, again)) == 16
    alone = clf.confidence(dimg, channel_axis=0)  # other maps, other options: its own tasks
    assert len(_best_class_keys(labels, conf, alone)) == 32
    np.testing.assert_array_equal(alone.compute(), conf.compute())
    got_labels, got_conf = dask.compute(labels, conf)
    np.testing.assert_array_equal(got_labels, exp_labels)
    assert got_conf.dtype == exp_conf.dtype == np.float32
    np.testing.assert_array_equal(got_conf, exp_conf)
    xr = pytest.importorskip("xarray")
    x = xr.DataArray(dimg, dims=("band", "y", "x"))
    xl, xc = clf.predict(x, channel_axis="band", return_confidence=True, min_probability=0.9,
                         reject=-1)  # fmt: skip
    assert len(_best_class_keys(xl.data, xc.data)) == 16
    np.testing.assert_array_equal(xl.values, exp_labels)
    np.testing.assert_allclose(xc.values, exp_conf, rtol=1e-12)
