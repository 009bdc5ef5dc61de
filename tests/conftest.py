"""Shared fixtures: package data, the optional shared data directory, seeded generators.

Everything the tests need ships with the package (the Jones & Rehg models are
``pixgmm.models``), except the UCI Skin Segmentation pixels, which are not
redistributed: the tests that need ``../shared/data/Skin_NonSkin.txt`` skip without it,
and the header and the closing summary of the run say so.
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

import numpy as np
import pytest

# tests/reference.py is imported as ``reference`` by the tests in the subfolders too
sys.path.insert(0, str(Path(__file__).resolve().parent))

#: The repository's sibling ``shared/data`` directory (absent in a bare clone).
SHARED_DATA = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data").resolve()
#: The one data file the tests use that the package does not ship.
UCI_FILE = SHARED_DATA / "Skin_NonSkin.txt"
UCI_MISSING = (
    f"UCI Skin Segmentation data {UCI_FILE} is absent (not redistributed with pixgmm; "
    "put Skin_NonSkin.txt there to run these tests)"
)

_skipped_for_data = []


def pytest_report_header(config):
    state = "found" if UCI_FILE.is_file() else "ABSENT: the UCI tests will be skipped"
    return f"pixgmm test data: {UCI_FILE} {state}"


def pytest_runtest_logreport(report):
    if report.skipped and isinstance(report.longrepr, tuple) and "UCI" in report.longrepr[2]:
        _skipped_for_data.append(report.nodeid)


def pytest_terminal_summary(terminalreporter):
    if _skipped_for_data:
        terminalreporter.write_sep("=", "skipped for missing data", yellow=True)
        terminalreporter.write_line(
            f"{len(_skipped_for_data)} test(s) skipped: {UCI_MISSING}", yellow=True
        )


@pytest.fixture(scope="session")
def shared_data():
    """Path of ``../shared/data``; skips the test when the directory is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data directory {SHARED_DATA} is absent (it sits beside the repo)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def uci_file():
    """Path of the UCI Skin Segmentation text file; skips, naming it, when it is absent."""
    if not UCI_FILE.is_file():
        pytest.skip(UCI_MISSING)
    return UCI_FILE


@pytest.fixture(scope="session")
def jones_rehg():
    """The Jones & Rehg (1999) skin and non-skin mixtures as ``(skin, nonskin)`` (RGB).

    From the package's own data (``pixgmm.models``), so the tests using them run everywhere.
    """
    import pixgmm.models

    return pixgmm.models.jones_rehg_skin(), pixgmm.models.jones_rehg_nonskin()


@pytest.fixture
def ran_engine(caplog):
    """``ran_engine(function, *args, **kw)`` -> ``(engine, result)``: call ``function`` and
    read the engine it ran from the DEBUG line every evaluation logs on the ``pixgmm`` logger.
    """

    def run(function, *args, **kwargs):
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="pixgmm"):
            result = function(*args, **kwargs)
        lines = [r.getMessage() for r in caplog.records if r.name == "pixgmm"]
        names = [m.group(1) for line in lines if (m := re.match(r"pixgmm: (\w+) engine ", line))]
        assert len(names) == 1, lines
        return names[0], result

    return run


@pytest.fixture
def rng():
    """A freshly seeded generator, so every test sees the same numbers on every run."""
    return np.random.default_rng(20240601)


@pytest.fixture
def rng_factory():
    """``rng_factory(seed)`` -> a seeded generator, for tests that need several streams."""
    return np.random.default_rng
