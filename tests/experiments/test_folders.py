"""Image folders: bad files (skipped and counted, or an error), the memory / stream choice, the
decoded cache shared by processes, and the data flags of ``effnas train``."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from effnas.experiments.cli.commands.train import config_from_args
from effnas.experiments.cli.main import build_parser
from effnas.experiments.data import datasets as data
from effnas.experiments.data.files import decoded, folders, shards
from effnas.experiments.data.files.imagefolder import BadImage, index_imagefolder
from effnas.experiments.data.files.streamloader import StreamLoader
from effnas.experiments.data.files.transforms import ImageTransform


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EFFNAS_CACHE", str(tmp_path / "cache"))
    data.load_dataset.cache_clear()
    return tmp_path / "cache"


def _folder(root: Path, sizes: list[tuple[int, int]], *, classes: tuple[str, ...] = ("a", "b"),
            split: str | None = None) -> Path:
    rng = np.random.default_rng(len(sizes))
    for c in classes:
        d = root / split / c if split else root / c
        d.mkdir(parents=True, exist_ok=True)
        for i, (w, h) in enumerate(sizes):
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(d / f"{i}.png")
    return root


def _bad(path: Path) -> Path:
    path.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return path


# ---------------------------------------------------------------- bad files


@pytest.mark.parametrize("workers", [0, 1])
def test_a_bad_file_is_named_skipped_and_counted_on_the_stream(tmp_path: Path, workers: int) -> None:
    root = _folder(tmp_path / "f", [(12, 12)] * 5)
    bad = _bad(root / "b" / "zz.png")
    split, _, _ = index_imagefolder(root)
    tf = ImageTransform(12, "small")
    loader = StreamLoader(split, transform=tf, mean=(0.5,) * 3, std=(0.25,) * 3, batch_size=4, workers=workers)
    with pytest.warns(UserWarning, match=rf"skipped undecodable image '{bad}'"):
        batches = list(loader.epoch(0))
    assert sum(len(y) for _, y in batches) == 10 and loader.skipped == {str(bad)}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # named once, not every epoch
        assert sum(len(y) for _, y in loader.epoch(1)) == 10
    strict = StreamLoader(split, transform=tf, mean=(0.5,) * 3, std=(0.25,) * 3, batch_size=4, workers=workers,
                          strict=True)
    with pytest.raises(ValueError, match=rf"^cannot decode image '{bad}': fix or remove the file") as e:
        list(strict.epoch(0))
    assert "\n" not in str(e.value)


def test_the_memory_path_drops_bad_files_before_training_or_rejects_them(tmp_path: Path) -> None:
    root = _folder(tmp_path / "f", [(10, 10)] * 6)
    bad = _bad(root / "a" / "x.png")
    with pytest.warns(UserWarning, match="skipped undecodable image '.*x.png'"):
        ds = data.load_dataset(f"imagefolder:{root}", path="memory")
    assert ds.skipped == (str(bad),) and len(ds.pool) + len(ds.test) == 12 and not ds.streaming
    with pytest.raises(BadImage, match=r"cannot decode image '.*x.png' \(1 such files in .*\): fix or remove"):
        data.load_dataset(f"imagefolder:{root}", path="memory", strict=True)
    for f in (root / "b").iterdir():
        _bad(f)
    data.load_dataset.cache_clear()
    with pytest.warns(UserWarning, match="skipped undecodable image '.*/b/0.png'"):
        with pytest.raises(ValueError, match=r"^class 'b' in '.*' has no decodable images: fix or remove its files$"):
            data.load_dataset(f"imagefolder:{root}", path="memory")


def test_a_class_missing_from_a_split_or_empty_is_one_line_before_training(tmp_path: Path) -> None:
    from effnas.experiments.train.loop import train_fn

    root = _folder(tmp_path / "m", [(8, 8)] * 3, split="train")
    _folder(root, [(8, 8)] * 2, classes=("a",), split="val")
    for path in ("stream", "memory"):
        with pytest.raises(ValueError, match=r"'.*/m/val' lacks class directory 'b'"):
            train_fn({"model": "tiny", "dataset": f"imagefolder:{root}", "epochs": 1, "quiet": True, "path": path})
    (root / "val" / "b").mkdir()
    with pytest.raises(ValueError, match=r"^class directory '.*/val/b' has no image files"):
        data.load_dataset(f"imagefolder:{root}")


# ---------------------------------------------------------------- memory or stream


def test_auto_decodes_small_folders_into_memory_and_streams_large_ones(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    same = _folder(tmp_path / "same", [(16, 16)] * 5)
    ds = data.load_dataset(f"imagefolder:{same}")
    assert isinstance(ds.pool, data.Split) and ds.pool.images.shape[1:] == (3, 16, 16)  # CIFAR-like: in memory
    large = _folder(tmp_path / "large", [(80, 80)] * 5)
    ds = data.load_dataset(f"imagefolder:{large}")  # one size, but large: keeps the Inception crop, cached
    assert ds.streaming and ds.pool.pixels is not None and ds.geometry == "inception"
    mixed = _folder(tmp_path / "mixed", [(90, 70), (70, 90), (80, 80), (100, 75), (75, 100)])
    ds = data.load_dataset(f"imagefolder:{mixed}")
    assert ds.streaming and ds.pool.pixels is not None and ds.geometry == "inception"  # per-image crops, cached pixels
    monkeypatch.setattr(folders, "MEMORY_BYTES", 5 * 80 * 80 * 3)  # now the folder is 'large'
    data.load_dataset.cache_clear()
    ds = data.load_dataset(f"imagefolder:{mixed}")
    assert ds.streaming and ds.pool.pixels is None
    assert data.load_dataset(f"imagefolder:{same}", path="stream").pool.pixels is None
    with pytest.raises(ValueError, match="data.path = 'stream' reads image folders; digits is held in memory"):
        data.load_dataset("digits", path="stream")


def test_cached_pixels_give_the_streamed_batches(tmp_path: Path) -> None:
    root = _folder(tmp_path / "mixed", [(90, 70), (70, 90), (80, 80), (100, 75), (75, 100)])
    out = {}
    for path in ("stream", "memory"):
        ds = data.load_dataset(f"imagefolder:{root}", path=path)
        tr, _, _ = data.split(ds, seed=1, val_fraction=0.2)
        loader = data.make_loader(ds, tr, resolution=48, batch_size=3, train=True, seed=1, policy="randaugment",
                                  workers=0)
        out[path] = list(loader.epoch(0))
    assert len(out["stream"]) == len(out["memory"]) > 0
    for (xs, ys), (xm, ym) in zip(out["stream"], out["memory"], strict=True):
        assert torch.equal(xs, xm) and torch.equal(ys, ym)


# ---------------------------------------------------------------- the decoded cache


def test_a_second_load_does_not_decode_and_a_touched_file_invalidates(tmp_path: Path, _cache: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    root = _folder(tmp_path / "f", [(20, 12), (12, 20), (16, 16)])
    calls = []
    real = decoded.decode
    monkeypatch.setattr(decoded, "decode", lambda p: calls.append(p) or real(p))
    split, _, _ = index_imagefolder(root)
    first, built = decoded.open_or_build(split)
    assert built and len(calls) == 6 and first.directory.parent == _cache / "decoded"
    assert np.array_equal(first[1], np.asarray(Image.open(split.path(1)).convert("RGB")))  # native size
    ds1 = data.load_dataset(f"imagefolder:{root}", path="memory")  # another trial or process: same cache
    data.load_dataset.cache_clear()
    ds2 = data.load_dataset(f"imagefolder:{root}", path="memory")
    assert len(calls) == 6 and ds1.pool.pixels.directory == ds2.pool.pixels.directory == first.directory
    st = os.stat(split.path(4))
    os.utime(split.path(4), ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # touch one file
    again, built = decoded.open_or_build(split)
    assert built and len(calls) == 12 and again.directory != first.directory


# ---------------------------------------------------------------- flags


def test_train_flags_set_the_data_keys() -> None:
    args = build_parser().parse_args(["train", "--dataset", "imagefolder:/x", "--loader-workers", "3",
                                      "--data-path", "stream", "--strict-data", "--out", "/tmp/r"])
    cfg = config_from_args(args)
    assert (cfg.loader_workers, cfg.path, cfg.strict) == (3, "stream", True)
    cfg = config_from_args(build_parser().parse_args(["train", "--out", "/tmp/r"]))
    assert (cfg.loader_workers, cfg.path, cfg.strict) == (0, "auto", False)


# ---------------------------------------------------------------- data info, pack, shards


def _inet(root: Path) -> Path:
    """train/ + val/ of mixed-size '.JPEG' files, 2 classes x 4, and one truncated file."""
    rng = np.random.default_rng(3)
    for split in ("train", "val"):
        for c in ("n01", "n02"):
            (root / split / c).mkdir(parents=True)
            for i in range(4):
                h, w = int(rng.integers(40, 90)), int(rng.integers(40, 90))
                Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(
                    root / split / c / f"{i}.JPEG", format="JPEG")
    (root / "train" / "n02" / "cut.JPEG").write_bytes((root / "train" / "n02" / "0.JPEG").read_bytes()[:300])
    return root


def test_data_info_counts_sizes_and_names_bad_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from effnas.experiments.cli.commands.data import info
    from effnas.experiments.cli.main import main

    root = _inet(tmp_path / "inet")
    r = info(f"imagefolder:{root}")
    assert r["classes"] == ["n01", "n02"] and set(r["splits"]) == {"train", "val"}
    tr = r["splits"]["train"]
    assert tr["images"] == 9 and tr["per_class"] == {"min": 4, "max": 5} and tr["decoded"] == 9
    assert tr["bad_files"] == [str(root / "train" / "n02" / "cut.JPEG")]
    assert 40 <= tr["shorter_side"]["min"] <= tr["shorter_side"]["median"] <= tr["shorter_side"]["max"] < 90
    assert sum(tr["sizes"].values()) <= 8 and tr["distinct_sizes"] <= 8
    assert info(f"imagefolder:{root}", sample=3)["splits"]["train"]["decoded"] == 3
    assert main(["data", "info", "digits"]) == 0
    out = capsys.readouterr().out
    assert "digits: 10 classes" in out and "train: 1,438 images" in out and "8x8 (1,438)" in out


def test_pack_writes_webdataset_shards_that_train_and_read_back(tmp_path: Path) -> None:
    import webdataset as wds

    from effnas.experiments.cli.main import main
    from effnas.experiments.train.loop import train_fn

    root = _inet(tmp_path / "inet")
    out = tmp_path / "shards"
    assert main(["data", "pack", f"imagefolder:{root}", "--out", str(out), "--shard-mb", "0.02"]) == 0
    trains = sorted(out.glob("train-*.tar"))
    assert len(trains) >= 2 and len(list(out.glob("val-*.tar"))) >= 1
    # the webdataset package reads them: pairs of KEY.jpg + KEY.cls
    samples = list(wds.WebDataset([str(t) for t in trains], shardshuffle=False).to_tuple("__key__", "jpg", "cls"))
    assert len(samples) == 9 and sorted(int(c) for _, _, c in samples) == [0, 0, 0, 0, 1, 1, 1, 1, 1]
    ds = data.load_dataset(f"shards:{out}")
    folder = data.load_dataset(f"imagefolder:{root}", path="stream")
    assert ds.streaming and ds.classes == folder.classes and len(ds.pool) == 9 and len(ds.test) == 8
    assert sorted(ds.test.read(i).shape for i in range(8)) == sorted(folder.test.read(i).shape for i in range(8))
    m = train_fn({"model": "tiny", "dataset": f"shards:{out}", "resolution": 32, "epochs": 1, "batch_size": 4,
                  "val_fraction": 0.25, "quiet": True, "threads": 1})
    assert m["status"] == "completed" and m["data_pipeline"]["path"] == "streaming" and m["test_size"] == 8
    with pytest.raises(ValueError, match="already holds shards: give an empty or new directory"):
        shards.pack(root, out)
    (out / "val-000000.tar").unlink()
    data.load_dataset.cache_clear()
    with pytest.raises(ValueError, match=r"shard '.*val-000000.tar' listed in dataset.json is missing"):
        data.load_dataset(f"shards:{out}")


def test_a_small_net_learns_real_cifar10_from_the_decoded_cache(cifar10_small: Path) -> None:
    """The default data.path (auto) puts the real CIFAR-10 JPEG subset in memory: decoded once,
    then the in-memory loader of the CIFAR pickles (the stream's twin test: test_imagefolder.py)."""
    from effnas.experiments.train.loop import train_fn

    m = train_fn({"model": "tiny", "dataset": f"cifar10:{cifar10_small}", "resolution": 32, "epochs": 4,
                  "batch_size": 50, "val_fraction": 0.1, "quiet": True, "threads": 1})
    assert m["status"] == "completed", m["error"]
    assert m["data_pipeline"] == {"path": "in_memory"} and m["skipped_images"] == 0
    assert m["train_size"] == 900 and m["test_size"] == 200
    assert m["test_accuracy"] > 0.2  # chance is 0.1; seeds 0 / 1 / 2 reached 0.275 / 0.240 / 0.265


def test_data_command_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from effnas.experiments.cli.main import main

    assert main(["data", "pack", "digits", "--out", str(tmp_path / "o")]) == 2
    assert main(["data", "info", "digits", "--sample", "0"]) == 2
    assert main(["data", "info", f"shards:{tmp_path}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["effnas: error: data pack reads image folders, not 'digits': give imagefolder:PATH",
                   "effnas: error: --sample must be >= 1, got 0",
                   f"effnas: error: shards directory '{tmp_path}' has no dataset.json: expected DIR/dataset.json "
                   "and DIR/<split>-NNNNNN.tar shards written by 'effnas data pack'"]


def test_an_archive_path_is_unpacked_once_into_the_cache_and_read(tmp_path: Path, _cache: Path) -> None:
    import tarfile

    root = _folder(tmp_path / "src" / "set", [(40, 30)] * 3, split="train")
    _folder(root, [(30, 40)] * 2, split="test")
    archive = tmp_path / "set.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname="set")
    ds = data.load_dataset(f"imagefolder:{archive}")
    assert ds.classes == ("a", "b") and len(ds.pool) == 6 and len(ds.test) == 4
    unpacked = [p for p in (_cache / "data").iterdir()]
    assert len(unpacked) == 1 and (unpacked[0] / "set" / "train" / "a" / "0.png").is_file()
    stamp = (unpacked[0] / ".unpacked").stat().st_mtime_ns
    data.check_dataset(f"imagefolder:{archive}")  # a second use reads the unpacked copy
    assert (unpacked[0] / ".unpacked").stat().st_mtime_ns == stamp
    os.utime(archive, ns=(stamp + 10**9, stamp + 10**9))  # a changed archive (same name and size)
    data.check_dataset(f"imagefolder:{archive}")
    assert (unpacked[0] / ".unpacked").stat().st_mtime_ns != stamp  # unpacked again
    assert not [p for p in (_cache / "data").iterdir() if p.name.endswith(".tmp")]
    with pytest.raises(ValueError, match=r"^archive '.*missing\.tar\.gz' does not exist"):
        data.check_dataset(f"cifar10:{tmp_path / 'missing.tar.gz'}")
