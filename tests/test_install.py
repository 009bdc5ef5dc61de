"""A read-only install used by another user (a Docker image run as a non-root user, a
shared HPC install): pixgmm must compute although numba cannot write its cache
beside the package nor in ``$HOME``.

Run for real, not with a mock: the package is copied into a folder made read-only
(``chmod -R a-w``) and run as an unprivileged user whose ``HOME`` is not writable.
When the tests run as root (CI does; root ignores file permissions) the commands
run as ``nobody`` through ``setpriv``; as any other user, they run as that user.
"""

from __future__ import annotations

import os
import shutil
import site
import stat
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import numpy as np
import pytest

import pixgmm

PACKAGE = Path(pixgmm.__file__).resolve().parent
TIMEOUT = 600  # seconds: a command compiles every kernel it uses (no cache yet)
#: Third-party modules the commands below import (the CLI's readers, writers, colour maps).
NEEDED = ("numpy", "numba", "click", "imageio", "PIL", "tifffile", "cmap", "matplotlib")

pytestmark = pytest.mark.skipif(os.name != "posix", reason="file modes and users are POSIX")


def _others_can_enter(path):
    """True when every folder from ``/`` down to ``path`` is searchable by other users."""
    path = Path(path).resolve()
    return all(p.stat().st_mode & stat.S_IXOTH for p in [path, *path.parents])


def _as_user():
    """The argv prefix that runs a command as an unprivileged user (skips when impossible)."""
    if os.geteuid() != 0:
        return []  # not root: chmod a-w binds this user already
    import pwd

    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("running as root and there is no user 'nobody' to run the commands as")
    setpriv = shutil.which("setpriv") or next(
        (p for p in ("/usr/bin/setpriv", "/bin/setpriv") if os.path.exists(p)), None
    )
    if setpriv is None:
        pytest.skip("running as root and setpriv (util-linux) is not installed to drop to nobody")
    return [setpriv, f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups"]


def _run(argv, env, cwd, timeout=TIMEOUT):
    return subprocess.run(
        argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def _python_for(user, base, env):
    """An interpreter of this Python version that ``user`` can start, or skip."""
    version = "{}.{}".format(*sys.version_info[:2])
    candidates = [
        sys.executable,
        os.path.realpath(sys.executable),
        getattr(sys, "_base_executable", None),
        shutil.which(f"python{version}"),
        f"/usr/bin/python{version}",
        f"/usr/local/bin/python{version}",
    ]
    seen, tried = set(), []
    for exe in candidates:
        if not exe or exe in seen or not os.path.exists(exe):
            continue
        seen.add(exe)
        probe = _run(
            [*user, exe, "-s", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            env,
            base,
            timeout=60,
        )
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return exe
        tried.append(f"{exe}: {(probe.stderr or probe.stdout).strip()[-200:]}")
    pytest.skip(f"no Python {version} that the unprivileged user can start ({'; '.join(tried)})")


def _site_dirs():
    dirs = [*site.getsitepackages(), sysconfig.get_paths()["purelib"]]
    return list(dict.fromkeys(d for d in dirs if os.path.isdir(d)))


def _norm(name):
    return name.lower().replace("-", "_").replace(".", "_")


def _copy_dependencies(target):
    """Copy what NEEDED loads from site-packages (modules, vendored libraries, metadata)."""
    import importlib.metadata

    sites = [Path(d).resolve() for d in _site_dirs()]
    code = (
        "import sys, importlib\n"
        f"for name in {NEEDED!r}:\n"
        "    importlib.import_module(name)\n"
        "import matplotlib.pyplot, PIL.Image, imageio.v3\n"
        "print('\\n'.join(sorted({m.__file__ for m in list(sys.modules.values())"
        " if getattr(m, '__file__', None)})))\n"
    )
    importlib.invalidate_caches()
    files = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT, check=True
    ).stdout.split()
    tops = set()
    for f in files:
        path = Path(f).resolve()
        for s in sites:
            if s in path.parents:
                tops.add(s / path.relative_to(s).parts[0])
    # their distributions' metadata and vendored libraries (numpy.libs, pillow.libs)
    dists = importlib.metadata.packages_distributions()
    names = {_norm(d) for top in tops for d in dists.get(top.name.split(".")[0], [top.name])}
    for s in sites:
        for p in s.iterdir():
            if p.name.endswith((".libs", ".dist-info")):
                if _norm(p.name.split("-")[0].removesuffix(".libs")) in names:
                    tops.add(p)
    for top in sorted(tops):
        dest = target / top.name
        if top.is_dir() and not dest.exists():
            shutil.copytree(top, dest, ignore=shutil.ignore_patterns("__pycache__", "tests"))
        elif top.is_file():
            shutil.copy2(top, dest)


@pytest.fixture(scope="module")
def install():
    """A read-only copy of pixgmm, an interpreter and an environment for the unprivileged user."""
    user = _as_user()
    base = Path(tempfile.mkdtemp(prefix="pixgmm-readonly-"))
    if not _others_can_enter(base.parent):
        shutil.rmtree(base)
        base = Path(tempfile.mkdtemp(prefix="pixgmm-readonly-", dir="/tmp"))
    try:
        base.chmod(0o755)
        if user and not _others_can_enter(base):
            pytest.skip(f"{base} cannot be entered by other users")
        site_dir = base / "site"
        shutil.copytree(PACKAGE, site_dir / "pixgmm", ignore=shutil.ignore_patterns("__pycache__"))
        home = base / "home"  # exists, not writable: ~/.cache/numba cannot be created
        home.mkdir()
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "PYTHONPATH": os.pathsep.join([str(site_dir), *_site_dirs()]),
        }
        python = _python_for(user, base, env)
        check = [*user, python, "-s", "-c", "import " + ", ".join(NEEDED)]
        if _run(check, env, base, timeout=120).returncode != 0:
            # the user cannot read this environment's packages (e.g. a venv under /root)
            deps = base / "deps"
            deps.mkdir()
            _copy_dependencies(deps)
            env["PYTHONPATH"] = os.pathsep.join([str(site_dir), str(deps)])
            result = _run(check, env, base, timeout=120)
            if result.returncode != 0:
                pytest.skip(f"the unprivileged user cannot import {NEEDED}: {result.stderr[-300:]}")
        subprocess.run(["chmod", "-R", "a-w", str(site_dir), str(home)], check=True)
        # the scenario is real: the user can write neither beside the package nor in HOME
        for folder in (site_dir / "pixgmm" / "_engine", home):
            probe = _run([*user, python, "-c", f"open({str(folder / 'x')!r}, 'w')"], env, base, 60)
            assert probe.returncode != 0 and "Permission denied" in probe.stderr, folder
        yield {"user": user, "python": python, "env": env, "base": base, "site": site_dir}
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(base)], check=False)
        shutil.rmtree(base, ignore_errors=True)


def _writable_dir(install, name):
    path = install["base"] / name
    path.mkdir()
    path.chmod(0o1777)
    return path


def _warnings(stderr):
    """pixgmm's own lines on stderr (matplotlib's complaint about HOME is its own)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    return [line for line in lines if "matplotlib" not in line.lower()]


DENSITY = (
    "import numpy as np, pixgmm\n"
    "model = pixgmm.Mixture([0.4, 0.6], [[200, 140, 120], [60, 90, 120]],\n"
    "                       [[300, 300, 300], [900, 600, 400]], 'diag')\n"
    "image = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)\n"
    "print(repr(float(pixgmm.density(image, model).sum())), pixgmm.__file__)\n"
)


def _expected_density():
    model = pixgmm.Mixture(
        [0.4, 0.6], [[200, 140, 120], [60, 90, 120]], [[300, 300, 300], [900, 600, 400]], "diag"
    )
    return float(pixgmm.density(np.arange(60, dtype=np.uint8).reshape(4, 5, 3), model).sum())


def test_read_only_install_computes_and_caches_in_a_private_folder(install, rng):
    """Library and command line as the unprivileged user; kernels cached in a private folder."""
    user, python, base = install["user"], install["python"], install["base"]
    env = {**install["env"], "TMPDIR": str(_writable_dir(install, "tmp"))}

    lib = _run([*user, python, "-s", "-c", DENSITY], env, base)
    assert lib.returncode == 0, lib.stderr
    value, where = lib.stdout.split()
    assert where.startswith(str(install["site"]))  # the read-only copy, not the source tree
    assert float(value) == pytest.approx(_expected_density(), rel=1e-12)
    assert len(_warnings(lib.stderr)) <= 1, lib.stderr
    # the kernels went to the per-user folder of the temporary directory (mode 0700)
    private = [p for p in Path(env["TMPDIR"]).iterdir() if p.name.startswith("pixgmm-numba-")]
    assert len(private) == 1 and stat.S_IMODE(private[0].stat().st_mode) == 0o700
    assert any(p.suffix == ".nbi" for p in private[0].rglob("*")), "no kernel was cached"

    from PIL import Image

    out = _writable_dir(install, "out")
    photo = out / "photo.png"
    Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(photo)
    photo.chmod(0o644)
    cli = [*user, python, "-s", "-m", "pixgmm.cli"]
    density = _run([*cli, "density", photo, "-m", "jones-rehg-skin", "-o", out], env, base)
    assert density.returncode == 0, density.stderr
    assert len(_warnings(density.stderr)) <= 1, density.stderr
    assert (out / "photo.density.tiff").is_file()

    demo = _run([*cli, "demo", "--out", out / "demo"], env, base)
    assert demo.returncode == 0, demo.stderr
    assert len(_warnings(demo.stderr)) <= 1, demo.stderr
    assert (out / "demo" / "astronaut.mask.png").is_file()


def test_no_writable_cache_folder_at_all_still_computes_with_one_warning(install):
    """NUMBA_CACHE_DIR pointing at a read-only folder (never overridden): no cache, one warning."""
    user, python, base = install["user"], install["python"], install["base"]
    locked = install["base"] / "locked-cache"
    locked.mkdir()
    locked.chmod(0o555)
    env = {
        **install["env"],
        "NUMBA_CACHE_DIR": str(locked),
        "TMPDIR": str(_writable_dir(install, "tmp2")),
    }
    lib = _run([*user, python, "-s", "-c", DENSITY], env, base)
    assert lib.returncode == 0, lib.stderr
    assert float(lib.stdout.split()[0]) == pytest.approx(_expected_density(), rel=1e-12)
    lines = _warnings(lib.stderr)
    assert len(lines) == 1 and "NUMBA_CACHE_DIR" in lines[0] and "compiled" in lines[0], lines
    assert not list(locked.iterdir()) and not list(Path(env["TMPDIR"]).iterdir())


def test_unreadable_model_file_and_output_folder_are_clear_errors(install):
    """As an unprivileged user (root reads and writes everything): a model file without read
    permission is PermissionError naming it, in the library and on the command line; an output
    folder without write permission names the output and the system's reason."""
    user, python, base = install["user"], install["python"], install["base"]
    env = {**install["env"], "TMPDIR": str(_writable_dir(install, "tmp-unreadable"))}
    folder = _writable_dir(install, "model-files")
    model = folder / "skin.json"
    pixgmm.Mixture([1.0], [[200.0, 140.0, 120.0]], [[300.0, 300.0, 300.0]], "diag").save(model)
    model.chmod(0)
    code = (
        "import pixgmm, sys\n"
        "try:\n"
        f"    pixgmm.Mixture.load({str(model)!r})\n"
        "except PermissionError as exc:\n"
        "    print(exc)\n"
    )
    lib = _run([*user, python, "-s", "-c", code], env, base)
    assert lib.returncode == 0, lib.stderr
    assert f"cannot read model file '{model}'" in lib.stdout and "permission denied" in lib.stdout

    from PIL import Image

    photo = folder / "photo.png"
    Image.fromarray(np.full((8, 8, 3), 128, np.uint8)).save(photo)
    photo.chmod(0o644)
    cli = [*user, python, "-s", "-m", "pixgmm.cli", "density", photo, "-m", str(model)]
    proc = _run([*cli, "-o", folder / "out"], env, base)
    assert proc.returncode != 0 and str(model) in proc.stderr, proc.stderr
    assert "ermission denied" in proc.stderr, proc.stderr

    locked = base / "locked"
    locked.mkdir(mode=0o755)  # root's folder: the user may read it, not write in it
    model.chmod(0o644)
    proc = _run([*user, python, "-s", "-m", "pixgmm.cli", "density", photo, "-m", str(model),
                 "-o", locked], env, base)  # fmt: skip
    assert proc.returncode != 0, proc.stderr
    assert str(locked) in proc.stderr and "ermission denied" in proc.stderr, proc.stderr
    assert list(locked.iterdir()) == []  # nothing half-written left behind
