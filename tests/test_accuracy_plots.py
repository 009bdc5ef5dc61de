"""The accuracy pictures: written as real PNGs, and the numbers drawn are the report's."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from pixgmm.metrics import (
    accuracy_report,
    area_estimates_figure,
    confusion_matrix_figure,
    plot_area_estimates,
    plot_confusion_matrix,
)

pytest.importorskip("matplotlib")
Image = pytest.importorskip("PIL.Image")

NAMES = ["deforestation", "forest gain", "stable forest", "stable non-forest"]
# Olofsson et al. (2014), Table 8: sample counts (rows map) and mapped pixels
TABLE_8 = [[66, 0, 5, 4], [0, 55, 8, 12], [1, 0, 153, 11], [2, 1, 9, 313]]
PIXELS = [200_000, 150_000, 3_200_000, 6_450_000]


def report_from_counts(counts, pixels=None, pixel_area=None, names=None):
    classes = list(range(1, len(counts) + 1))
    m, r = [], []
    for i, a in enumerate(classes):
        for j, b in enumerate(classes):
            m += [a] * counts[i][j]
            r += [b] * counts[i][j]
    return accuracy_report(
        m, r, mapped_counts=pixels, classes=classes, pixel_area=pixel_area, names=names
    )


@pytest.fixture(scope="module")
def paper():
    return report_from_counts(TABLE_8, PIXELS, pixel_area=900.0, names=NAMES)


def texts_at(ax):
    """{(row, column): text} of the texts drawn in the cells of the matrix axes."""
    return {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text()
            for t in ax.texts}  # fmt: skip


def test_matrix_picture_draws_the_counts_and_the_sample_accuracies(paper):
    fig = confusion_matrix_figure(paper)
    ax = fig.axes[0]
    cells = texts_at(ax)
    k = len(NAMES)
    assert len(ax.texts) == k * k + 2 * k + 1
    for i in range(k):
        for j in range(k):
            assert cells[i, j] == str(TABLE_8[i][j])
        assert cells[i, k] == f"{TABLE_8[i][i] / sum(TABLE_8[i]):.2f}"  # user's: of the row
        column = sum(row[i] for row in TABLE_8)
        assert cells[k, i] == f"{TABLE_8[i][i] / column:.2f}"  # producer's: of the column
    diagonal = sum(TABLE_8[i][i] for i in range(k))
    assert cells[k, k] == f"OA {diagonal / 640:.2f}"
    assert [t.get_text() for t in ax.get_xticklabels()] == [*NAMES, "user's"]
    assert [t.get_text() for t in ax.get_yticklabels()] == [*NAMES, "producer's"]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("reference", "map")


def test_matrix_picture_of_proportions_draws_the_weighted_estimates(paper):
    fig = confusion_matrix_figure(paper, values="proportions")
    cells = texts_at(fig.axes[0])
    s = paper.stratified
    # Table 9 of the paper, four decimals
    assert cells[0, 0] == "0.0176" and cells[3, 3] == "0.6212" and cells[2, 3] == "0.0213"
    for i in range(4):
        ua, pa = s.users_accuracy, s.producers_accuracy
        assert cells[i, 4] == f"{ua.value[i]:.2f}\n±{ua.margin[i]:.2f}"
        assert cells[4, i] == f"{pa.value[i]:.2f}\n±{pa.margin[i]:.2f}"
    assert cells[4, 4] == "OA 0.95\n±0.02"  # the paper's 0.95 +- 0.02


def test_area_picture_draws_mapped_and_estimated_areas_with_their_intervals(paper):
    fig = area_estimates_figure(paper)
    s = paper.stratified
    axes = fig.axes
    assert len(axes) == 4
    for i, ax in enumerate(axes):
        assert ax.get_title() == NAMES[i]
        heights = [p.get_height() for p in ax.patches]
        np.testing.assert_allclose(
            heights, [s.mapped_hectares[i], s.area_hectares.value[i]], rtol=1e-12
        )
        (bar,) = ax.collections  # the error bar: one vertical segment from low to high
        (segment,) = bar.get_segments()
        np.testing.assert_allclose(
            sorted(segment[:, 1]), [s.area_hectares.low[i], s.area_hectares.high[i]], rtol=1e-12
        )
    texts = [t.get_text() for t in axes[0].texts]
    assert texts == ["18,000", "21,158\n± 6,158"]  # the paper's 21,158 +- 6,158 ha
    assert axes[0].get_ylabel() == "area (ha)"


def test_area_picture_in_pixels_and_proportions():
    report = report_from_counts([[8, 2], [1, 9]], {1: 300, 2: 700})
    fig = area_estimates_figure(report)  # no pixel_area: pixels
    s = report.stratified
    assert fig.axes[0].get_ylabel() == "area (pixels)"
    np.testing.assert_allclose(
        [p.get_height() for p in fig.axes[1].patches], [700, s.area_pixels.value[1]]
    )
    fig = area_estimates_figure(report, unit="proportion")
    np.testing.assert_allclose(
        [p.get_height() for p in fig.axes[0].patches], [0.3, s.area_proportion.value[0]]
    )
    assert fig.axes[0].texts[1].get_text().startswith(f"{s.area_proportion.value[0]:.4f}")


def test_many_classes_and_an_undefined_estimate_still_draw():
    rng = np.random.default_rng(5)
    k = 9
    counts = (rng.integers(0, 4, (k, k)) + 20 * np.eye(k, dtype=int)).tolist()
    counts[8] = [0] * k  # class 9 is in the reference only: never mapped
    pixels = {c: int(rng.integers(100, 10_000)) for c in range(1, 9)}
    report = report_from_counts(counts, pixels, pixel_area=100.0)
    fig = confusion_matrix_figure(report)
    assert texts_at(fig.axes[0])[8, k] == "n/a"  # user's accuracy of a class never mapped
    fig = area_estimates_figure(report)
    assert sum(ax.axison for ax in fig.axes) == k  # 3 x 4 panels, 3 switched off


@pytest.mark.parametrize("draw", [plot_confusion_matrix, plot_area_estimates])
def test_pictures_are_written_as_png(paper, tmp_path, draw):
    path = draw(paper, tmp_path / "picture.png")
    assert path == tmp_path / "picture.png"
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.verify()
    with Image.open(path) as image:
        width, height = image.size
        pixels = np.asarray(image.convert("L"))
    assert 400 <= width <= 2000 and 250 <= height <= 2000
    assert pixels.std() > 10  # not a blank canvas
    assert path.stat().st_size > 10_000


def test_picture_errors(paper):
    bare = report_from_counts([[3, 1], [0, 4]])
    with pytest.raises(ValueError, match="mapped_counts"):
        area_estimates_figure(bare)
    with pytest.raises(ValueError, match="mapped_counts"):
        confusion_matrix_figure(bare, values="proportions")
    with pytest.raises(ValueError, match="pixel_area"):
        area_estimates_figure(report_from_counts([[3, 1], [0, 4]], {1: 5, 2: 5}), unit="hectares")
    with pytest.raises(ValueError, match="unit"):
        area_estimates_figure(paper, unit="acres")
    with pytest.raises(ValueError, match="values"):
        confusion_matrix_figure(paper, values="percent")
    with pytest.raises(TypeError, match="AccuracyReport"):
        confusion_matrix_figure(paper.to_dict())


def test_importing_the_metrics_loads_no_matplotlib():
    code = "import sys, pixgmm.metrics\nprint('matplotlib' in sys.modules)\n"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
