"""Shared fixtures: package data, the optional shared data directory, seeded generators.

Everything the tests need ships with the package (the Jones & Rehg models are
``pixgmm.models``), except the UCI Skin Segmentation pixels, which are not
redistributed: the tests that need ``../shared/data/Skin_NonSkin.txt`` skip without it,
and the header and the closing summary of the run say so.

The object-storage tests run against a real S3 server on 127.0.0.1 (moto's, started
once per session by :func:`s3_server`); each gets its own bucket and the AWS
environment pointing at it from :func:`s3`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from dataclasses import dataclass
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


# -- a real S3 server for the object-storage tests --------------------------------------


@dataclass(frozen=True)
class S3Server:
    """moto's S3 server on 127.0.0.1, with IAM checks on: its endpoint and one valid key."""

    endpoint: str
    key_id: str
    secret: str


@dataclass(frozen=True)
class Bucket:
    """An empty bucket of the test's own: ``name``, ``url`` (``s3://name``), an s3fs ``fs``."""

    name: str
    url: str
    fs: object
    server: S3Server


@pytest.fixture(scope="session")
def s3_server():
    """A real S3 server (moto's ``ThreadedMotoServer``, in this process, on 127.0.0.1).

    IAM is enforced: requests need the key of the user made here (whose policy
    allows everything), so wrong credentials are refused as by AWS. Skips,
    naming the packages, when moto's server or s3fs is not installed (they are
    in the ``test`` extra).
    """
    reason = "needs moto[server], s3fs and boto3 (pip install 'pixgmm[test]')"
    moto_server = pytest.importorskip("moto.server", reason=reason)
    pytest.importorskip("s3fs", reason=reason)
    boto3 = pytest.importorskip("boto3", reason=reason)
    import moto.settings

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    iam = boto3.client(
        "iam",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bootstrap",
        aws_secret_access_key="bootstrap",
    )
    iam.create_user(UserName="pixgmm")
    iam.put_user_policy(
        UserName="pixgmm",
        PolicyName="everything",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
            }
        ),
    )
    key = iam.create_access_key(UserName="pixgmm")["AccessKey"]
    before = moto.settings.INITIAL_NO_AUTH_ACTION_COUNT
    moto.settings.INITIAL_NO_AUTH_ACTION_COUNT = 0  # from now on every request is checked
    try:
        yield S3Server(endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    finally:
        moto.settings.INITIAL_NO_AUTH_ACTION_COUNT = before
        server.stop()


def _forget_s3_clients():
    """Drop cached s3fs filesystems, which keep the credentials they were made with."""
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture
def s3(s3_server, monkeypatch, tmp_path_factory):
    """A fresh bucket on :func:`s3_server`, with the standard AWS environment pointing at it.

    Only this test (and the processes it starts: command lines, Dask workers)
    sees the variables: ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
    ``AWS_DEFAULT_REGION`` and ``AWS_ENDPOINT_URL``; any other ``AWS_*`` setting of
    the machine (GDAL's ``AWS_S3_ENDPOINT`` included) is hidden from it.
    """
    import uuid

    import fsspec

    for var in [v for v in os.environ if v.startswith("AWS_")]:
        monkeypatch.delenv(var)
    home = tmp_path_factory.mktemp("aws")  # no ~/.aws configuration of the machine
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    _forget_s3_clients()
    name = f"pixgmm-{uuid.uuid4().hex[:12]}"
    fs = fsspec.filesystem("s3")
    fs.mkdir(name)
    try:
        yield Bucket(name, f"s3://{name}", fs, s3_server)
    finally:
        _forget_s3_clients()
