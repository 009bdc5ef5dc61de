"""pixgmm's EM engine against a slow reference step and scikit-learn's GaussianMixture.

- one EM step against an obvious NumPy/SciPy reference (per-component logpdf,
  responsibilities, weighted M-step), every covariance type, float32/float64,
  3 channels (the specialised kernel) and 1 and 4 (the general one);
- n steps from the same start as scikit-learn, on a uint8 image (histogram) and
  on the same pixels as float64 (no compression), within 1e-6 relative;
- integer sample weights equal repeated rows; compression; degenerate cases.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest
from scipy import stats

import pixgmm
from pixgmm import fitting
from pixgmm._engine import em as _em
from pixgmm._engine import histfit as _histfit

COV_TYPES = ["full", "diag", "spherical", "tied"]
GaussianMixture = pytest.importorskip("sklearn.mixture").GaussianMixture


def start_mixture(covariance_type, d=3, k=3, scale=1.0):
    """A fixed starting mixture of any covariance type over colours 0..255."""
    means = np.array([[60, 90, 120, 30], [170, 150, 100, 200], [120, 200, 60, 100]], float)
    means = means[:k, :d] * scale
    var = np.array([[300, 200, 250, 150], [400, 350, 300, 250], [500, 300, 200, 400]])[:k, :d]
    var = var * scale**2
    cov = {
        "diag": var,
        "spherical": var.mean(axis=1),
        "full": np.array(
            [np.diag(v) + 0.3 * np.sqrt(np.outer(v, v)) * (1 - np.eye(d)) for v in var]
        ),
        "tied": np.diag(var.mean(axis=0)) + 20 * scale**2 * (1 - np.eye(d)),
    }[covariance_type]
    return pixgmm.Mixture([0.5, 0.3, 0.2][:k], means, cov, covariance_type)


def blob_pixels(rng, n, d=3, dtype=np.uint8):
    centres = np.array([[60, 90, 120, 30], [180, 150, 100, 200], [110, 210, 70, 90]])[:, :d]
    spread = np.array([[12, 15, 9, 20], [20, 10, 14, 8], [8, 12, 16, 10]])[:, :d]
    label = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
    X = rng.normal(centres[label], spread[label])
    return X.clip(0, 255).round().astype(dtype) if np.dtype(dtype).kind == "u" else X.astype(dtype)


# -- the slow, obvious reference -------------------------------------------------------


def reference_step(X, w, mixture, covariance_type, reg_covar):
    """One E-step and M-step written out: scipy log-pdfs, responsibilities, weighted moments."""
    X = np.asarray(X, dtype=np.float64)
    k, d = mixture.means.shape
    full = mixture.full_covariances()
    logp = np.column_stack([
        np.log(mixture.weights[j] / mixture.weights.sum())
        + stats.multivariate_normal(mixture.means[j], full[j]).logpdf(X).reshape(-1)
        for j in range(k)
    ])  # fmt: skip
    lse = np.logaddexp.reduce(logp, axis=1)
    resp = np.exp(logp - lse[:, None]) * w[:, None]
    nk = resp.sum(axis=0)
    means = resp.T @ X / nk[:, None]
    covs = np.empty((k, d, d))
    for j in range(k):
        diff = X - means[j]
        covs[j] = (resp[:, j, None] * diff).T @ diff / nk[j]
    if covariance_type == "full":
        cov = covs + reg_covar * np.eye(d)
    elif covariance_type == "tied":
        cov = (covs * nk[:, None, None]).sum(axis=0) / nk.sum() + reg_covar * np.eye(d)
    elif covariance_type == "diag":
        cov = np.diagonal(covs, axis1=1, axis2=2) + reg_covar
    else:
        cov = np.diagonal(covs, axis1=1, axis2=2).mean(axis=1) + reg_covar
    lower_bound = (w * lse).sum() / w.sum()
    return nk / nk.sum(), means, cov, lower_bound


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("d", [1, 3, 4])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_one_step_equals_the_reference(rng, covariance_type, d, dtype):
    X = blob_pixels(rng, 700, d, dtype)
    w = rng.uniform(0.2, 3.0, size=700)
    start = start_mixture(covariance_type, d)
    got = fitting.fit_em(X, 3, covariance_type, init=start, max_iter=1, tol=0, sample_weight=w,
                         reg_covar=1e-3)  # fmt: skip
    weights, means, cov, lb = reference_step(X, w, start, covariance_type, 1e-3)
    m = got.mixture
    np.testing.assert_allclose(m.weights, weights, rtol=1e-10)
    np.testing.assert_allclose(m.means, means, rtol=1e-10)
    np.testing.assert_allclose(m.covariances, cov, rtol=1e-9)
    assert got.lower_bound == pytest.approx(lb, rel=1e-12)
    assert got.n_iter == 1 and got.lower_bounds == (got.lower_bound,)


# -- scikit-learn from the same start --------------------------------------------------


def sklearn_from(mixture, X, max_iter, reg_covar):
    gm = GaussianMixture(
        mixture.n_components,
        covariance_type=mixture.covariance_type,
        weights_init=mixture.weights / mixture.weights.sum(),
        means_init=mixture.means,
        precisions_init=mixture.to_sklearn().precisions_,
        init_params="random_from_data",  # unused: every parameter is given
        tol=0,
        max_iter=max_iter,
        reg_covar=reg_covar,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tol=0 never converges
        return gm.fit(X)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_n_steps_equal_sklearn_uint8_histogram_and_float64(rng, covariance_type):
    image = blob_pixels(rng, 60 * 80).reshape(60, 80, 3)
    X = image.reshape(-1, 3).astype(np.float64)
    start = start_mixture(covariance_type)
    ref = sklearn_from(start, X, 8, 1.0)
    r8 = fitting.fit_em(image, 3, covariance_type, init=start, tol=0, max_iter=8, reg_covar=1.0)
    r64 = fitting.fit_em(X, 3, covariance_type, init=start, tol=0, max_iter=8, reg_covar=1.0)
    assert r8.compression == "histogram" and r8.n_points < X.shape[0]
    assert r64.compression == "none" and r64.n_points == X.shape[0]
    for r in (r8, r64):
        assert r.n_iter == 8 and not r.converged
        np.testing.assert_allclose(r.mixture.weights, ref.weights_, rtol=1e-6)
        np.testing.assert_allclose(r.mixture.means, ref.means_, rtol=1e-6)
        np.testing.assert_allclose(r.mixture.covariances, ref.covariances_, rtol=1e-6)
        assert r.lower_bound == pytest.approx(ref.lower_bound_, rel=1e-9)
        np.testing.assert_allclose(r.lower_bounds, ref.lower_bounds_, rtol=1e-9)
        # the diagnostics are scikit-learn's BIC/AIC and score of the returned model
        sk = r.mixture.to_sklearn()
        assert r.log_likelihood == pytest.approx(sk.score(X), rel=1e-10)
        assert r.bic == pytest.approx(sk.bic(X), rel=1e-10)
        assert r.aic == pytest.approx(sk.aic(X), rel=1e-10)


def test_large_offset_data_keeps_its_precision(rng):
    """Statistics centred on the current means: 1e6 + small noise loses nothing."""
    X = 1e6 + blob_pixels(rng, 2000, 3, np.float64) / 100
    small = start_mixture("full", scale=0.01)
    start = pixgmm.Mixture(small.weights, small.means + 1e6, small.covariances, "full")
    got = fitting.fit_em(X, 3, "full", init=start, tol=0, max_iter=3, reg_covar=1e-6)
    ref = sklearn_from(small, X - 1e6, 3, 1e-6)  # scikit-learn on the data without the offset
    np.testing.assert_allclose(got.mixture.covariances, ref.covariances_, rtol=1e-6)
    np.testing.assert_allclose(got.mixture.means - 1e6, ref.means_, rtol=1e-6, atol=1e-7)


# -- weights and compression -----------------------------------------------------------


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_integer_weights_equal_repeated_rows(rng, covariance_type):
    X = blob_pixels(rng, 400, 3, np.float64)
    reps = rng.integers(0, 4, size=400)
    start = start_mixture(covariance_type)
    a = fitting.fit_em(X, 3, covariance_type, init=start, sample_weight=reps, tol=0, max_iter=6)
    b = fitting.fit_em(np.repeat(X, reps, axis=0), 3, covariance_type, init=start, tol=0,
                       max_iter=6)  # fmt: skip
    assert a.n_samples == b.n_samples == reps.sum()
    for attr in ("weights", "means", "covariances"):
        np.testing.assert_allclose(getattr(a.mixture, attr), getattr(b.mixture, attr), rtol=1e-10)
    assert a.bic == pytest.approx(b.bic, rel=1e-12)


def test_weighted_uint8_histogram_equals_weighted_float(rng):
    image = blob_pixels(rng, 3000)
    w = rng.uniform(0, 2, size=3000)
    start = start_mixture("diag")
    a = fitting.fit_em(image, 3, init=start, sample_weight=w, tol=0, max_iter=5, reg_covar=1.0)
    b = fitting.fit_em(image.astype(np.float32), 3, init=start, sample_weight=w, tol=0,
                       max_iter=5, reg_covar=1.0)  # fmt: skip
    assert a.compression == "histogram" and b.compression == "none"
    np.testing.assert_allclose(a.mixture.means, b.mixture.means, rtol=1e-10)
    np.testing.assert_allclose(a.mixture.covariances, b.mixture.covariances, rtol=1e-10)


@pytest.mark.parametrize(
    ("dtype", "d", "expected"),
    [
        (np.uint8, 3, "histogram"),
        (np.uint8, 1, "histogram"),
        (np.uint8, 4, "unique"),
        (np.uint16, 3, "unique"),
        (np.int16, 2, "unique"),
        (np.float32, 3, "none"),
    ],
)
def test_compression_is_exact_and_reported(rng, dtype, d, expected):
    px = rng.integers(0, 6, size=(5000, d)).astype(dtype)
    X, w, how = _histfit.compress(px, None)
    assert how == expected
    if how == "none":
        assert X is px and w is None
        return
    # the distinct rows with their counts are exactly the pixels
    assert w.sum() == px.shape[0]
    uniq, counts = np.unique(px, axis=0, return_counts=True)
    order = np.lexsort(X.T[::-1])
    np.testing.assert_array_equal(X[order], uniq)
    np.testing.assert_array_equal(w[order], counts)


@pytest.mark.parametrize(("d", "high"), [(3, 256), (3, 40), (2, 256), (1, 256)])
def test_dense_and_sorted_histograms_agree(rng, monkeypatch, d, high):
    # the dense histogram (uint32 counts without weights, float64 with) and its parallel
    # scan for non-zero entries against the sorted codes; high=40: colours repeat
    px = rng.integers(0, high, size=(20000, d)).astype(np.uint8)
    px[:7] = 255
    w = rng.uniform(size=20000)
    for weights in (None, w):
        a = _histfit.compress(px, weights)
        monkeypatch.setattr(_histfit, "DENSE_HISTOGRAM_MIN", 0)
        b = _histfit.compress(px, weights)
        monkeypatch.undo()
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_allclose(a[1], b[1], rtol=1e-12)
        assert b[1].sum() == pytest.approx(px.shape[0] if weights is None else w.sum())


def test_wide_integers_are_not_compressed_when_it_does_not_shrink(rng):
    px = rng.integers(0, 2**16, size=(500, 3)).astype(np.uint16)
    assert _histfit.compress(px, None)[2] == "none"
    r = fitting.fit_em(px, 2, init="k-means++")
    assert r.compression == "none" and r.n_points == 500


def test_views_byte_order_and_channel_axis_do_not_change_the_fit(rng):
    X = blob_pixels(rng, 1200, 3, np.float64).reshape(30, 40, 3)
    start = start_mixture("full")
    ref = fitting.fit(X, 3, "full", init=start, tol=0, max_iter=4)
    for variant, axis in [
        (X.astype(">f8"), -1),
        (np.moveaxis(X, -1, 0), 0),
        (np.asfortranarray(X), -1),
    ]:
        got = fitting.fit(variant, 3, "full", init=start, tol=0, max_iter=4, channel_axis=axis)
        np.testing.assert_allclose(got.means, ref.means, rtol=1e-12)
        np.testing.assert_allclose(got.covariances, ref.covariances, rtol=1e-12)
    strided = np.repeat(X, 2, axis=1)[:, ::2]  # a non-contiguous view of the same pixels
    got = fitting.fit(strided, 3, "full", init=start, tol=0, max_iter=4)
    np.testing.assert_allclose(got.means, ref.means, rtol=1e-12)


# -- kernel-level checks ---------------------------------------------------------------


def test_statistics_do_not_depend_on_blocking(rng):
    """The block split is a function of N only; the sums agree with one long NumPy sum."""
    X = blob_pixels(rng, 3 * _em.BLOCK + 17, 3, np.float64)
    m = start_mixture("full")
    prec = np.ascontiguousarray(m.precisions_cholesky)
    coef = _em.log_coefficients(m.weights, prec)
    nk, sx, sxx, ll, wsum, nnan = _histfit.block_stats(X, None, m.means, prec, coef, True, 2)
    logp = np.column_stack([
        np.log(m.weights[j]) + stats.multivariate_normal(m.means[j], m.covariances[j]).logpdf(X)
        for j in range(3)
    ])  # fmt: skip
    lse = np.logaddexp.reduce(logp, axis=1)
    r = np.exp(logp - lse[:, None])
    np.testing.assert_allclose(nk, r.sum(0), rtol=1e-12)
    np.testing.assert_allclose(sx, np.einsum("nk,nkc->kc", r, X[:, None] - m.means), rtol=1e-9)
    d = X[:, None] - m.means
    np.testing.assert_allclose(
        np.tril(sxx[0]), np.tril(np.einsum("n,nc,ne->ce", r[:, 0], d[:, 0], d[:, 0])), rtol=1e-10
    )
    assert ll == pytest.approx(lse.sum(), rel=1e-13)
    assert (wsum, nnan) == (X.shape[0], 0)


@pytest.mark.parametrize("chunk", [None, 100])
@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_one_gaussian_statistics_in_numpy_equal_the_kernel(
    rng, covariance_type, chunk, monkeypatch
):
    """K = 1 takes NumPy products (no kernel to load): the kernel's sums, NaN rows and all,
    in one chunk or in chunks of 100 points."""
    if chunk is not None:
        monkeypatch.setattr(_histfit, "ONE_COMPONENT_CHUNK", chunk)
    X = blob_pixels(rng, 3 * _em.BLOCK + 17, 4, np.float64)
    X[[3, 400]] = np.nan  # NaN rows weigh 0 and are counted
    w = rng.uniform(0.5, 3.0, X.shape[0])
    means = np.nanmean(X, axis=0)[None] + 7.0
    cov = np.cov(X[~np.isnan(X).any(1)], rowvar=False) + np.eye(4)
    cov = (np.diag(cov) if covariance_type == "diag" else cov)[None]
    prec = _em.precision_cholesky(cov, covariance_type, 1, 4)
    coef = _em.log_coefficients(np.ones(1), prec)
    full = covariance_type == "full"
    for weights in (w, None):
        for second in (0, _em.SECOND_DIAG, _em.SECOND_FULL):
            got = _histfit.one_component_stats(X, weights, means, prec, coef, second)
            ref = _histfit.block_stats(X, weights, means, prec, coef, full, second)
            np.testing.assert_allclose(got[0], ref[0], rtol=1e-13)
            np.testing.assert_allclose(got[1], ref[1], rtol=1e-9, atol=1e-9 * np.abs(ref[1]).max())
            if second == _em.SECOND_FULL:  # the kernel fills the lower triangle
                np.testing.assert_allclose(np.tril(got[2][0]), ref[2][0], rtol=1e-10)
            elif second == _em.SECOND_DIAG:
                np.testing.assert_allclose(
                    np.diagonal(got[2][0]), np.diagonal(ref[2][0]), rtol=1e-10
                )
            assert got[3] == pytest.approx(ref[3], rel=1e-12)
            assert got[4] == pytest.approx(ref[4], rel=1e-13) and got[5] == ref[5] == 2


def test_one_gaussian_is_fitted_without_loading_the_em_kernels(tmp_path):
    """A fit with k=1 (one Gaussian per class: the maximum-likelihood classifier) of
    integer pixels needs no kernel, so a new process does not even import numba; the
    result is the pixels' mean and covariance (+ reg_covar 1 for integers)."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np, pixgmm, pixgmm.fitting, pixgmm.training\n"
        "rng = np.random.default_rng(0)\n"
        "img = rng.normal(100, 20, (60, 50, 4)).round().clip(0, 255).astype(np.uint16)\n"
        "r = pixgmm.fitting.fit_em(img, 1, 'full')\n"
        "px = img.reshape(-1, 4).astype(float)\n"
        "ok = np.allclose(r.mixture.means[0], px.mean(0), rtol=1e-12) and np.allclose(\n"
        "    r.mixture.covariances[0], np.cov(px, rowvar=False, bias=True) + np.eye(4),\n"
        "    rtol=1e-9)\n"
        "print(ok, r.converged, 'numba' in sys.modules)\n"
        "from pixgmm._engine import em, emfit, emtable, kmeans\n"
        "used = [f'{m.__name__}.{n}' for m in (em, emfit, emtable, kmeans)\n"
        "        for n, f in vars(m).items() if getattr(f, 'signatures', None)]\n"
        "r2 = pixgmm.fitting.fit_em(img, 2, 'full')\n"  # two components: the kernels
        "print(used, bool(em.em_stats.signatures))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=tmp_path)  # fmt: skip
    assert out.stdout.split() == ["True", "True", "False", "[]", "True"], out.stdout + out.stderr


# -- initialisation, convergence, selection --------------------------------------------


@pytest.mark.parametrize(
    ("init", "tol"), [("lloyd", 1e-3), ("kmeans", 1e-3), ("k-means++", 1e-3), ("random", 1e-6)]
)
def test_inits_find_the_blobs(rng, init, tol):
    # random responsibilities start every component at the global mean, where the EM
    # moves slowly at first (as scikit-learn's init_params="random"): a smaller tol
    image = blob_pixels(rng, 6000).reshape(60, 100, 3)
    r = fitting.fit_em(image, 3, init=init, random_state=3, max_iter=300, tol=tol)
    assert r.converged and r.init == init
    order = np.argsort(r.mixture.means[:, 0])
    np.testing.assert_allclose(r.mixture.means[order, 0], [60, 110, 180], atol=3)
    np.testing.assert_allclose(np.sort(r.mixture.weights), [0.2, 0.3, 0.5], atol=0.03)


def test_table_e_step_of_colours_equals_the_general_kernel(rng):
    # uint8 colours with diagonal covariances take the per-channel-table kernel; the same
    # points as float64 take the general one. Component 0 is narrow (variance 1), so the
    # colours far from every component underflow the tables and need the exact fallback.
    X = rng.integers(0, 256, size=(3 * _em.BLOCK + 17, 3)).astype(np.uint8)
    X[:5], X[5:10] = 0, 255
    w = rng.uniform(0.5, 3.0, X.shape[0])
    means = np.array([[128.0, 128, 128], [40, 200, 90], [220, 30, 150]])
    for var in ([[1.0, 1, 1], [300, 200, 250], [400, 350, 300]], np.full((3, 3), 0.01)):
        prec = np.zeros((3, 3, 3))
        prec[:, range(3), range(3)] = 1 / np.sqrt(np.asarray(var))
        coef = _em.log_coefficients(np.array([0.5, 0.3, 0.2]), prec)
        for weights, second in ((w, _em.SECOND_DIAG), (None, _em.SECOND_DIAG), (w, 0)):
            got = _histfit.block_stats(X, weights, means, prec, coef, False, second)
            ref = _histfit.block_stats(
                X.astype(np.float64), weights, means, prec, coef, False, second
            )
            for a, b in zip(got[:3], ref[:3]):
                np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9 * np.abs(b).max())
            assert got[3] == pytest.approx(ref[3], rel=1e-12) and got[4:] == ref[4:]


def test_lloyd_iterations_equal_scikit_learn_kmeans_with_weights(rng):
    from pixgmm._engine import emfit as _emfit

    KMeans = pytest.importorskip("sklearn.cluster").KMeans
    X = blob_pixels(rng, 5000)
    colours, counts, _ = _histfit.compress(X, None)
    start = np.array([[50.0, 80, 110], [200, 140, 90], [100, 200, 60], [130, 130, 130]])
    for n_iter in (1, 3, 50):
        ours = _emfit.lloyd(colours, counts, start, n_iter, 0.0, _em.n_tasks(counts.shape[0]))
        km = KMeans(4, init=start, n_init=1, max_iter=n_iter, tol=0, algorithm="lloyd")
        km.fit(colours.astype(np.float64), sample_weight=counts)
        np.testing.assert_allclose(ours, km.cluster_centers_, rtol=1e-10)
        # the same as Lloyd's algorithm written out on every pixel (weights: pixel counts)
        centres = start.copy()
        for _ in range(n_iter):
            label = ((X[:, None, :] - centres[None]) ** 2).sum(axis=2).argmin(axis=1)
            new = np.array([X[label == j].mean(axis=0) for j in range(4)])
            if np.array_equal(new, centres):
                break
            centres = new
        np.testing.assert_allclose(ours, centres, rtol=1e-10)


def test_default_init_needs_no_scikit_learn(rng, monkeypatch):
    image = blob_pixels(rng, 3000).reshape(50, 60, 3)
    ref = fitting.fit_em(image, 3)
    monkeypatch.setitem(sys.modules, "sklearn", None)  # import fails, as without the extra
    monkeypatch.setitem(sys.modules, "sklearn.cluster", None)
    r = fitting.fit_em(image, 3)
    assert r.init == "lloyd" and r.converged and r.mixture == ref.mixture
    with pytest.raises(ImportError, match=r"pip install \"pixgmm\[fit\]\""):
        fitting.fit(image, 3, init="kmeans")


def test_lloyd_init_is_deterministic_and_needs_distinct_colours(rng):
    image = blob_pixels(rng, 3000).reshape(50, 60, 3)
    a = fitting.fit_em(image, 4, random_state=5)
    assert a.mixture == fitting.fit_em(image, 4, random_state=5).mixture
    two = np.zeros((10, 10, 3), np.uint8)
    two[5:] = 9
    two[0, 0] = 200  # 3 distinct colours
    assert fitting.fit_em(two, 3).n_components == 3
    with pytest.raises(ValueError, match=r"3 distinct value\(s\), fewer than n_components=4"):
        fitting.fit(two, 4)


def test_lloyd_coarse_then_fine_finds_the_blobs(rng, monkeypatch):
    # beyond LLOYD_COARSE_MIN distinct values: seeding and Lloyd on a sample, then on all
    from pixgmm._engine import emfit as _emfit

    monkeypatch.setattr(_emfit, "LLOYD_COARSE_MIN", 100)
    monkeypatch.setattr(_emfit, "LLOYD_COARSE", 300)
    image = blob_pixels(rng, 6000).reshape(60, 100, 3)
    r = fitting.fit_em(image, 3, random_state=3)
    assert r.converged and r.init == "lloyd" and r.n_points > 100
    order = np.argsort(r.mixture.means[:, 0])
    np.testing.assert_allclose(r.mixture.means[order, 0], [60, 110, 180], atol=3)


def test_n_init_keeps_the_best_start(rng):
    X = blob_pixels(rng, 2000, 3, np.float64)
    one = fitting.fit_em(X, 6, init="random", n_init=1, random_state=1)
    three = fitting.fit_em(X, 6, init="random", n_init=3, random_state=1)
    assert three.lower_bound >= one.lower_bound


def test_tol_zero_runs_exactly_max_iter_and_convergence_is_reported(rng):
    X = blob_pixels(rng, 1000, 3, np.float64)
    r = fitting.fit_em(X, 3, init="k-means++", tol=0, max_iter=7)
    assert r.n_iter == 7 and len(r.lower_bounds) == 7 and not r.converged
    with pytest.warns(fitting.ConvergenceWarning, match="did not converge in max_iter=2"):
        r = fitting.fit_em(X, 5, init="random", tol=1e-12, max_iter=2)
    assert not r.converged
    seen = []
    r = fitting.fit_em(X, 3, init="k-means++", callback=lambda i, lb: seen.append((i, lb)))
    assert r.converged and [s[0] for s in seen] == list(range(1, r.n_iter + 1))
    assert [s[1] for s in seen] == list(r.lower_bounds)
    # EM never decreases the likelihood
    assert np.all(np.diff(r.lower_bounds) > -1e-9)


def test_model_selection_by_bic_picks_the_true_count(rng):
    image = blob_pixels(rng, 8000)
    best = fitting.fit_em(image, range(1, 6), init="k-means++", random_state=0)
    assert [c.n_components for c in best.candidates] == [1, 2, 3, 4, 5]
    assert best.n_components == 3
    assert best.bic == min(c.bic for c in best.candidates)
    aic = fitting.fit_em(image, [2, 3], init="k-means++", criterion="aic")
    assert aic.aic == min(c.aic for c in aic.candidates)
    assert pixgmm.fit(image, range(1, 6), init="k-means++") == best.mixture


# -- degenerate cases ------------------------------------------------------------------


def test_fewer_distinct_colours_than_components():
    image = np.zeros((50, 50, 3), np.uint8)
    image[:25] = 200
    with pytest.raises(ValueError, match=r"pixels has 2 distinct value\(s\), fewer than n_comp"):
        fitting.fit(image, 3)


def test_nan_pixels_are_skipped_and_counted(rng):
    X = blob_pixels(rng, 1500, 3, np.float32)
    Xn = X.copy()
    Xn[::10, 2] = np.nan
    start = start_mixture("diag")
    a = fitting.fit_em(Xn, 3, init=start, tol=0, max_iter=3)
    b = fitting.fit_em(X[~np.isnan(Xn).any(axis=1)], 3, init=start, tol=0, max_iter=3)
    assert a.n_nan == 150 and a.n_samples == 1350
    np.testing.assert_allclose(a.mixture.means, b.mixture.means, rtol=1e-12)
    with pytest.raises(ValueError, match="total weight 0"):
        fitting.fit(np.full((10, 3), np.nan), 1)


def test_a_component_that_loses_its_weight_is_dropped(rng):
    X = blob_pixels(rng, 2000, 3, np.float64)
    m = start_mixture("diag")
    far = pixgmm.Mixture(
        [0.5, 0.3, 0.2, 0.01],
        np.vstack([m.means, [5000, 5000, 5000]]),
        np.vstack([m.covariances, [1, 1, 1]]),
        "diag",
    )
    with pytest.warns(fitting.EmptyComponentWarning, match="1 component.*dropped"):
        r = fitting.fit_em(X, 4, init=far, tol=0, max_iter=3)
    assert r.n_components == 3 and r.n_dropped == 1
    # the others continue exactly as a 3-component fit from the same start
    ref = fitting.fit_em(X, 3, init=m, tol=0, max_iter=3)
    np.testing.assert_allclose(r.mixture.means, ref.mixture.means, rtol=1e-10)


def test_reg_covar_default_keeps_8bit_components_from_collapsing(rng):
    """Half the pixels are one colour: with reg_covar='auto' (1.0) its component keeps variance 1."""
    image = blob_pixels(rng, 4000)
    image[:2000] = (40, 40, 40)
    r = fitting.fit_em(image, 4, init="k-means++", max_iter=300)
    assert r.converged
    assert r.mixture.covariances.min() >= 1.0
    one = np.argmin(np.abs(r.mixture.means - 40).sum(axis=1))
    np.testing.assert_allclose(r.mixture.covariances[one], 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match=r"reg_covar=0\.?0?.*pass a larger reg_covar"):
        fitting.fit_em(image, 4, init="k-means++", reg_covar=0.0, max_iter=300)


def test_init_mixture_checks(rng):
    X = blob_pixels(rng, 300, 3, np.float64)
    with pytest.raises(ValueError, match="init has 3 components but n_components=2"):
        fitting.fit(X, 2, init=start_mixture("diag"))
    with pytest.raises(ValueError, match="init has 4 features"):
        fitting.fit(X, 3, init=start_mixture("diag", d=4))
    # a mixture of another covariance type is a valid start
    r = fitting.fit_em(X, 3, "full", init=start_mixture("diag"), max_iter=2, tol=0)
    assert r.mixture.covariance_type == "full" and r.init == "mixture"


# -- many images -----------------------------------------------------------------------


def test_fit_classes_over_images_equals_one_fit_per_class(rng):
    images = [blob_pixels(rng, 400).reshape(20, 20, 3) for _ in range(3)]
    masks = [rng.random((20, 20)) < 0.5 for _ in range(3)]
    results = fitting.fit_classes_em(images, masks, 2, init="k-means++")
    for c in (False, True):
        px = np.concatenate([im[m == c] for im, m in zip(images, masks)])
        alone = fitting.fit_em(px, 2, init="k-means++")
        assert results[c].mixture == alone.mixture
        assert results[c].compression == "histogram"
        assert results[c].n_samples == px.shape[0]


def test_class_histograms_stream_images_with_bounded_state(rng):
    acc = fitting.ClassHistograms(classes=[1, 2])
    for _ in range(4):
        image = blob_pixels(rng, 600).reshape(20, 30, 3)
        labels = rng.integers(0, 3, size=(20, 30))  # 0: unlabelled, ignored
        acc.add(image, labels)
    # one dense histogram per class, whatever the number of images
    assert sorted(acc._counts) == [1, 2] and not acc._parts
    assert all(c.shape == (256**3,) for c in acc._counts.values())
    res = acc.fit_em(2, init="k-means++", max_samples=500)
    assert res[1].n_samples == res[2].n_samples == 500
    # a float image after 8-bit ones: the class's histogram becomes points, still exact
    before = acc.n_pixels(1)
    acc.add(blob_pixels(rng, 600, 3, np.float64).reshape(20, 30, 3), np.ones((20, 30), int))
    assert acc.n_pixels(1) == before + 600 and 1 in acc._parts
    assert acc.fit(2, init="k-means++")[1].n_components == 2
