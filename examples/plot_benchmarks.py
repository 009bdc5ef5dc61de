"""
The benchmarks, drawn from their results files
==============================================

Every benchmark figure in pixgmm's documentation comes from a script in
``benchmarks/`` and the results file it writes, committed with the code. This
example reads those files as they are in the repository (Markdown tables and
the scripts' printed reports) and draws them; nothing is measured here, and
no number is written into this script. A file that is missing, or whose tables
cannot be read, is named in the output and left out.
"""

import re
import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

# the repository's examples/ folder: the working directory when the gallery is built
EXAMPLES = Path(__file__).parent if "__file__" in globals() else Path.cwd()
BENCHMARKS = EXAMPLES.resolve().parent / "benchmarks"
UNITS = {"ms": 1e-3, "s": 1.0, "min": 60.0}


def markdown_tables(path):
    """``[(title, header, rows)]``: every table of a Markdown file, titled by the line before it."""
    tables, title, lines = [], "", path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("|") and i + 1 < len(lines) and set(lines[i + 1]) <= set("|-: "):
            header = [cell.strip() for cell in line.strip("|").split("|")]
            rows, i = [], i + 2
            while i < len(lines) and lines[i].strip().startswith("|"):
                rows.append([cell.strip() for cell in lines[i].strip().strip("|").split("|")])
                i += 1
            tables.append((title, header, rows))
            continue
        if line:
            title = line
        i += 1
    return tables


def seconds(text):
    """A time as the results files write it (``25.0 ms``, ``8.54 s``, ``15.5 min``), in seconds."""
    match = re.match(r"\s*([\d,]*\.?\d+)\s*(ms|s|min)\b", text)
    if match is None:
        raise ValueError(f"not a time: {text!r}")
    return float(match.group(1).replace(",", "")) * UNITS[match.group(2)]


def short(method, width=64):
    """A row's method, its details dropped from the right until it fits.

    That a time was scaled or extrapolated from a part always stays.
    """
    text = re.sub(r"\s*\[[^\]]*\]|`|‡.*", "", method)
    groups = re.compile(r"\s*\((?:[^()]|\([^()]*\))*\)")
    while len(text) > width and groups.search(text):
        last = list(groups.finditer(text))[-1]
        text = text[: last.start()] + text[last.end() :]
    text = " ".join(text.split(";")[0].split())
    text = text if len(text) <= width else text[: width - 1] + "…"
    for word in ("scaled", "extrapolated"):
        if word in method and word not in text:
            text += f" ({word})"
    return text


def read(name, parse):
    """``parse(path)``, or None (and why) when the file is absent or not as expected."""
    path = BENCHMARKS / name
    if not path.is_file():
        print(f"{name}: not in this checkout, left out")
        return None
    try:
        return parse(path)
    except (ValueError, IndexError, KeyError) as error:
        print(f"{name}: could not be read ({error}), left out")
        return None


OTHERS = ("scikit-learn", "NumPy", "scipy", "floor")


def time_bars(ax, title, methods, times, xlabel="median time"):
    """Horizontal bars of times on a log axis, pixgmm's in colour, the others grey."""
    y = np.arange(len(methods))[::-1]
    colours = ["tab:gray" if m.strip("`").startswith(OTHERS) else "tab:blue" for m in methods]
    ax.barh(y, times, color=colours)
    ax.set_xscale("log")
    ax.set_yticks(y, [short(m) for m in methods], fontsize=8)
    for yi, t in zip(y, times):
        ax.text(t, yi, f" {t:.3g} s", va="center", fontsize=8)
    ax.set_xlim(min(times) / 2, max(times) * 20)
    ax.set_xlabel(f"{xlabel} (s, log scale)")
    ax.set_title(textwrap.fill(title, 90), fontsize=10)


# %%
# Evaluation: W1-W3 (``benchmarks/results.md``)
# ---------------------------------------------
# W1 is the float32 density of a 12 MP photo under the Jones & Rehg skin
# mixture, W2 the log-density of the same photo as float32 under K=16 full
# covariances, W3 a 4-band uint16 image under K=8 diagonal covariances. Every
# contender against pixgmm, medians on the machine the file names.


def core_results(path):
    text = path.read_text(encoding="utf-8")
    machine = re.search(r"^Machine: (.*?);", text, re.M)
    workloads = {}
    for title, header, rows in markdown_tables(path):
        match = re.match(r"\*\*(W\d)\*\*: (.*)", title)
        if match and header[:2] == ["Method", "Median time"]:
            workloads[match.group(1)] = (
                match.group(2),
                [row[0] for row in rows],
                [seconds(row[1]) for row in rows],
            )
    if not workloads:
        raise ValueError("no table of W1, W2, W3")
    return (machine.group(1) if machine else "machine not named"), workloads


core = read("results.md", core_results)
if core is not None:
    machine, workloads = core
    fig, axes = plt.subplots(
        len(workloads),
        1,
        figsize=(10, 1.2 + sum(0.45 * len(w[1]) + 0.8 for w in workloads.values())),
        layout="constrained",
        height_ratios=[len(w[1]) + 1 for w in workloads.values()],
    )
    for ax, (name, (what, methods, times)) in zip(np.atleast_1d(axes), workloads.items()):
        time_bars(ax, f"{name}: {what}", methods, times)
    fig.suptitle(f"benchmarks/results.md ({machine})", fontsize=10)

# %%
# Fitting: F1 and F2 (``benchmarks/fit_results.md``)
# ---------------------------------------------------
# F1 fits K=16 diagonal components to every pixel of the 12 MP photo, F2 runs
# EM iterations with full covariances on the photo as float32.


def fit_results(path):
    rows = [
        row
        for _title, header, table in markdown_tables(path)
        if header[:3] == ["workload", "contender", "time"]
        for row in table
    ]
    if not rows:
        raise ValueError("no table of F1-F4")
    return rows


fit_rows = read("fit_results.md", fit_results)
if fit_rows is not None:
    fig, axes = plt.subplots(1, 2, figsize=(12.5, 3.6), layout="constrained")
    f1 = [row for row in fit_rows if row[0] == "F1"]
    time_bars(axes[0], "F1: a whole fit (12 MP photo, K=16 diag)", [r[1] for r in f1],
              [seconds(r[2]) for r in f1], xlabel="time")  # fmt: skip
    f2 = [row for row in fit_rows if row[0] == "F2" and row[3] != "-"]
    time_bars(axes[1], "F2: one EM iteration (float32, K=16 full)", [r[1] for r in f2],
              [seconds(r[3]) for r in f2], xlabel="time per iteration")  # fmt: skip

# %%
# Classification: W4 (``benchmarks/classify_results.md``)
# -------------------------------------------------------
# Labels and confidence of a 5000 x 5000 x 10 uint16 image, six classes of four
# full-covariance components.


def classify_results(path):
    for _title, header, rows in markdown_tables(path):
        if header[:2] == ["Method", "Median time"]:
            return [row[0] for row in rows], [seconds(row[1]) for row in rows]
    raise ValueError("no table of W4")


w4 = read("classify_results.md", classify_results)
if w4 is not None:
    fig, ax = plt.subplots(figsize=(10, 2.4), layout="constrained")
    time_bars(ax, "W4: multispectral classification, labels and confidence", *w4)

# %%
# A gigapixel image out of core (``benchmarks/gigapixel_results.md``)
# -------------------------------------------------------------------
# A 32768 x 32768 RGB image (1.07 Gpixels) in a Zarr store, its density written
# to another store by Dask, against the same work on an 8192 x 8192 crop in
# memory. Each run's rates, in Mpixel/s, and the out-of-core peak memory.

PHASES = (
    "in-memory, one process, evaluation only",
    "in-memory, one process, Zarr read+write",
    "out-of-core, Zarr->Zarr",
    "out-of-core, read+evaluate, no write",
    "out-of-core, read only",
)


def gigapixel_results(path):
    runs = {}
    for section in re.split(r"^## ", path.read_text(encoding="utf-8"), flags=re.M)[1:]:
        name = section.splitlines()[0]
        rates = {}
        for phase in PHASES:
            match = re.search(re.escape(phase) + r"\s*:\s*([\d.]+) Mpixel/s", section)
            if match:
                rates[phase] = float(match.group(1))
        peak = re.search(r"peak memory, out-of-core process\s*:\s*(\d+) MB", section)
        if len(rates) == len(PHASES) and peak:
            runs[name] = (rates, int(peak.group(1)))
    if not runs:
        raise ValueError("no run with every phase")
    return runs


gigapixel = read("gigapixel_results.md", gigapixel_results)
if gigapixel is not None:
    fig, (ax, ax_mem) = plt.subplots(
        1, 2, figsize=(12, 3.8), layout="constrained", width_ratios=[3, 1]
    )
    width = 0.8 / len(gigapixel)
    x = np.arange(len(PHASES))
    for i, (name, (rates, _)) in enumerate(gigapixel.items()):
        ax.bar(x + i * width, [rates[p] for p in PHASES], width, label=name.split(":", 1)[-1])
    ax.set_xticks(x + width * (len(gigapixel) - 1) / 2,
                  [p.replace(", ", ",\n") for p in PHASES], fontsize=8)  # fmt: skip
    ax.set_ylabel("Mpixel/s")
    ax.legend(fontsize=7)
    ax.set_title("rates of each phase, by run", fontsize=10)
    ax_mem.bar(range(len(gigapixel)), [peak for _, peak in gigapixel.values()], color="tab:purple")
    ax_mem.set_xticks(range(len(gigapixel)), [n.split(":")[0] for n in gigapixel], fontsize=8)
    ax_mem.set_ylabel("MB")
    ax_mem.set_title("peak memory out of core\n(1.07 Gpixels)", fontsize=10)
