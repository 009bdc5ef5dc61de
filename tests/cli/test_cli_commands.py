"""The ``pixgmm`` commands in process (click's CliRunner): usage errors, fit, evaluate, lazy paths.

The main paths run as real subprocesses in ``test_cli.py``; here the many
option combinations run in process, which is fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

import pixgmm

pytest.importorskip("click")
imageio = pytest.importorskip("imageio.v3")
tifffile = pytest.importorskip("tifffile")

from click.testing import CliRunner  # noqa: E402

from cli_run import invoke  # noqa: E402
from pixgmm.cli import data as _cli_data  # noqa: E402
from pixgmm.cli import main  # noqa: E402


@pytest.fixture
def scene(tmp_path):
    """A synthetic photo (skin-coloured square on a blue background, with noise) and its mask."""
    rng = np.random.default_rng(7)
    image = np.empty((60, 80, 3), np.float64)
    image[:] = (40, 90, 160)
    mask = np.zeros((60, 80), np.uint8)
    mask[15:45, 20:60] = 255
    image[mask > 0] = (200, 140, 110)
    image += rng.normal(0, 12, image.shape)
    image = np.clip(np.round(image), 0, 255).astype(np.uint8)
    (tmp_path / "photos").mkdir()
    (tmp_path / "masks").mkdir()
    imageio.imwrite(tmp_path / "photos" / "scene.png", image)
    imageio.imwrite(tmp_path / "masks" / "scene.png", mask)
    return tmp_path, image, mask


# -- usage errors (exit 2) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["skin", "x.jpg", "--threshold", "0.5", "--ratio", "2"], "not both"),
        (["skin", "x.jpg", "--save", "mask,bogus"], "bogus"),
        (["skin"], "no INPUTS"),
        (["density", "x.jpg", "-m", "missing.json"], "cannot read model file"),
        (["density", "x.jpg", "-m", "jones-rehg-skin", "--format", "png", "--chunks", "64"], "png"),
        (["classify", "x.jpg", "-m", "skin"], "LABEL=VALUE"),
        (
            [
                "classify",
                "x.jpg",
                "-m",
                "a=jones-rehg-skin",
                "-m",
                "b=jones-rehg-nonskin",
                "--prior",
                "a=0.3",
            ],
            "no prior for b",
        ),
        (["fit", "-o", "m.json"], "no data"),
        (["fit", "--pixels", "t.txt", "x.jpg", "-o", "m.json"], "not both"),
        (["evaluate", "--pixels", "t.txt", "--fpr", "2"], "--fpr"),
        (["evaluate", "--pixels", "t.txt", "-d", "a=b=c,d,e"], "--detector"),
        (["info", "nothing.json"], "cannot read model file"),
    ],
)
def test_usage_errors_exit_2(tmp_path, args, message):
    result = invoke(*args, cwd=tmp_path)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_model_with_a_wrong_field_is_named(tmp_path):
    (tmp_path / "m.json").write_text(
        json.dumps(
            {
                "schema": "pixgmm.mixture",
                "version": 1,
                "weights": [1.0],
                "means": [[0, 0, 0]],
                "covariances": [[1, -1, 1]],
                "covariance_type": "diag",
            }
        )
    )
    result = invoke("info", "m.json", cwd=tmp_path)
    assert result.exit_code == 2
    assert "m.json" in result.output and "variance" in result.output.lower()


def test_info_json_of_a_builtin_model(tmp_path):
    result = invoke("info", "jones-rehg-skin", "--json", cwd=tmp_path)
    assert result.exit_code == 0
    summary = json.loads(result.stdout)
    assert summary["n_components"] == 16 and summary["channels"] == "RGB"


# -- fit ---------------------------------------------------------------------------


def test_fit_from_images_with_masks_matches_pixgmm_fit(scene):
    tmp, image, mask = scene
    result = invoke(
        "fit", "photos/scene.png", "--masks", "masks", "-k", "2", "-o", "skin.json", cwd=tmp
    )
    assert result.exit_code == 0, result.output
    got = pixgmm.Mixture.load(tmp / "skin.json")
    want = pixgmm.fit(image[mask > 0], 2, channels="RGB", reg_covar=1.0)
    assert got == want

    # one model per mask value, named after the value
    result = invoke(
        "fit", "photos", "--masks", "masks", "--per-class", "-k", "1", "-o", "m.json", cwd=tmp
    )
    assert result.exit_code == 0, result.output
    bg = pixgmm.Mixture.load(tmp / "m.0.json")
    fg = pixgmm.Mixture.load(tmp / "m.255.json")
    np.testing.assert_allclose(bg.means[0], image[mask == 0].mean(0), rtol=1e-6)
    np.testing.assert_allclose(fg.means[0], image[mask > 0].mean(0), rtol=1e-6)

    # an existing model is kept (a rerun finishes the job) and replaced only with --overwrite
    before = (tmp / "skin.json").read_text()
    result = invoke("fit", "photos/scene.png", "-k", "1", "-o", "skin.json", cwd=tmp)
    assert result.exit_code == 0 and "kept existing skin.json" in result.output
    assert (tmp / "skin.json").read_text() == before
    result = invoke("fit", "photos/scene.png", "-k", "1", "-o", "skin.json", "--overwrite", cwd=tmp)
    assert result.exit_code == 0
    assert pixgmm.Mixture.load(tmp / "skin.json").n_components == 1


def test_fit_from_a_csv_table_with_header(tmp_path):
    rng = np.random.default_rng(1)
    a = rng.normal([10, 200], 3, size=(300, 2))
    b = rng.normal([150, 30], 5, size=(200, 2))
    rows = np.vstack([np.c_[a, np.full(300, 3)], np.c_[b, np.full(200, 8)]])
    text = "nir,red,class\n" + "\n".join(f"{x:.3f},{y:.3f},{int(c)}" for x, y, c in rows)
    (tmp_path / "px.csv").write_text(text + "\n")
    result = invoke(
        "fit",
        "--pixels",
        "px.csv",
        "--columns",
        "nir,red",
        "--class",
        "8",
        "-k",
        "1",
        "-o",
        "water.json",
        "--json",
        cwd=tmp_path,
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["models"][0]["pixels"] == 200 and summary["reg_covar"] == 1e-6
    model = pixgmm.Mixture.load(tmp_path / "water.json")
    assert [c.lower() for c in model.channels] == ["nir", "red"]
    np.testing.assert_allclose(model.means[0], b.mean(0), atol=1e-3)

    result = invoke(
        "fit",
        "--pixels",
        "px.csv",
        "--columns",
        "nir,red",
        "--class",
        "5",
        "-o",
        "x.json",
        cwd=tmp_path,
    )
    assert result.exit_code == 2 and "labels present: 3, 8" in result.output
    result = invoke("fit", "--pixels", "px.csv", "--columns", "BGR", "-o", "x.json", cwd=tmp_path)
    assert result.exit_code == 1 and "names 3 channel(s)" in result.output


def test_read_table_errors_name_the_file(tmp_path):
    (tmp_path / "bad.txt").write_text("1 2 3 1\n4 5 x 2\n")
    with pytest.raises(_cli_data.DataError, match=r"bad\.txt: not a table of numbers"):
        _cli_data.read_table(tmp_path / "bad.txt", "BGR")
    with pytest.raises(_cli_data.DataError, match="no such file"):
        _cli_data.read_table(tmp_path / "none.txt")
    (tmp_path / "ok.txt").write_text("# B G R label\n1 2 3 1\n4 5 6 2\n")
    data = _cli_data.read_table(tmp_path / "ok.txt", "BGR")
    assert data.pixels.dtype == np.uint8 and data.labels.tolist() == [1, 2]
    assert data.pixels.tolist() == [[1, 2, 3], [4, 5, 6]]


# -- classify ----------------------------------------------------------------------


def test_classify_priors_and_unclassified_pixels(scene):
    tmp, image, mask = scene
    skin = pixgmm.fit(image[mask > 0], 1, channels="RGB", reg_covar=1.0)
    sky = pixgmm.fit(image[mask == 0], 1, channels="RGB", reg_covar=1.0)
    skin.save(tmp / "skin.json")
    sky.save(tmp / "sky.json")
    args = ["classify", "photos/scene.png", "-m", "sky=sky.json", "-m", "skin=skin.json"]
    result = invoke(*args, "--prior", "sky=0.9", "--prior", "skin=0.1", "-o", "out", cwd=tmp)
    assert result.exit_code == 0, result.output
    assert "0 = sky" in result.stdout and "1 = skin" in result.stdout
    labels = imageio.imread(tmp / "out/scene.labels.png")
    clf = pixgmm.Classifier({"sky": sky, "skin": skin}, priors=[0.9, 0.1])
    np.testing.assert_array_equal(np.array(["sky", "skin"])[labels], clf.predict(image))
    assert (labels == (mask > 0)).mean() > 0.99

    # a histogram with no smoothing has zero density off its bins: such pixels get 255
    hist = pixgmm.HistogramModel.fit(image[mask > 0], bins=8, smoothing=0, channels="RGB")
    hist.save(tmp / "hist.json")
    result = invoke(
        "classify", "photos/scene.png", "-m", "h=hist.json", "--save", "labels", "-o", "h", cwd=tmp
    )
    assert result.exit_code == 0, result.output
    labels = imageio.imread(tmp / "h/scene.labels.png")
    assert set(np.unique(labels)) == {0, 255}
    assert (labels[mask > 0] == 0).all()


# -- evaluate ----------------------------------------------------------------------


def test_evaluate_images_with_masks(scene):
    from pixgmm.metrics import auc, tpr_at_fpr

    tmp, image, mask = scene
    result = invoke(
        "evaluate", "photos", "--masks", "masks", "--fpr", "0.01,0.2", "--json", cwd=tmp
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["pixels"] == mask.size and summary["positive"] == int((mask > 0).sum())
    row = summary["detectors"][0]
    scores = pixgmm.SkinDetector().log_ratio(image)
    assert row["auc"] == pytest.approx(auc(scores, mask > 0), abs=1e-12)
    tpr, thr = tpr_at_fpr(scores, mask > 0, 0.2)
    assert row["tpr_at_fpr"][1] == {"fpr": 0.2, "tpr": tpr, "threshold": thr}

    result = invoke("evaluate", "photos", "--masks", "masks", "--plot", "roc.png", cwd=tmp)
    assert result.exit_code == 0 and "AUC" in result.stdout
    assert (tmp / "roc.png").read_bytes()[:4] == b"\x89PNG"
    result = invoke("evaluate", "photos", "--masks", "masks", "--plot", "roc.png", cwd=tmp)
    assert result.exit_code == 1 and "--overwrite" in result.output

    (tmp / "masks" / "scene.png").unlink()
    result = invoke("evaluate", "photos", "--masks", "masks", cwd=tmp)
    assert result.exit_code == 1 and "no mask in masks" in result.output


# -- Dask: --chunks (threaded scheduler, in process) --------------------------------


def test_density_lazy_from_zarr_and_overwrite(scene):
    zarr = pytest.importorskip("zarr")
    pytest.importorskip("dask")
    tmp, image, _ = scene
    store = zarr.create_array(tmp / "scene.zarr", shape=image.shape, chunks=(16, 32, 3), dtype="u1")
    store[:] = image
    result = invoke("density", "scene.zarr", "-m", "jones-rehg-skin", cwd=tmp)
    assert result.exit_code == 1 and "read it lazily with --chunks auto" in result.output
    args = ["density", "scene.zarr", "-m", "jones-rehg-skin", "--log", "--chunks", "25,40"]
    result = invoke(*args, "-o", "out", "--json", cwd=tmp)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["results"][0]["outputs"] == ["out/scene.logdensity.zarr"]
    got = zarr.open_array(tmp / "out/scene.logdensity.zarr", mode="r")
    assert got.dtype == np.float32 and got.chunks == (25, 40)
    want = pixgmm.log_density(image, pixgmm.models.jones_rehg_skin(), channels="RGB")
    np.testing.assert_allclose(got[:], want.astype(np.float32), rtol=1e-6)

    result = invoke(*args, "-o", "out", cwd=tmp)  # a complete store is kept, reported as skipped
    assert result.exit_code == 0 and "kept existing out/scene.logdensity.zarr" in result.output
    result = invoke(*args, "-o", "out", "--overwrite", "--quiet", cwd=tmp)
    assert result.exit_code == 0

    # a video is refused in lazy mode, the other inputs still processed
    (tmp / "clip.mp4").write_bytes(b"")
    result = invoke(
        "skin", "clip.mp4", "photos/scene.png", "--chunks", "auto", "-o", "o2", "--json", cwd=tmp
    )
    assert result.exit_code == 1
    statuses = [r["status"] for r in json.loads(result.stdout)["results"]]
    assert statuses == ["failed", "ok"]
    mask = zarr.open_array(tmp / "o2/scene.mask.zarr", mode="r")[:]
    np.testing.assert_array_equal(mask == 255, pixgmm.SkinDetector().mask(image))


def test_fit_target_names():
    from pixgmm.cli.fit import _target

    assert _target("m.json", 1, many=False) == Path("m.json")
    assert _target("m.json", 1, many=True) == Path("m.1.json")
    assert _target("out/{label}-skin.json", "a", many=True) == Path("out/a-skin.json")


def test_skin_on_a_running_scheduler_reads_tiff_blocks_in_the_tasks(scene):
    # --scheduler ADDRESS: an in-process cluster (threads) keeps this test at about a second
    distributed = pytest.importorskip("distributed")
    zarr = pytest.importorskip("zarr")
    tmp, image, _ = scene
    tifffile.imwrite(tmp / "tiled.tif", image, tile=(16, 16))
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    ) as cluster:
        result = invoke(
            "skin",
            "tiled.tif",
            "--scheduler",
            cluster.scheduler_address,
            "--chunks",
            "32",
            "--save",
            "probability,heatmap",
            "-o",
            "out",
            cwd=tmp,
        )
    assert result.exit_code == 0, result.output
    prob = zarr.open_array(tmp / "out/tiled.probability.zarr", mode="r")
    assert prob.chunks == (32, 32)
    np.testing.assert_allclose(
        prob[:], pixgmm.SkinDetector().probability(image), rtol=2e-6, atol=1e-7
    )
    heat = zarr.open_array(tmp / "out/tiled.heatmap.zarr", mode="r")
    assert heat.shape == (*image.shape[:2], 3) and heat.dtype == np.uint8


def test_unsupported_and_unwritable_targets_fail_alone(scene):
    tmp, image, _ = scene
    (tmp / "notes.txt").write_text("hello")
    (tmp / "out").mkdir()
    (tmp / "out" / "scene.mask.png").mkdir()  # a folder where the mask should go
    result = invoke(
        "skin",
        "notes.txt",
        "photos/scene.png",
        "--save",
        "mask",
        "-o",
        "out",
        "--overwrite",
        "--json",
        cwd=tmp,
    )
    assert result.exit_code == 1
    first, second = json.loads(result.stdout)["results"]
    assert "unsupported file type '.txt'" in first["error"]
    assert second["status"] == "failed"
    assert second["error"] == "cannot write out/scene.mask.png: Is a directory"
    assert "scene.png: cannot write out/scene.mask.png" in result.stderr
    assert sorted(p.name for p in (tmp / "out").iterdir()) == ["scene.mask.png"]


def test_demo_writes_four_outputs_once(tmp_path):
    result = invoke("demo", "--out", "demo", "--json", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    outputs = json.loads(result.stdout)["results"][0]["outputs"]
    assert [Path(o).name for o in outputs] == [
        "astronaut.mask.png",
        "astronaut.probability.tiff",
        "astronaut.heatmap.png",
        "astronaut.overlay.png",
    ]
    prob = tifffile.imread(tmp_path / "demo" / "astronaut.probability.tiff")
    assert prob.shape == (512, 512) and 0.0 <= prob.min() and prob.max() <= 1.0
    # a second run keeps the four outputs, reports them as skipped and succeeds
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "demo").iterdir()}
    result = invoke("demo", "--out", "demo", "--json", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["ok"], summary["skipped"], summary["failed"]) == (0, 1, 0)
    assert [Path(o).name for o in summary["results"][0]["skipped"]] == [
        Path(o).name for o in outputs
    ]
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "demo").iterdir()} == before


def test_fit_needs_no_scikit_learn(tmp_path, monkeypatch):
    # pixgmm's own EM and k-means initialisation: scikit-learn is not imported at all
    rows = [[10 + i % 7, 20 + i % 5, 30 + i % 3, 1 + i % 2] for i in range(200)]
    np.savetxt(tmp_path / "px.txt", rows, fmt="%d")
    for name in ("sklearn", "sklearn.mixture", "sklearn.cluster"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails, as without the extra
    result = invoke(
        "fit", "--pixels", "px.txt", "--columns", "RGB", "-k", "2", "--json", "-o", "m.json",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.glob("m*.json")) == ["m.1.json", "m.2.json"]


@pytest.mark.parametrize(
    ("option", "missing"), [("--chunks=64", "dask"), ("--workers=1", "distributed")]
)
def test_dask_options_without_the_extra_name_it(tmp_path, monkeypatch, option, missing):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == missing else real(name, *a)
    )
    result = CliRunner().invoke(main, ["skin", "x.jpg", option, "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert f"need {missing}" in result.output and 'pip install "pixgmm[dask]"' in result.output
    assert not list(tmp_path.iterdir())
