"""``pixgmm fit`` on every pixel with pixgmm's own EM (issue 10), and ``classify --prior counts`` (11).

The command runs as a real program (a subprocess) on PNG and TIFF files and masks
written by Pillow and tifffile. Its ``--json`` diagnostics and model files are
compared with the Python API's own fit of the same pixels with the same
parameters: the EM on a colour histogram is the EM on every pixel, so they agree
exactly. Images are streamed one at a time into per-class colour histograms; a
test measures that memory does not grow with the number of images.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import pixgmm
from pixgmm.fitting import fit_classes_em, fit_em

Image = pytest.importorskip("PIL.Image")
tifffile = pytest.importorskip("tifffile")
pytest.importorskip("click")
pytest.importorskip("tqdm")


def run_cli(*args, cwd, check_rc=None):
    """Run ``pixgmm ARGS`` in ``cwd``; return the CompletedProcess (text)."""
    proc = subprocess.run(
        [sys.executable, "-m", "pixgmm.cli", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check_rc is not None:
        assert proc.returncode == check_rc, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def save_png(path, array):
    Image.fromarray(array).save(path)


def read_rgb(path):
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def read_mask(path):
    with Image.open(path) as im:
        return np.asarray(im)


def three_colour_photo(rng, shift):
    """A 60 x 80 photo: background (mask 0), three colour clusters under mask 255, a strip of 7."""
    image = rng.normal((40, 90, 160), 10, size=(60, 80, 3))
    mask = np.zeros((60, 80), np.uint8)
    for i, colour in enumerate([(210, 150, 120), (120, 60, 40), (230, 200, 180)]):
        rows = slice(5 + 15 * i, 18 + 15 * i)
        cols = slice(20, 56 + shift)
        image[rows, cols] = rng.normal(colour, 6, size=image[rows, cols].shape)
        mask[rows, cols] = 255
    mask[55:, :10] = 7
    return np.clip(np.round(image), 0, 255).astype(np.uint8), mask


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """Three PNG photos and their masks, written by Pillow."""
    tmp = tmp_path_factory.mktemp("scenes")
    (tmp / "photos").mkdir()
    (tmp / "masks").mkdir()
    rng = np.random.default_rng(11)
    for i in range(3):
        image, mask = three_colour_photo(rng, 2 * i)
        save_png(tmp / "photos" / f"p{i}.png", image)
        save_png(tmp / "masks" / f"p{i}.png", mask)
    images = [read_rgb(tmp / "photos" / f"p{i}.png") for i in range(3)]
    masks = [read_mask(tmp / "masks" / f"p{i}.png") for i in range(3)]
    return tmp, images, masks


def test_json_and_model_equal_the_api_fit_and_a_range_keeps_the_lowest_bic(scenes, tmp_path):
    tmp, images, masks = scenes
    proc = run_cli(
        "fit", tmp / "photos", "--masks", tmp / "masks", "-k", "1:5", "-o", "fg.json", "--json",
        cwd=tmp_path, check_rc=0,
    )  # fmt: skip
    summary = json.loads(proc.stdout)
    assert summary["images"] == 3 and summary["components"] == [1, 2, 3, 4, 5]
    assert summary["reg_covar"] == 1.0 and summary["criterion"] == "bic"
    (entry,) = summary["models"]

    # the API's own fit of the same pixels, with the same parameters
    labels = [m != 0 for m in masks]
    api = fit_classes_em(images, labels, range(1, 6), classes=[True], channels="RGB")[True]
    n_fg = int(sum(np.count_nonzero(m) for m in masks))
    assert entry["pixels"] == n_fg and entry["n_samples"] == api.n_samples == n_fg
    assert entry["n_nan"] == 0 and entry["compression"] == api.compression == "histogram"
    for key in ("converged", "n_iter", "n_points", "log_likelihood", "lower_bound", "bic", "aic"):
        assert entry[key] == getattr(api, key), key
    assert entry["n_components"] == api.n_components
    assert entry["converged"] is True and entry["warnings"] == []
    model = pixgmm.Mixture.load(tmp_path / "fg.json")
    assert model == api.mixture  # the same parameters, bit for bit

    # the model file records the class's pixel count and the diagnostics
    training = model.training
    assert training["n_pixels"] == n_fg and training["bic"] == api.bic
    assert training["candidates"] == entry["candidates"]

    # the range: every K fitted separately, the lowest BIC kept
    pixels = np.concatenate([im[m != 0] for im, m in zip(images, masks)])
    separate = [fit_em(pixels, k, channels="RGB") for k in range(1, 6)]
    assert [c["requested"] for c in entry["candidates"]] == [1, 2, 3, 4, 5]
    assert [c["bic"] for c in entry["candidates"]] == [r.bic for r in separate]
    assert [c["n_iter"] for c in entry["candidates"]] == [r.n_iter for r in separate]
    best = int(np.argmin([r.bic for r in separate]))
    assert entry["n_components"] == separate[best].n_components
    assert model == separate[best].mixture
    assert 1 < entry["n_components"] < 5  # three colour clusters: neither end of the range

    # a rerun keeps the model and reads no image: a corrupt one added is not even opened
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    for i, mask in enumerate(masks):
        save_png(tmp_path / "more" / f"p{i}.mask.png", mask)
    save_png(tmp_path / "more" / "broken.mask.png", masks[0])
    proc = run_cli(
        "fit", tmp / "photos", "more/broken.png", "--masks", "more", "-k", "1:5",
        "-o", "fg.json", "--json", cwd=tmp_path, check_rc=0,
    )  # fmt: skip
    assert json.loads(proc.stdout)["models"][0]["status"] == "skipped"


def test_table_input_with_a_range_and_aic(tmp_path):
    rng = np.random.default_rng(2)
    a = np.vstack([rng.normal(m, 4, size=(150, 3)) for m in ((40, 60, 200), (90, 160, 30))])
    b = rng.normal((200, 120, 90), 8, size=(120, 3))
    rows = np.vstack([np.c_[np.round(a), np.full(300, 1)], np.c_[np.round(b), np.full(120, 2)]])
    rows[3, 0] = np.nan  # a row of class 1 is left out and counted
    np.savetxt(tmp_path / "px.txt", rows, fmt="%g")
    proc = run_cli(
        "fit", "--pixels", "px.txt", "--columns", "BGR", "-k", "1:4", "--criterion", "aic",
        "--n-init", "2", "--init", "k-means++", "--random-state", "5", "-o", "t.json", "--json",
        cwd=tmp_path, check_rc=0,
    )  # fmt: skip
    summary = json.loads(proc.stdout)
    models = {m["class"]: m for m in summary["models"]}
    assert summary["scale"] == "table values as written" and summary["init"] == "k-means++"
    for label in (1, 2):
        keep = (rows[:, 3] == label) & ~np.isnan(rows[:, :3]).any(axis=1)
        api = fit_em(
            rows[keep, :3].astype(np.uint8), range(1, 5), criterion="aic", n_init=2, init="k-means++",
            random_state=5, channels="BGR",
        )  # fmt: skip
        entry = models[label]
        assert entry["pixels"] == keep.sum() and entry["n_nan"] == entry["dropped_nan"]
        assert entry["aic"] == api.aic and entry["n_components"] == api.n_components
        assert [c["aic"] for c in entry["candidates"]] == [r.aic for r in api.candidates]
        assert pixgmm.Mixture.load(tmp_path / f"t.{label}.json") == api.mixture
    assert models[1]["n_nan"] == 1 and models[2]["n_nan"] == 0
    assert models[1]["n_components"] == 2  # two clusters, found by AIC


def test_16bit_and_float_images_are_fitted_as_pixels_with_nan_counted(scenes, tmp_path):
    from pixgmm.io.pixels import PixelRule

    _, images, masks = scenes
    wide = images[0].astype(np.uint16) * 257
    unit = images[1].astype(np.float32) / 255
    unit[20, 30:34] = np.nan  # four pixels under the mask
    tifffile.imwrite(tmp_path / "a16.tif", wide, photometric="rgb")
    tifffile.imwrite(tmp_path / "b32.tif", unit, photometric="rgb")
    save_png(tmp_path / "a16.mask.png", masks[0])
    save_png(tmp_path / "b32.mask.png", masks[1])
    proc = run_cli(
        "fit", "a16.tif", "b32.tif", "--masks", ".", "-k", "2", "-o", "f.json", "--json",
        cwd=tmp_path, check_rc=0,
    )  # fmt: skip
    summary = json.loads(proc.stdout)
    (entry,) = summary["models"]
    assert "16-bit pixels scaled" in summary["scale"] and summary["reg_covar"] == 1e-6
    rule = PixelRule(3)
    pixels = np.concatenate(
        [rule(wide)[0][masks[0] != 0], rule(unit)[0][masks[1] != 0]]
    )  # the CLI's pixel rule, then the API's fit
    api = fit_em(pixels, 2, channels="RGB")
    n_mask = int(np.count_nonzero(masks[0]) + np.count_nonzero(masks[1]))
    assert entry["n_nan"] == api.n_nan == 4 and entry["pixels"] == n_mask - 4
    assert entry["compression"] == "none" and entry["bic"] == api.bic
    assert pixgmm.Mixture.load(tmp_path / "f.json") == api.mixture


MEMORY_DRIVER = textwrap.dedent(
    """
    import json, sys, tracemalloc
    import numpy as np
    from pixgmm.fitting import ClassHistograms
    from pixgmm.cli import main

    def run(args):
        try:
            main(args, standalone_mode=False)
        except SystemExit as exc:
            return exc.code
        return 0

    first, folder, masks = sys.argv[1:4]
    # imports and kernels, outside the measurement (--overwrite: a warm-up is never skipped)
    run(["fit", first, "--masks", masks, "-k", "2", "-o", "warm.json", "-q", "--overwrite"])
    shapes, counted = [], []
    add, fit_em = ClassHistograms.add, ClassHistograms.fit_em
    def counting_add(self, image, labels, **kw):
        shapes.append(list(np.shape(image)))
        return add(self, image, labels, **kw)
    def measured_fit_em(self, *args, **kw):
        counted.append(tracemalloc.get_traced_memory()[1])  # the peak while counting
        return fit_em(self, *args, **kw)
    ClassHistograms.add, ClassHistograms.fit_em = counting_add, measured_fit_em
    tracemalloc.start()
    code = run(["fit", folder, "--masks", masks, "-k", "2", "-o", "m.json", "-q", "--overwrite"])
    peak = tracemalloc.get_traced_memory()[1]
    print(json.dumps({"code": code, "peak": peak, "counting": counted[0], "shapes": shapes}))
    """
)


def test_memory_does_not_grow_with_the_number_of_images(tmp_path):
    # Counting holds one image and the class's colour histogram (fixed size); the EM then
    # works on the distinct colours, at most 256**3 whatever the number of images. The
    # images draw from 4096 colours, all present in each, so both stay the same from 4
    # images to 28; holding every image's pixels would add 24 images' worth.
    rng = np.random.default_rng(4)
    h, w = 500, 600
    (tmp_path / "masks").mkdir()
    for n in (4, 28):
        (tmp_path / f"set{n}").mkdir()
    for i in range(28):
        image = rng.integers(0, 16, size=(h, w, 3), dtype=np.uint8) * 17
        mask = np.zeros((h, w), np.uint8)
        mask[: h // 2] = 255
        save_png(tmp_path / "masks" / f"im{i:02d}.png", mask)
        save_png(tmp_path / "set28" / f"im{i:02d}.png", image)
        if i < 4:
            save_png(tmp_path / "set4" / f"im{i:02d}.png", image)
    (tmp_path / "driver.py").write_text(MEMORY_DRIVER)
    peaks = {}
    for n in (4, 28):
        proc = subprocess.run(
            [sys.executable, "driver.py", "set4/im00.png", f"set{n}", "masks"],
            cwd=tmp_path, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        assert out["code"] == 0, proc.stderr
        # one call per image, each with that image's pixels only
        assert out["shapes"] == [[h, w, 3]] * n
        peaks[n] = (out["counting"], out["peak"])
    image_bytes = h * w * 3
    held = 24 * image_bytes  # what holding the 24 extra images' pixels would add
    for phase, (few, many) in zip(("counting", "whole run"), zip(peaks[4], peaks[28])):
        assert many - few < image_bytes, (phase, peaks, image_bytes, held)


def test_progress_bars_show_the_images_and_the_log_likelihood(scenes, tmp_path):
    tmp, _, _ = scenes
    args = ["fit", tmp / "photos", "--masks", tmp / "masks", "-k", "2", "-o", "m.json", "--json"]
    proc = run_cli(*args, "--progress", cwd=tmp_path, check_rc=0)
    entry = json.loads(proc.stdout)["models"][0]
    assert re.search(r"counting: 100%.*3/3", proc.stderr), proc.stderr
    assert "class mask" in proc.stderr and "iter" in proc.stderr
    # the bar's last postfix is the final iteration's mean log-likelihood
    assert f"K=2 loglik={entry['lower_bound']:.5g}" in proc.stderr, proc.stderr
    # stderr is not a terminal here: no bars unless asked
    proc = run_cli(*args, "--overwrite", cwd=tmp_path, check_rc=0)
    assert "loglik" not in proc.stderr and "counting" not in proc.stderr


def run_on_a_terminal(*args, cwd):
    """Run ``pixgmm ARGS`` with stderr on a pseudo-terminal; return (returncode, stderr text)."""
    import fcntl
    import os
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # 120 columns
    with open(os.devnull, "wb") as devnull:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pixgmm.cli", *map(str, args)],
            cwd=cwd, stdout=devnull, stderr=slave,
        )  # fmt: skip
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # the terminal closed with the process
                break
            if not data:
                break
            chunks.append(data)
        returncode = proc.wait(timeout=300)
    os.close(master)
    return returncode, b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pseudo-terminals as on Linux")
def test_progress_bars_by_default_on_a_terminal_only_without_quiet(scenes, tmp_path):
    tmp, _, _ = scenes
    args = ["fit", tmp / "photos", "--masks", tmp / "masks", "-k", "2", "-o", "m.json"]
    code, err = run_on_a_terminal(*args, cwd=tmp_path)
    assert code == 0 and "counting" in err and "loglik=" in err, err
    for option in ("--quiet", "--no-progress"):
        code, err = run_on_a_terminal(*args, "--overwrite", option, cwd=tmp_path)
        assert code == 0 and "counting" not in err and "loglik" not in err, (option, err)


def test_a_fit_that_does_not_converge_is_reported(scenes, tmp_path):
    tmp, _, _ = scenes
    proc = run_cli(
        "fit", tmp / "photos", "--masks", tmp / "masks", "--per-class", "-k", "3",
        "--max-iter", "2", "--tol", "1e-9", "-o", "m.json", "--json", cwd=tmp_path, check_rc=0,
    )  # fmt: skip
    models = {m["class"]: m for m in json.loads(proc.stdout)["models"]}
    assert list(models) == [0, 7, 255]
    # the three clusters of class 255 are found by the initialisation: converged at once
    assert models[255]["converged"] is True and models[255]["warnings"] == []
    assert "class 255" not in proc.stderr
    for c in (0, 7):
        m = models[c]
        assert m["status"] == "ok" and m["converged"] is False and m["n_iter"] == 2
        assert "did not converge in --max-iter 2 iterations" in m["warnings"][0]
        assert f"class {c}: the EM did not converge" in proc.stderr
        assert pixgmm.Mixture.load(tmp_path / f"m.{c}.json").training["converged"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-k", "16:2"], "the range 16:2 goes down; give START <= STOP, e.g. 2:16"),
        (["-k", "0:4"], "the range 0:4 starts at 0; a mixture needs at least 1 component"),
        (["-k", "a:b"], "'a:b' is not a number such as 8 or a range START:STOP[:STEP]"),
        (["-k", "2:16:0"], "the step must be >= 1"),
        (["-k", "0"], "0 components: a mixture needs at least 1"),
        (["--tol", "nan"], "must be a finite number >= 0"),
        (["--reg-covar", "tiny"], "'tiny' is not a number"),
        (["--init", "kmedoids"], "'kmedoids' is not one of 'lloyd', 'kmeans', 'k-means++'"),
        (["--criterion", "dic"], "'dic' is not one of 'bic', 'aic'"),
        (["--class", "skin"], "'skin' is not a mask value"),
        (["--class", "9"], "class 9 is not in the masks; mask values present: 0, 7, 255"),
    ],
)
def test_bad_options_are_clear_usage_errors(scenes, tmp_path, args, message):
    tmp, _, _ = scenes
    proc = run_cli(
        "fit", tmp / "photos", "--masks", tmp / "masks", "-o", "m.json", *args, cwd=tmp_path
    )
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert message in " ".join(proc.stderr.split()), proc.stderr
    assert not list(tmp_path.glob("*.json"))


def test_classify_prior_counts_equals_the_api_with_count_priors(tmp_path):
    rng = np.random.default_rng(8)
    (tmp_path / "photos").mkdir()
    (tmp_path / "masks").mkdir()
    images, masks = [], []
    for i in range(2):  # overlapping colours, 9 background pixels for every foreground one
        image = rng.normal(115, 25, size=(60, 60, 3))
        mask = np.zeros((60, 60), np.uint8)
        mask[:18, :20] = 255
        image[mask > 0] = rng.normal(150, 25, size=(360, 3))
        image = np.clip(np.round(image), 0, 255).astype(np.uint8)
        save_png(tmp_path / "photos" / f"t{i}.png", image)
        save_png(tmp_path / "masks" / f"t{i}.png", mask)
        images.append(image)
        masks.append(mask)
    run_cli(
        "fit", "photos", "--masks", "masks", "--per-class", "-k", "1", "-o", "m.json",
        cwd=tmp_path, check_rc=0,
    )  # fmt: skip
    proc = run_cli(
        "classify", "photos/t0.png", "-m", "bg=m.0.json", "-m", "fg=m.255.json",
        "--prior", "counts", "--save", "labels", "-o", "out", "--json", cwd=tmp_path, check_rc=0,
    )  # fmt: skip
    got = np.array(["bg", "fg"])[read_mask(tmp_path / "out" / "t0.labels.png")]

    results = fit_classes_em(images, masks, 1, channels="RGB")  # {0: ..., 255: ...}
    api = pixgmm.Classifier({"bg": results[0], "fg": results[255]}, priors="counts")
    np.testing.assert_allclose(api.priors, [0.9, 0.1], rtol=1e-15)
    np.testing.assert_array_equal(got, api.predict(images[0], channels="RGB"))
    equal = pixgmm.Classifier({"bg": results[0], "fg": results[255]})
    assert np.mean(equal.predict(images[0], channels="RGB") != got) > 0.05  # the priors matter

    # a model file without a count (an older file, or a built-in model) is named
    pixgmm.Mixture.load(tmp_path / "m.0.json").with_training(None).save(tmp_path / "old.json")
    assert json.loads((tmp_path / "old.json").read_text())["version"] == 1
    for spec in ("old.json", "jones-rehg-skin"):
        proc = run_cli(
            "classify", "photos/t0.png", "-m", f"bg={spec}", "-m", "fg=m.255.json",
            "--prior", "counts", "-o", "out2", cwd=tmp_path,
        )  # fmt: skip
        assert proc.returncode == 2
        assert f"bg={spec} records no training-pixel count" in " ".join(proc.stderr.split())


def test_help_names_the_init_methods_and_the_memory_rule():
    from click.testing import CliRunner

    from pixgmm.cli import fit as fit_cli
    from pixgmm.cli import main
    from pixgmm.fitting import INIT_METHODS

    assert fit_cli.INIT_METHODS == INIT_METHODS  # the CLI's copy, kept so --help imports click only
    text = " ".join(CliRunner().invoke(main, ["fit", "--help"]).output.split())
    for method in INIT_METHODS:
        assert method in text
    assert "16-bit and float images" in text and "kept in memory" in text
    assert "--progress / --no-progress" in text and "--criterion [bic|aic]" in text
