"""pixgmm.metrics against scikit-learn's roc_curve and roc_auc_score."""

from __future__ import annotations

import numpy as np
import pytest

from pixgmm.metrics import auc, plot_roc, roc_curve, tpr_at_fpr

skm = pytest.importorskip("sklearn.metrics")


def score_sets(rng):
    n = 400
    y = rng.random(n) < 0.3
    y[:2] = [True, False]
    continuous = rng.normal(size=n) + 1.2 * y
    tied = np.round(continuous * 2) / 2  # few distinct values: many ties across classes
    ints = rng.integers(0, 4, size=n).astype(np.uint8)
    return {"continuous": (continuous, y), "tied": (tied, y), "uint8": (ints, y)}


@pytest.mark.parametrize("kind", ["continuous", "tied", "uint8"])
def test_roc_curve_matches_sklearn(rng, kind):
    s, y = score_sets(rng)[kind]
    fpr, tpr, thr = roc_curve(s, y)
    rf, rt, rthr = skm.roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, rf)
    np.testing.assert_allclose(tpr, rt)
    # scikit-learn >= 1.3 also starts at +inf
    np.testing.assert_array_equal(thr[1:], rthr[1:])
    assert thr[0] == np.inf


@pytest.mark.parametrize("kind", ["continuous", "tied", "uint8"])
def test_auc_matches_sklearn(rng, kind):
    s, y = score_sets(rng)[kind]
    assert auc(s, y) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)


def test_auc_is_mann_whitney_with_half_ties(rng):
    s = rng.integers(0, 5, size=200).astype(float)
    y = rng.random(200) < 0.5
    pos, neg = s[y], s[~y]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    assert auc(s, y) == pytest.approx(wins / (pos.size * neg.size), abs=1e-12)


def test_auc_perfect_inverted_and_constant():
    y = np.array([0, 0, 1, 1])
    assert auc([1, 2, 3, 4], y) == 1.0
    assert auc([4, 3, 2, 1], y) == 0.0
    assert auc([7, 7, 7, 7], y) == 0.5


def test_positive_label_and_shapes(rng):
    s, y = score_sets(rng)["continuous"]
    labels12 = np.where(y, 1, 2)  # the UCI convention: 1 = skin, 2 = non-skin
    assert auc(s, labels12, positive=1) == auc(s, y)
    strings = np.where(y, "skin", "other")
    assert auc(s, strings, positive="skin") == auc(s, y)
    # 2-D scores and labels of the same shape (an image and its mask)
    assert auc(s.reshape(20, 20), y.reshape(20, 20)) == auc(s, y)


@pytest.mark.parametrize("kind", ["continuous", "tied"])
@pytest.mark.parametrize("target", [0.0, 0.01, 0.05, 0.1, 0.37, 1.0])
def test_tpr_at_fpr_against_sklearn_curve(rng, kind, target):
    s, y = score_sets(rng)[kind]
    tpr, thr = tpr_at_fpr(s, y, target)
    rf, rt, rthr = skm.roc_curve(y, s, drop_intermediate=False)
    ok = rf <= target + 1e-12
    assert tpr == pytest.approx(rt[ok].max())
    # the threshold is the smallest one meeting the rate, and it reproduces the rate
    assert thr == rthr[ok].min()
    pred = s >= thr
    assert np.count_nonzero(pred & ~y) / np.count_nonzero(~y) <= target
    assert np.count_nonzero(pred & y) / np.count_nonzero(y) == pytest.approx(tpr)


def test_tpr_at_fpr_exact_rate_in_integers():
    # 20 negatives: fpr=0.05 allows exactly one false positive (0.05 * 20 is 1.0000000000000002)
    s = np.arange(30.0)
    y = np.array([1] * 5 + [0] * 20 + [1] * 5)
    tpr, thr = tpr_at_fpr(s, y, 0.05)
    assert thr == 24.0
    assert tpr == 0.5


def test_tpr_at_fpr_with_ties_never_exceeds_the_rate():
    # a tie between a positive and a negative at the top: fpr=0 must exclude both
    s = np.array([5.0, 5.0, 3.0, 1.0])
    y = np.array([1, 0, 1, 0])
    assert tpr_at_fpr(s, y, 0.0) == (0.0, np.inf)
    assert tpr_at_fpr(s, y, 0.5) == (1.0, 3.0)


@pytest.mark.parametrize(
    ("scores", "labels", "kwargs", "exc", "match"),
    [
        ([0.1, 0.2, 0.3], [0, 1, 2], {}, ValueError, "labels must be binary"),
        ([0.1, 0.2, 0.3], [1, 2, 3], {"positive": 1}, ValueError, "3 distinct values"),
        ([0.1, 0.2, 0.3], [1, 1, 1], {}, ValueError, "labels has no negative"),
        ([0.1, 0.2, 0.3], [0, 0, 0], {}, ValueError, "labels has no positive"),
        ([0.1, 0.2, 0.3], [2, 2, 2], {"positive": 1}, ValueError, "no positive"),
        ([0.1, 0.2, 0.3], [0, 1], {}, ValueError, "one label per score"),
        ([[0.1, 0.2], [0.3, 0.4]], [0, 1, 0, 1], {}, ValueError, r"labels has shape \(4,\)"),
        ([0.1, np.nan, 0.3], [0, 1, 1], {}, ValueError, "NaN"),
        (["a", "b"], [0, 1], {}, TypeError, "scores must be a numeric"),
    ],
)
def test_bad_input(scores, labels, kwargs, exc, match):
    for func in (roc_curve, auc):
        with pytest.raises(exc, match=match):
            func(scores, labels, **kwargs)
    with pytest.raises(exc, match=match):
        tpr_at_fpr(scores, labels, 0.1, **kwargs)


def test_tpr_at_fpr_bad_rate():
    with pytest.raises(ValueError, match=r"fpr must be in \[0, 1\]"):
        tpr_at_fpr([1, 2], [0, 1], 1.5)
    with pytest.raises(TypeError, match="fpr must be a number"):
        tpr_at_fpr([1, 2], [0, 1], "5%")


def test_plot_roc_writes_png(tmp_path, rng):
    pytest.importorskip("matplotlib")
    s, y = score_sets(rng)["continuous"]
    path = plot_roc(
        {"a": roc_curve(s, y), "b": roc_curve(-s, y)[:2]},
        tmp_path / "roc.png",
        title="test",
        max_fpr=0.5,
        mark_fpr=[0.05],
    )
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 1000
    # a bare roc_curve result is one unnamed curve
    assert plot_roc(roc_curve(s, y), tmp_path / "one.png").stat().st_size > 1000


def test_plot_roc_bad_arguments(tmp_path):
    pytest.importorskip("matplotlib")
    with pytest.raises(TypeError, match="curves must be a mapping"):
        plot_roc([1, 2], tmp_path / "x.png")
    with pytest.raises(ValueError, match="max_fpr"):
        plot_roc({"a": ([0, 1], [0, 1])}, tmp_path / "x.png", max_fpr=0)
    with pytest.raises(ValueError, match=r"curves\['a'\]"):
        plot_roc({"a": [0, 1, 2, 3]}, tmp_path / "x.png")


def test_infinite_scores():
    # +inf and -inf scores (a log ratio where one density is 0) are valid scores
    s = np.array([np.inf, 2.0, 1.0, -np.inf, np.inf, 0.5])
    y = np.array([1, 1, 0, 0, 1, 0])
    assert auc(s, y) == 1.0
    fpr, tpr, thr = roc_curve(s, y)
    assert thr.tolist()[:2] == [np.inf, np.inf]
    assert (fpr[1], tpr[1]) == (0.0, 2 / 3)
    assert tpr_at_fpr(s, y, 0.0) == (1.0, 2.0)
    # a negative at +inf: the rule score >= inf already has a false positive
    y2 = np.array([0, 1, 0, 0, 1, 1])
    with pytest.raises(ValueError, match=r"1 negative pixel\(s\) score \+inf"):
        tpr_at_fpr(s, y2, 0.2)
    tpr, thr = tpr_at_fpr(s, y2, 1 / 3)
    assert (tpr, thr) == (2 / 3, 2.0)
    assert np.count_nonzero((s >= thr) & (y2 == 0)) / 3 <= 1 / 3
    assert tpr == pytest.approx(np.count_nonzero((s >= thr) & (y2 == 1)) / 3)


def test_roc_figure_legend_gives_each_auc_and_axes_show_the_range(rng):
    from pixgmm.metrics import roc_figure

    s = rng.normal(size=4000)
    y = (s + rng.normal(size=4000) > 0).astype(int)
    fig = roc_figure({"weak": roc_curve(s, y), "perfect": roc_curve(y, y)}, max_fpr=0.1,
                     log_fpr=True, min_fpr=1e-3)  # fmt: skip
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == [f"weak (AUC {auc(s, y):.3f})", "perfect (AUC 1.000)"]
    assert ax.get_xscale() == "log"
    np.testing.assert_allclose(ax.get_xlim(), (1e-3, 0.1))
    linear = roc_figure(roc_curve(s, y), max_fpr=0.2).axes[0]
    assert linear.get_xscale() == "linear"
    np.testing.assert_allclose(linear.get_xlim(), (0.0, 0.2))
    assert [t.get_text() for t in linear.get_legend().get_texts()] == [f"AUC {auc(s, y):.3f}"]
    with pytest.raises(ValueError, match="min_fpr"):
        roc_figure(roc_curve(s, y), max_fpr=0.1, log_fpr=True, min_fpr=0.5)
