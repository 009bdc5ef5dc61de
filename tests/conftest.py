"""Shared fixtures: the project's shared data directory and seeded random generators."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

# tests/reference.py is imported as ``reference`` by the tests in the subfolders too
sys.path.insert(0, str(Path(__file__).resolve().parent))

#: The repository's sibling ``shared/data`` directory (absent in a bare clone).
SHARED_DATA = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def shared_data():
    """Path of ``../shared/data``; skips the test when the directory is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data directory {SHARED_DATA} is absent (it sits beside the repo)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def jones_rehg(shared_data):
    """The Jones & Rehg (1999) skin and non-skin mixtures as ``(skin, nonskin)`` Mixtures (RGB)."""
    import pixgmm

    path = shared_data / "jones_rehg_1999.json"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    data = json.loads(path.read_text(encoding="utf-8"))
    order = data.get("color_order", "RGB")

    def build(part):
        p = data[part]
        return pixgmm.Mixture(p["weights"], p["means"], p["variances"], "diag", channels=order)

    return build("skin"), build("nonskin")


@pytest.fixture
def rng():
    """A freshly seeded generator, so every test sees the same numbers on every run."""
    return np.random.default_rng(20240601)


@pytest.fixture
def rng_factory():
    """``rng_factory(seed)`` -> a seeded generator, for tests that need several streams."""
    return np.random.default_rng
