"""Large images on disk: lazy TIFF/Zarr reading, Zarr writing and its completion marker."""

from __future__ import annotations

import numpy as np
import pytest

import pixgmm

da = pytest.importorskip("dask.array")
zarr = pytest.importorskip("zarr")
tifffile = pytest.importorskip("tifffile")
from pixgmm import io as pxio  # noqa: E402
from pixgmm.io import zarrstore  # noqa: E402

MODEL = pixgmm.Mixture(
    [0.3, 0.7], [[200, 150, 120], [60, 90, 120]], [[300, 300, 300], [900, 600, 400]], "diag"
)


@pytest.fixture
def image(rng):
    return rng.integers(0, 256, (130, 97, 3), dtype=np.uint8)


# -- reading -------------------------------------------------------------------
@pytest.mark.parametrize("bigtiff", [False, True])
@pytest.mark.parametrize("tile", [(32, 32), None], ids=["tiled", "stripped"])
def test_tiff_is_read_lazily(tmp_path, image, tile, bigtiff):
    path = tmp_path / "img.tif"
    tifffile.imwrite(path, image, tile=tile, bigtiff=bigtiff, rowsperstrip=16)
    lazy = pxio.open_image_lazy(path, chunks=50)
    assert isinstance(lazy, da.Array)
    assert lazy.chunks == ((50, 50, 30), (50, 47), (3,))  # channel axis whole
    np.testing.assert_array_equal(lazy.compute(), image)
    np.testing.assert_allclose(
        pixgmm.density(lazy, MODEL).compute(), pixgmm.density(image, MODEL), rtol=1e-12
    )


def test_lazy_tiff_pickles_and_holds_no_file_open(tmp_path, image):
    """Tasks open the TIFF by path: the array pickles (for a cluster), no handle stays open."""
    cloudpickle = pytest.importorskip("cloudpickle")
    psutil = pytest.importorskip("psutil")
    path = tmp_path / "img.tif"
    tifffile.imwrite(path, image, tile=(32, 32))
    me = psutil.Process()
    lazy = pxio.open_image_lazy(path, chunks=64)
    assert not [f for f in me.open_files() if f.path == str(path)]
    again = cloudpickle.loads(cloudpickle.dumps(lazy))
    np.testing.assert_array_equal(again.compute(), image)
    assert not [f for f in me.open_files() if f.path == str(path)]
    # "auto" chunks are whole multiples of the file's tiles
    dask = pytest.importorskip("dask")
    with dask.config.set({"array.chunk-size": "20KiB"}):
        auto = pxio.open_image_lazy(path)
    assert auto.npartitions > 1 and auto.chunks[2] == (3,)
    assert all(c % 32 == 0 for dim in auto.chunks[:2] for c in dim[:-1])
    # a rewritten file is a different array (its blocks are not reused from a cache)
    tifffile.imwrite(path, image[::-1], tile=(32, 32))
    changed = pxio.open_image_lazy(path, chunks=64)
    assert changed.name != lazy.name
    np.testing.assert_array_equal(changed.compute(), image[::-1])


def test_pyramid_tiff_level(tmp_path, image):
    path = tmp_path / "pyramid.ome.tif"
    with tifffile.TiffWriter(path) as tif:
        tif.write(image, tile=(32, 32), subifds=1, photometric="rgb")
        tif.write(image[::2, ::2], tile=(16, 16), subfiletype=1, photometric="rgb")
    half = pxio.open_image_lazy(path, chunks=32, component="1")
    np.testing.assert_array_equal(half.compute(), image[::2, ::2])
    np.testing.assert_array_equal(pxio.open_image_lazy(path, chunks=32).compute(), image)
    with pytest.raises(ValueError, match="component='7'"):
        pxio.open_image_lazy(path, component="7")


def test_zarr_store_and_group(tmp_path, image):
    path = tmp_path / "img.zarr"
    zarr.create_array(path, data=image, chunks=(40, 40, 3))
    dask = pytest.importorskip("dask")
    with dask.config.set({"array.chunk-size": "20KiB"}):  # "auto": multiples of the store's
        lazy = pxio.open_image_lazy(path)
    assert lazy.chunks[2] == (3,) and lazy.npartitions > 1
    assert all(c % 40 == 0 for dim in lazy.chunks[:2] for c in dim[:-1])
    np.testing.assert_array_equal(lazy.compute(), image)
    lazy = pxio.open_image_lazy(str(path), chunks=(64, 97))
    assert lazy.chunksize == (64, 97, 3)

    group = zarr.open_group(tmp_path / "pyramid.zarr", mode="w")
    group.create_array("0", data=image, chunks=(64, 64, 3))
    group.create_array("1", data=image[::2, ::2], chunks=(64, 64, 3))
    np.testing.assert_array_equal(pxio.open_image_lazy(group.store_path.store.root), image)
    half = pxio.open_image_lazy(tmp_path / "pyramid.zarr", component="1")
    np.testing.assert_array_equal(half.compute(), image[::2, ::2])
    with pytest.raises(ValueError, match="component='2'"):
        pxio.open_image_lazy(tmp_path / "pyramid.zarr", component="2")


def test_other_formats_and_missing_files(tmp_path, image):
    iio = pytest.importorskip("imageio.v3")
    iio.imwrite(tmp_path / "img.png", image)
    lazy = pxio.open_image_lazy(tmp_path / "img.png", chunks=64)
    assert lazy.chunksize == (64, 64, 3)
    np.testing.assert_array_equal(lazy.compute(), image)
    with pytest.raises(FileNotFoundError, match=r"missing\.tif"):
        pxio.open_image_lazy(tmp_path / "missing.tif")
    with pytest.raises(FileNotFoundError, match=r"missing\.zarr"):
        pxio.open_image_lazy(tmp_path / "missing.zarr")
    with pytest.raises(TypeError, match="path"):
        pxio.open_image_lazy(42)
    with pytest.raises(TypeError, match="chunks"):
        pxio.open_image_lazy(tmp_path / "img.png", chunks=2.5)


def test_parse_chunks():
    assert pxio.parse_chunks("4096") == 4096
    assert pxio.parse_chunks(" 512,1024 ") == (512, 1024)
    assert pxio.parse_chunks("auto") == pxio.parse_chunks(None) == "auto"
    with pytest.raises(ValueError, match="chunks='big'"):
        pxio.parse_chunks("big")
    with pytest.raises(ValueError, match="positive"):
        pxio.parse_chunks("0,5")
    with pytest.raises(TypeError, match="chunks"):
        pxio.parse_chunks(4096)


# -- writing -------------------------------------------------------------------
def test_write_zarr_round_trip_end_to_end(tmp_path, image):
    src = tmp_path / "img.tif"
    tifffile.imwrite(src, image, tile=(32, 32))
    lazy = pxio.open_image_lazy(src, chunks=48)
    out = tmp_path / "density.zarr"
    stored = pxio.write_zarr(pixgmm.density(lazy, MODEL), out, attrs={"model": MODEL._fingerprint})
    assert stored.shape == image.shape[:2] and stored.chunks == (48, 48)
    np.testing.assert_allclose(stored[...], pixgmm.density(image, MODEL), rtol=1e-12)
    assert pxio.is_complete(out)
    assert zarr.open_array(out, mode="r").attrs["model"] == MODEL._fingerprint


def test_write_zarr_many_computes_what_the_maps_share_once(tmp_path, image):
    calls = []

    def shared_step(block):
        if block.size:  # dask also calls it once on an empty block to learn the output's type
            calls.append(block.shape)
        return pixgmm.log_density(block, MODEL)

    lazy = da.from_array(image, chunks=(48, 48, 3))
    logp = lazy.map_blocks(shared_step, drop_axis=2, dtype=np.float64)
    paths = [tmp_path / "logp.zarr", tmp_path / "high.zarr"]
    stored = pxio.write_zarr_many(
        [(logp, paths[0], {"map": "logp"}), (logp > -20, paths[1])], progress=False
    )
    assert len(calls) == logp.npartitions  # once per block, not once per map
    expected = pixgmm.log_density(image, MODEL)
    np.testing.assert_allclose(stored[0][...], expected, rtol=1e-12)
    np.testing.assert_array_equal(stored[1][...], expected > -20)
    assert all(pxio.is_complete(p) for p in paths)
    assert zarr.open_array(paths[0], mode="r").attrs["map"] == "logp"


def test_write_zarr_many_checks_every_store_before_writing(tmp_path, image):
    """One unusable store: no store is created or changed, even with overwrite=True."""
    lazy = pixgmm.density(da.from_array(image, chunks=(48, 48, 3)), MODEL)
    done = tmp_path / "done.zarr"
    pxio.write_zarr(lazy, done)
    before = zarr.open_array(done, mode="r")[...]
    photos = tmp_path / "photos"  # a folder of other files: never replaced
    photos.mkdir()
    (photos / "a.jpg").write_bytes(b"not a store")
    first = tmp_path / "first.zarr"
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match=r"photos.*not a Zarr store"):
            pxio.write_zarr_many(
                [(lazy, first), (lazy, photos), (lazy * 2, done)], overwrite=overwrite
            )
        assert not first.exists()
        assert pxio.is_complete(done)
        np.testing.assert_array_equal(zarr.open_array(done, mode="r")[...], before)
    assert (photos / "a.jpg").read_bytes() == b"not a store"
    with pytest.raises(ValueError, match="same store"):
        pxio.write_zarr_many([(lazy, first), (lazy, tmp_path / "." / "first.zarr")])
    assert not first.exists()


def test_write_zarr_many_one_map_failing_marks_none_complete(tmp_path, image):
    good = pixgmm.density(da.from_array(image, chunks=(50, 97, 3)), MODEL)
    bad = pixgmm.density(
        da.from_array(image, chunks=(50, 97, 3)).map_blocks(
            _boom_on_block_1, meta=np.empty((0, 0, 0), np.uint8)
        ),
        MODEL,
    )
    paths = [tmp_path / "good.zarr", tmp_path / "bad.zarr"]
    with pytest.raises(MemoryError, match="block 1"):
        pxio.write_zarr_many([(good, paths[0]), (bad, paths[1])])
    assert not any(pxio.is_complete(p) for p in paths)
    assert [pxio.store_status(p) for p in paths] == ["unfinished", "unfinished"]
    # the same call, now succeeding, finishes both
    pxio.write_zarr_many([(good, paths[0]), (good, paths[1])])
    assert all(pxio.is_complete(p) for p in paths)


def test_a_folder_of_other_files_is_never_replaced(tmp_path, image):
    """A path naming a folder of the user's files: refused, the files kept (overwrite too)."""
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    lazy = pixgmm.density(da.from_array(image, chunks=64), MODEL)
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match=r"results.*not a Zarr store"):
            pxio.write_zarr(lazy, folder, overwrite=overwrite)
    assert (folder / "notes.txt").read_text() == "keep me"
    assert pxio.store_status(folder) == "foreign"
    empty = tmp_path / "empty.zarr"  # an empty folder is fine
    empty.mkdir()
    assert pxio.store_status(empty) == "missing"
    pxio.write_zarr(lazy, empty)
    assert pxio.is_complete(empty)


def test_irregular_chunks_are_made_regular(tmp_path, image):
    lazy = da.from_array(image, chunks=((30, 50, 50), (97,), (3,)))
    stored = pxio.write_zarr(pixgmm.log_density(lazy, MODEL), tmp_path / "m.zarr")
    assert stored.chunks == (50, 97)
    np.testing.assert_allclose(stored[...], pixgmm.log_density(image, MODEL), rtol=1e-12)


def test_numpy_array_can_be_written(tmp_path):
    x = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(pxio.write_zarr(x, tmp_path / "x.zarr")[...], x)
    with pytest.raises(TypeError, match="array"):
        pxio.write_zarr([1, 2], tmp_path / "y.zarr")


def _unfinished(path, **kwargs):
    """A store as pixgmm leaves it when a run is interrupted (marker False)."""
    arr = zarr.create_array(path, overwrite=True, **kwargs)
    arr.attrs[pxio.COMPLETE_ATTR] = False
    return arr


def test_unfinished_store_shape_or_dtype_mismatch_is_a_value_error(tmp_path, image):
    path = tmp_path / "old.zarr"
    _unfinished(path, shape=(10, 10), chunks=(5, 5), dtype="f8")
    lazy = pixgmm.density(da.from_array(image, chunks=64), MODEL)
    with pytest.raises(ValueError, match=r"old\.zarr.*shape \(10, 10\).*\(130, 97\)"):
        pxio.write_zarr(lazy, path)
    _unfinished(path, shape=(130, 97), chunks=(5, 5), dtype="f4")
    with pytest.raises(ValueError, match=r"old\.zarr.*dtype float32"):
        pxio.write_zarr(lazy, path)
    assert not pxio.is_complete(path)
    stored = pxio.write_zarr(lazy, path, overwrite=True)
    assert stored.dtype == np.float64 and pxio.is_complete(path)


def test_store_pixgmm_did_not_write_needs_overwrite(tmp_path, image):
    """A Zarr array of the right shape without pixgmm's marker is someone else's data."""
    path = tmp_path / "theirs.zarr"
    theirs = zarr.create_array(path, shape=(130, 97), chunks=(50, 50), dtype="f8")
    theirs[...] = 7.0
    lazy = pixgmm.density(da.from_array(image, chunks=64), MODEL)
    with pytest.raises(
        FileExistsError, match=r"theirs\.zarr.*not written by pixgmm.*overwrite=True"
    ):
        pxio.write_zarr(lazy, path)
    assert pxio.store_status(path) == "foreign"
    np.testing.assert_array_equal(zarr.open_array(path, mode="r")[...], 7.0)  # untouched
    assert pxio.COMPLETE_ATTR not in zarr.open_array(path, mode="r").attrs
    stored = pxio.write_zarr(lazy, path, overwrite=True)
    np.testing.assert_allclose(stored[...], pixgmm.density(image, MODEL), rtol=1e-12)
    assert pxio.is_complete(path)


def test_unfinished_store_is_written_in_its_own_chunks(tmp_path, image):
    """A store marked unfinished (by an interrupted run, or by hand) is written in its layout."""
    path = tmp_path / "pre.zarr"
    _unfinished(path, shape=(130, 97), chunks=(20, 30), dtype="f8", fill_value=5.0)
    assert pxio.store_status(path) == "unfinished"
    stored = pxio.write_zarr(pixgmm.density(da.from_array(image, chunks=64), MODEL), path)
    assert stored.chunks == (20, 30)
    np.testing.assert_allclose(stored[...], pixgmm.density(image, MODEL), rtol=1e-12)
    assert pxio.store_status(path) == "complete"


def test_complete_store_needs_overwrite(tmp_path, image):
    path = tmp_path / "done.zarr"
    lazy = pixgmm.density(da.from_array(image, chunks=64), MODEL)
    pxio.write_zarr(lazy, path)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        pxio.write_zarr(lazy, path)
    stored = pxio.write_zarr(lazy, path, overwrite=True)
    assert pxio.is_complete(path)
    np.testing.assert_allclose(stored[...], pixgmm.density(image, MODEL), rtol=1e-12)


def test_not_an_array_needs_overwrite(tmp_path, image):
    path = tmp_path / "group.zarr"
    zarr.open_group(path, mode="w")
    lazy = pixgmm.density(da.from_array(image, chunks=64), MODEL)
    with pytest.raises(FileExistsError, match="not a Zarr array"):
        pxio.write_zarr(lazy, path)
    pxio.write_zarr(lazy, path, overwrite=True)
    assert pxio.is_complete(path)


def _boom_on_block_1(block, block_info=None):
    if block_info is not None and block_info[0]["chunk-location"][0] == 1:
        raise MemoryError("simulated failure in block 1")
    return block


@pytest.mark.parametrize("scheduler", ["threads", "sync"])
def test_failed_write_is_not_marked_complete(tmp_path, image, scheduler):
    path = tmp_path / "partial.zarr"
    failing = da.from_array(image, chunks=(50, 97, 3)).map_blocks(
        _boom_on_block_1, meta=np.empty((0, 0, 0), np.uint8)
    )
    dask = pytest.importorskip("dask")
    with dask.config.set(scheduler=scheduler), pytest.raises(MemoryError, match="block 1"):
        pxio.write_zarr(pixgmm.density(failing, MODEL), path)
    assert zarr.open_array(path, mode="r").attrs[pxio.COMPLETE_ATTR] is False
    assert not pxio.is_complete(path)
    # a second, successful run completes the same store
    pxio.write_zarr(pixgmm.density(da.from_array(image, chunks=(50, 97, 3)), MODEL), path)
    assert pxio.is_complete(path)


def test_is_complete_on_missing_and_foreign_stores(tmp_path):
    assert not pxio.is_complete(tmp_path / "nothing.zarr")
    zarr.create_array(tmp_path / "foreign.zarr", shape=(2, 2), dtype="f8")
    assert not pxio.is_complete(tmp_path / "foreign.zarr")


def test_store_status(tmp_path, image):
    lazy = pixgmm.density(da.from_array(image, chunks=64), MODEL)
    assert pxio.store_status(tmp_path / "none.zarr") == "missing"
    pxio.write_zarr(lazy, tmp_path / "done.zarr")
    assert pxio.store_status(tmp_path / "done.zarr") == "complete"
    _unfinished(tmp_path / "half.zarr", shape=(2, 2), dtype="f8")
    assert pxio.store_status(tmp_path / "half.zarr") == "unfinished"
    zarr.open_group(tmp_path / "group.zarr", mode="w")
    (tmp_path / "file.zarr").write_text("x")
    for name in ("group.zarr", "file.zarr"):
        assert pxio.store_status(tmp_path / name) == "foreign"
    with pytest.raises(TypeError, match="path"):
        pxio.store_status(3)


def test_chunks_equal_to_the_fill_value_are_written_too(tmp_path, image):
    """Every chunk is in the store (zarr skips fill-value chunks unless told), so a missing
    chunk always means a block that was not written here."""
    mask = da.zeros((130, 97), dtype=bool, chunks=50)
    stored = pxio.write_zarr(mask, tmp_path / "mask.zarr")
    assert stored.nchunks_initialized == stored.nchunks == 6
    assert pxio.is_complete(tmp_path / "mask.zarr")


def test_a_block_not_found_in_the_store_is_never_marked_complete(tmp_path, image, monkeypatch):
    """If a block's write does not reach the store the marker is not set (OSError)."""
    real = zarrstore._write_block

    def lost_on_a_worker(block, target, name, run, where):
        if where[0].start == 0 and where[1].start == 0:  # as if written on another machine
            return np.ones((1,) * block.ndim, np.int64)
        return real(block, target, name, run, where)

    monkeypatch.setattr(zarrstore, "_write_block", lost_on_a_worker)
    path = tmp_path / "lost.zarr"
    lazy = pixgmm.density(da.from_array(image, chunks=(50, 50, 3)), MODEL)
    with pytest.raises(OSError, match=r"lost\.zarr.*holds 5 of its 6 chunks"):
        pxio.write_zarr(lazy, path)
    assert pxio.store_status(path) == "unfinished"


def _take_over(block, path, block_info=None):
    """Compute a block; the first one also lets another run take the store over."""
    if block_info is not None and block_info[0]["chunk-location"][:2] == (0, 0):
        zarr.open_array(path, mode="r+").attrs[zarrstore.RUN_ATTR] = "another run"
    return block


def test_tasks_write_only_into_the_store_their_call_prepared(tmp_path, image):
    """A store another run took over (or that a worker does not see) is not written into."""
    path = tmp_path / "shared.zarr"
    img = da.from_array(image, chunks=(50, 97, 3))
    hijacked = img.map_blocks(_take_over, str(path), meta=np.empty((0, 0, 0), np.uint8))
    with pytest.raises(OSError, match=r"shared\.zarr.*not the one this write prepared"):
        pxio.write_zarr(pixgmm.density(hijacked, MODEL), path)
    assert not pxio.is_complete(path)


def test_relative_output_path_is_made_absolute(tmp_path, image, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lazy = pixgmm.density(da.from_array(image, chunks=64), MODEL)
    graph_paths = []
    real = zarrstore._write_blocks

    def spy(array, target, name, run):
        graph_paths.append((name, str(target.store_path)))
        return real(array, target, name, run)

    monkeypatch.setattr(zarrstore, "_write_blocks", spy)
    pxio.write_zarr(lazy, "rel.zarr")
    absolute = str(tmp_path / "rel.zarr")
    assert graph_paths == [(absolute, f"file://{absolute}")]
    assert pxio.is_complete(tmp_path / "rel.zarr")


def test_progress_bar_goes_to_stderr(tmp_path, image, capsys):
    lazy = pixgmm.density(da.from_array(image, chunks=64), MODEL)
    pxio.write_zarr(lazy, tmp_path / "p.zarr", progress=True)
    captured = capsys.readouterr()
    assert "100%" in captured.err and captured.out == ""


# -- clients -------------------------------------------------------------------
def test_dask_client_without_cluster_and_bad_arguments():
    with pxio.dask_client(progress=False) as client:
        assert client is None
    with pytest.raises(ValueError, match="not both"):
        with pxio.dask_client(workers=2, scheduler="tcp://127.0.0.1:1"):
            pass
    with pytest.raises(ValueError, match="workers"):
        with pxio.dask_client(workers=0):
            pass
    with pytest.raises(TypeError, match="workers"):
        with pxio.dask_client(workers="two"):
            pass
    with pytest.raises(TypeError, match="scheduler"):
        with pxio.dask_client(scheduler=8786):
            pass


def test_dask_client_starts_and_stops_a_local_cluster(tmp_path, image):
    pytest.importorskip("distributed")
    psutil = pytest.importorskip("psutil")
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    path = tmp_path / "cluster.zarr"
    with pxio.dask_client(workers=1, progress=False, timeout=60) as client:
        assert len(client.scheduler_info()["workers"]) == 1
        lazy = pixgmm.predict(da.from_array(image, chunks=(64, 64, 3)), MODEL)
        stored = pxio.write_zarr(lazy, path)
        inside = {p.pid for p in me.children(recursive=True)} - before
    np.testing.assert_array_equal(stored[...], pixgmm.predict(image, MODEL))
    assert inside  # a worker process was started ...
    workers = [p for p in me.children(recursive=True) if p.pid in inside and _is_worker(p)]
    gone, alive = psutil.wait_procs(workers, timeout=30)
    assert not alive  # ... and is gone after the block


def _is_worker(proc):
    """A spawned worker process (not multiprocessing's resource tracker, which stays)."""
    try:
        return "resource_tracker" not in " ".join(proc.cmdline())
    except Exception:  # already gone
        return False


# -- the gigapixel benchmark, on a small image ---------------------------------------
def test_gigapixel_benchmark_phases_run_on_a_small_image(tmp_path):
    """benchmarks/bench_gigapixel.py's phases, in this process, on 512 x 512 pixels."""
    import argparse
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_gigapixel.py"
    spec = importlib.util.spec_from_file_location("bench_gigapixel", script)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    args = argparse.Namespace(
        size=512,
        chunk=128,
        dir=str(tmp_path),
        threads=2,
        repeat=1,
        compressors=None,
        codec="none",
        dtype="float32",
        input_codec="none",
        keep_output=False,
    )
    gen = bench.phase_generate(args)
    assert gen["generated"] and pxio.is_complete(gen["image"])
    assert not bench.phase_generate(args)["generated"]  # reused
    args.image = gen["image"]
    mem = bench.phase_inmemory(args)
    assert mem["pixels"] == 512 * 512 and mem["rate_mpix_s"] > 0 and mem["io_rate_mpix_s"] > 0
    ooc = bench.phase_outofcore(args)
    assert ooc["complete"] and ooc["spot_check_equal"] and ooc["chunks"] == 16
    assert not (tmp_path / "density-512.zarr").exists()  # removed without --keep-output
    rows = bench.graph_report(args)
    for chunks in {r["chunks"] for r in rows}:
        pix = [r for r in rows if r["chunks"] == chunks and r["graph"] == "pixgmm"]
        naive = [r for r in rows if r["chunks"] == chunks and r["graph"] == "naive"]
        for p, n in zip(pix, naive):
            assert p["tasks"] == chunks + 1 and n["tasks"] == chunks
            assert p["task_bytes"] < n["task_bytes"]
