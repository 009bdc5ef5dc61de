"""The contenders of ``bench_peers.py``: how each tool trains and classifies, file in, file out.

Every step is one :class:`Run`: a command started as a new process (timed from its start to
its exit), the environment it gets, the folder it writes into (emptied before each run) and
the maps it leaves there. Each tool gets its best honest configuration on the machine:

GRASS GIS (``grass``, Debian ``grass-core``)
    A location made from the scene's CRS (untimed set-up). Train: the 10 bands and the label
    raster brought in, ``g.region raster=`` (the region is the raster's), ``i.group``,
    ``i.gensig``. Classify: the bands brought in, ``g.region``, ``i.group``, ``i.maxlik``
    with ``reject=``, ``r.out.gdal`` of the labels and of the reject map with pixgmm's
    creation options plus ``NUM_THREADS=ALL_CPUS``. Two ways of bringing the GeoTIFF in are
    timed, ``r.external`` (a link, read through GDAL) and ``r.in.gdal`` (a copy in GRASS's
    format); the faster is kept (by default only ``r.external``, the faster in the baseline
    run: see :data:`GRASS_WAYS`). ``i.gensig`` and ``i.maxlik`` have no threads option (one
    core); GDAL decodes with ``GDAL_NUM_THREADS=ALL_CPUS``.
Orfeo ToolBox (``otbcli_*``, Debian ``otb-bin``)
    Train: ``TrainImagesClassifier -classifier bayes`` (OpenCV's normal Bayes classifier:
    one full-covariance Gaussian per class, equal priors) on the training polygons, every
    pixel of every polygon (``-sample.mt -1 -sample.mv -1 -sample.bm 0 -sample.vtr 0``);
    OTB 8 takes vector training data only (``-io.vd``), no label raster. Classify:
    ``ImageClassifier`` with ``-ram`` and GDAL creation options in the extended file name.
    OTB 8.1's bayes model has no confidence map (``-confmap`` is refused with a warning), so
    it is not asked for. Threads: ``ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS`` = every core.
pixgmm
    The API (``_peers_tasks.py``: ``fit_classes_em`` from the label raster; the README's
    rioxarray recipe, NumPy- and Dask-backed) and the command line (``pixgmm classify``;
    ``pixgmm fit IMAGE --training`` where it exists), as shipped: numba's threads (every
    core by default) and GDAL's defaults, nothing set for it.
The I/O floor
    ``_peers_tasks.py floor``: read the scene block by block, write a uint8 and a float32
    GeoTIFF with pixgmm's creation options, with GDAL's defaults and with every thread.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
TASKS = HERE / "_peers_tasks.py"
CORES = os.cpu_count() or 1
OTB_RAM_MB = 2048
CLASS_VALUES = (1, 2, 3, 4, 5, 6)

INSTALL = {
    "grass": "apt-get install grass-core   (Debian/Ubuntu; GRASS GIS 8)",
    "otb": "apt-get install otb-bin   (Debian/Ubuntu; Orfeo ToolBox 8)",
}
CONTENDERS = ("floor", "grass", "otb", "pixgmm-api", "pixgmm-dask", "pixgmm-cli")


@dataclass
class Run:
    """One way of doing one step: a command, its environment, its outputs."""

    contender: str
    variant: str
    step: str  # "train", "classify-crop" or "classify-full"
    argv: list
    out_dir: Path
    env: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)  # map name -> path
    scripts: dict = field(default_factory=dict)  # script file name -> its text
    notes: str = ""

    @property
    def key(self):
        return f"{self.contender}/{self.variant}" if self.variant else self.contender

    def command(self):
        env = " ".join(f"{k}={shlex.quote(str(v))}" for k, v in self.env.items())
        return (env + " " if env else "") + shlex.join(str(a) for a in self.argv)


def available():
    """``{contender: None or the reason it is skipped}``."""
    out = {c: None for c in CONTENDERS}
    if shutil.which("grass") is None:
        out["grass"] = f"`grass` not found; install it with: {INSTALL['grass']}"
    otb = [shutil.which(f"otbcli_{a}") for a in ("TrainImagesClassifier", "ImageClassifier")]
    if None in otb:
        out["otb"] = f"`otbcli_ImageClassifier` not found; install it with: {INSTALL['otb']}"
    if importlib.util.find_spec("pixgmm") is None:
        for c in ("pixgmm-api", "pixgmm-dask", "pixgmm-cli"):
            out[c] = 'pixgmm is not importable; pip install -e ".[all]"'
    return out


def _first_line(argv, pattern=None):
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    text = proc.stdout + proc.stderr
    for line in text.splitlines():
        if pattern is None or re.search(pattern, line):
            return line.strip()
    return "unknown"


def versions(which):
    """Tool versions, by contender (only for those available)."""
    out = {}
    if which.get("grass") is None:
        out["grass"] = _first_line(["grass", "--version"], r"GRASS GIS \d")
    if which.get("otb") is None:
        line = _first_line(["otbcli_ImageClassifier", "-help"], r"version")
        out["otb"] = "Orfeo ToolBox " + line.rsplit("version", 1)[-1].strip()
    if shutil.which("gdalinfo"):
        out["gdal (command line, used by GRASS and OTB)"] = _first_line(["gdalinfo", "--version"])
    return out


def pixgmm_cli():
    """``python -m pixgmm`` where the package runs as a module, else ``python -m pixgmm.cli``."""
    if importlib.util.find_spec("pixgmm.__main__") is not None:
        return [sys.executable, "-m", "pixgmm"]
    return [sys.executable, "-m", "pixgmm.cli"]


def gdal_options(options, threads=True):
    """pixgmm's creation options as GDAL ``KEY=VALUE`` strings (+ ``NUM_THREADS``)."""
    out = []
    for k, v in options.items():
        v = "YES" if v is True else "NO" if v is False else v
        out.append(f"{k.upper()}={str(v).upper()}")
    if threads:
        out.append("NUM_THREADS=ALL_CPUS")
    return out


# -- GRASS -----------------------------------------------------------------------------------

GRASS_ENV = {"GDAL_NUM_THREADS": "ALL_CPUS"}
#: Ways of bringing the GeoTIFF into GRASS. ``r.in.gdal`` (a copy in GRASS's own format) was
#: slower than ``r.external`` in every run of the baseline (train 145-224 s against 85-152 s,
#: full-tile classify 71-156 s against 42-74 s; benchmarks/runs/peers_results-2026-12-07-run1.md),
#: so only ``r.external`` runs by default; ``--grass-ways r.external,r.in.gdal`` times both.
GRASS_WAYS = ("r.external", "r.in.gdal")


def grass_setup(work, scene):
    """An untimed GRASS database: a location in the scene's CRS, mapsets for each size."""
    db = Path(work) / "grassdb"
    shutil.rmtree(db, ignore_errors=True)
    db.mkdir(parents=True)
    loc = db / "peers"
    subprocess.run(["grass", "-c", str(scene), "-e", str(loc)], check=True, capture_output=True)
    for mapset in ("crop", "full"):
        subprocess.run(["grass", "-c", "-e", str(loc / mapset)], check=True, capture_output=True)
    return loc


def _grass_bring(way, image, name):
    return f"{way} input={image} output={name} --overwrite --quiet"


def grass_runs(loc, work, paths, options, ways=("r.external",)):
    """GRASS's train run and classify runs, for each way of bringing the GeoTIFF in."""
    runs = []
    bands = ",".join(f"band.{i}" for i in range(1, 11))
    for way in ways:
        tag = way.replace(".", "")
        out = Path(work) / "out" / f"grass-{tag}-train"
        script = "\n".join([
            "set -e",
            _grass_bring(way, paths["scene"], "band"),
            _grass_bring(way, paths["training_tif"], "training"),
            "g.region raster=band.1",
            f"i.group group=scene subgroup=scene input={bands} --quiet",
            "i.gensig trainingmap=training group=scene subgroup=scene signaturefile=sig "
            "--overwrite --quiet",
            f"cp -r {loc}/PERMANENT/signatures/sig/sig {out}/",
        ]) + "\n"  # fmt: skip
        runs.append(_grass_run(loc / "PERMANENT", way, "train", script, out, work,
                               {"signature": out / "sig" / "sig"}))  # fmt: skip
        for size in ("crop", "full"):
            image = paths["crop"] if size == "crop" else paths["scene"]
            out = Path(work) / "out" / f"grass-{tag}-{size}"
            co = ",".join(gdal_options(options))
            script = "\n".join([
                "set -e",
                _grass_bring(way, image, "band"),
                "g.region raster=band.1",
                f"i.group group=scene subgroup=scene input={bands} --quiet",
                "i.maxlik group=scene subgroup=scene signaturefile=sig@PERMANENT "
                "output=labels reject=reject --overwrite --quiet",
                f"r.out.gdal input=labels output={out}/labels.tif format=GTiff type=Byte "
                f"nodata=255 createopt={co} --overwrite --quiet",
                f"r.out.gdal input=reject output={out}/reject.tif format=GTiff type=Byte "
                f"nodata=255 createopt={co} --overwrite --quiet",
            ]) + "\n"  # fmt: skip
            outputs = {"labels": out / "labels.tif", "reject": out / "reject.tif"}
            runs.append(_grass_run(loc / size, way, f"classify-{size}", script, out, work,
                                   outputs))  # fmt: skip
    return runs


def _grass_run(mapset, way, step, script, out, work, outputs):
    path = Path(work) / "scripts" / f"grass-{way.replace('.', '')}-{step}.sh"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(script)
    return Run("grass", way, step, ["grass", str(mapset), "--exec", "bash", str(path)], out,
               env=dict(GRASS_ENV), outputs=outputs, scripts={path.name: script})  # fmt: skip


def read_grass_signature(path):
    """``{class index 1..: (n, mean (D,), covariance (D, D))}`` from an ``i.gensig`` file."""
    import numpy as np

    lines = [ln.strip() for ln in Path(path).read_text().splitlines()]
    out, i = {}, 0
    while i < len(lines) and lines[i] != "#":
        i += 1
    i += 3  # "#", the band names, "#"
    k = 1
    while i < len(lines) and lines[i]:
        n = int(float(lines[i]))
        mean = np.array(lines[i + 1].split(), float)
        d = mean.size
        cov = np.zeros((d, d))
        for r in range(d):
            row = np.array(lines[i + 2 + r].split(), float)
            cov[r, : r + 1] = row
            cov[: r + 1, r] = row
        out[k] = (n, mean, cov)
        k += 1
        i += 2 + d
        while i < len(lines) and lines[i] != "#":  # class title/colour lines, if any
            i += 1
        i += 1
    return out


# -- Orfeo ToolBox ---------------------------------------------------------------------------

OTB_ENV = {"ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS": str(CORES), "GDAL_NUM_THREADS": "ALL_CPUS",
           "OTB_LOGGER_LEVEL": "WARNING"}  # fmt: skip


def otb_runs(work, paths, options):
    out = Path(work) / "out" / "otb-train"
    model = out / "model.yml"
    runs = [
        Run("otb", "", "train", [
            "otbcli_TrainImagesClassifier", "-io.il", paths["scene"], "-io.vd",
            paths["training_gpkg"], "-sample.vfn", "class", "-classifier", "bayes",
            "-sample.mt", "-1", "-sample.mv", "-1", "-sample.bm", "0", "-sample.vtr", "0",
            "-ram", str(OTB_RAM_MB), "-rand", "18", "-io.out", model,
        ], out, env=dict(OTB_ENV), outputs={"model": model}),
    ]  # fmt: skip
    ext = "?" + "".join(f"&gdal:co:{o}" for o in gdal_options(options))
    for size in ("crop", "full"):
        image = paths["crop"] if size == "crop" else paths["scene"]
        out = Path(work) / "out" / f"otb-{size}"
        runs.append(Run("otb", "", f"classify-{size}", [
            "otbcli_ImageClassifier", "-in", image, "-model", model,
            "-out", f"{out}/labels.tif{ext}", "uint8", "-ram", str(OTB_RAM_MB),
        ], out, env=dict(OTB_ENV), outputs={"labels": out / "labels.tif"}))  # fmt: skip
    return runs


def read_otb_counts(path):
    """Training pixels per class in an OTB bayes model (OpenCV's ``count`` matrices)."""
    text = Path(path).read_text()
    m = re.search(r"cls_labels:.*?data: \[([^\]]*)\]", text, re.S)
    section = re.split(r"^\s*count:", text, maxsplit=1, flags=re.M)[1]
    section = re.split(r"^\s*sum:", section, maxsplit=1, flags=re.M)[0]
    counts = [int(row.split(",")[0]) for row in re.findall(r"data: \[([^\]]*)\]", section)]
    labels = [int(v) for v in m.group(1).split(",")]
    return dict(zip(labels, counts))


# -- pixgmm and the floor --------------------------------------------------------------------


def _task(*args):
    return [sys.executable, str(TASKS), *[str(a) for a in args]]


def pixgmm_runs(work, paths, which, cli_models):
    """pixgmm's API, Dask and command-line runs (train and classify) that ``which`` allows."""
    w = Path(work) / "out"
    models = w / "pixgmm-api-train"
    runs = [Run("pixgmm-api", "", "train",
                _task("api-train", paths["scene"], paths["training_tif"], models), models,
                outputs={"models": models})]  # fmt: skip
    cli = pixgmm_cli()
    runs.append(Run("pixgmm-cli", "", "train", [
        *cli, "fit", paths["scene"], "--training", paths["training_gpkg"], "--field", "class",
        "-k", "1", "--covariance", "full", "--scale", "none", "-o",
        w / "pixgmm-cli-train" / "{label}.json", "--overwrite", "--quiet",
    ], w / "pixgmm-cli-train", outputs={"models": w / "pixgmm-cli-train"}))  # fmt: skip
    for size in ("crop", "full"):
        image = paths["crop"] if size == "crop" else paths["scene"]
        for name, chunks in (("pixgmm-api", "none"), ("pixgmm-dask", "2048")):
            out = w / f"{name}-{size}"
            runs.append(Run(name, "", f"classify-{size}",
                            _task("api-classify", image, models, out, chunks, "0.999"), out,
                            outputs={"labels": out / "labels.tif",
                                     "confidence": out / "confidence.tif"}))  # fmt: skip
        out = w / f"pixgmm-cli-{size}"
        margs = [a for c in CLASS_VALUES for a in ("-m", f"{c}={cli_models}/{c}.json")]
        runs.append(Run("pixgmm-cli", "", f"classify-{size}", [
            *cli, "classify", image, *margs, "--scale", "none", "--chi2-level", "0.999",
            "--save", "labels,confidence", "-o", out, "--overwrite", "--quiet",
        ], out, outputs={"labels": out / f"{Path(image).stem}.labels.tif",
                         "confidence": out / f"{Path(image).stem}.confidence.tif"}))  # fmt: skip
    return [r for r in runs if which.get(r.contender) is None]


def floor_runs(work, paths):
    runs = []
    for size in ("crop", "full"):
        image = paths["crop"] if size == "crop" else paths["scene"]
        for threads in ("default", "all"):
            out = Path(work) / "out" / f"floor-{threads}-{size}"
            variant = "GDAL defaults" if threads == "default" else "every thread"
            runs.append(Run("floor", variant, f"classify-{size}",
                            _task("floor", image, out, threads), out,
                            outputs={"u8": out / "floor.u8.tif"}))  # fmt: skip
    return runs
