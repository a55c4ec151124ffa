from __future__ import annotations

import pickle
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from effnas.experiments.data import datasets as data
from effnas.experiments.data import shapes
from effnas.experiments.data.augment import make_augment, random_crop, random_flip
from effnas.experiments.data.readers import read_cifar10, read_cifar100
from effnas.experiments.data.tensorloader import TensorLoader, resize

# ---------------------------------------------------------------- built-in sets


def test_digits_and_mnist5k_are_read_offline_with_fixed_test_splits() -> None:
    d = data.load_dataset("digits")
    assert d.pool.images.shape[1:] == (1, 8, 8) and len(d.pool) + len(d.test) == 1797
    assert d.pool.images.max() == 255 and d.num_classes == 10 and not d.flip_invariant
    m = data.load_dataset("mnist5k")
    assert m.pool.images.shape[1:] == (1, 28, 28) and len(m.pool) + len(m.test) == 5000
    assert m.test.labels.bincount().tolist() == [100] * 10  # stratified 20 %


def test_splits_are_seeded_disjoint_and_fractional() -> None:
    d = data.load_dataset("digits")
    tr, va, te = data.split(d, seed=1)
    tr2, va2, _ = data.split(d, seed=1)
    assert torch.equal(tr.labels, tr2.labels) and torch.equal(va.images, va2.images)
    _, va3, te3 = data.split(d, seed=2)
    assert not torch.equal(va.images, va3.images) and te3 is te  # validation moves, test is fixed
    assert len(tr) + len(va) == len(d.pool)
    keys = {bytes(x.numpy()) for x in tr.images}
    assert not any(bytes(x.numpy()) in keys for x in va.images[:50])
    tr_small, _, _ = data.split(d, seed=1, data_fraction=0.25)
    assert len(tr_small) == round(len(tr) * 0.25)
    with pytest.raises(ValueError, match="data_fraction"):
        data.split(d, seed=0, data_fraction=0.0)


def test_shapes_is_deterministic_balanced_and_fast() -> None:
    t0 = time.perf_counter()
    x, y = shapes.generate(2000, seed=3)
    assert time.perf_counter() - t0 < 10
    x2, y2 = shapes.generate(2000, seed=3)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    assert not np.array_equal(shapes.generate(50, seed=4)[0], x[:50])
    assert x.shape == (2000, 3, 64, 64) and x.dtype == np.uint8
    assert np.bincount(y).tolist() == [200] * 10


def test_shapes_texture_is_lost_at_low_resolution() -> None:
    """The label needs fine detail: stripes/checks differ at 64 px, much less after resizing to 16 px."""
    x, y = shapes.generate(400, seed=0)
    t = torch.from_numpy(x)

    def texture_energy(imgs: torch.Tensor) -> float:
        f = imgs.float()
        return float((f[..., 1:, :] - f[..., :-1, :]).abs().mean() + (f[..., 1:] - f[..., :-1]).abs().mean())

    hi, lo = texture_energy(t), texture_energy(resize(resize(t, 16), 64))
    assert lo < 0.6 * hi


def test_unknown_dataset_and_bad_refs() -> None:
    with pytest.raises(ValueError, match="unknown dataset 'nope'"):
        data.load_dataset("nope")
    with pytest.raises(ValueError, match="needs a directory"):
        data.load_dataset("cifar10")
    with pytest.raises(ValueError, match="takes no path"):
        data.load_dataset("digits:/tmp")


# ---------------------------------------------------------------- loader


def test_loader_resizes_normalises_and_uses_channels_last() -> None:
    d = data.load_dataset("digits")
    tr, _, _ = data.split(d, seed=0)
    loader = TensorLoader(tr, resolution=20, mean=d.mean, std=d.std, batch_size=100, shuffle=True, drop_last=True)
    batches = list(loader.epoch(3))
    assert len(batches) == len(tr) // 100 == len(loader)
    x, y = batches[0]
    assert x.shape == (100, 3, 20, 20) and x.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(x[:, 0], x[:, 1])  # grayscale repeated
    allx = torch.cat([b[0] for b in batches])
    assert abs(float(allx.mean())) < 0.1 and 0.8 < float(allx.std()) < 1.2
    order = [[y.tolist() for _, y in loader.epoch(e)] for e in (3, 3, 4)]
    assert order[0] == order[1] != order[2]  # the order of an epoch is seeded with (seed, epoch) only


def test_resize_antialiases_when_downsampling() -> None:
    checker = ((torch.arange(64).view(1, -1) + torch.arange(64).view(-1, 1)) % 2 * 255).to(torch.uint8)
    small = resize(checker.view(1, 1, 64, 64), 16)
    assert small.shape == (1, 1, 16, 16)
    assert (small.float() - 127.5).abs().max() < 3  # a 1-px checker averages to grey, no aliasing
    assert resize(checker.view(1, 1, 64, 64), 64) is not None


def test_crop_and_flip_move_pixels_per_image() -> None:
    torch.manual_seed(0)
    x = torch.rand(64, 3, 12, 12)
    c = random_crop(x, 2)
    assert c.shape == x.shape
    shifted = sum(not torch.equal(c[i], x[i]) for i in range(64))
    assert shifted > 40  # 1/25 of images keep offset (2, 2)
    f = random_flip(x)
    flipped = sum(torch.equal(f[i], x[i].flip(-1)) for i in range(64))
    assert 15 < flipped < 49
    for policy in ("rrc_flip", "randaugment", "autoaugment"):
        aug = make_augment(policy, resolution=12, flip_invariant=True)
        assert aug is not None
        out = aug(x)
        assert out.shape == x.shape and 0 <= float(out.min()) and float(out.max()) <= 1
    with pytest.raises(ValueError, match="unknown augment policy 'nope'"):
        make_augment("nope", resolution=12, flip_invariant=True)


# ---------------------------------------------------------------- on-disk formats


def _dump(path: Path, obj: object) -> None:
    with path.open("wb") as f:
        pickle.dump(obj, f)


def _cifar_batch(n: int, n_classes: int, label_key: bytes, seed: int) -> dict[bytes, object]:
    rng = np.random.default_rng(seed)
    return {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            label_key: [int(v) for v in rng.integers(0, n_classes, n)], b"batch_label": b"x"}


def write_cifar10(root: Path, n: int = 4) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(1, 6):
        _dump(root / f"data_batch_{i}", _cifar_batch(n, 10, b"labels", i))
    _dump(root / "test_batch", _cifar_batch(n, 10, b"labels", 9))
    _dump(root / "batches.meta", {b"label_names": [f"c{i}".encode() for i in range(10)]})
    return root


def write_cifar100(root: Path, n: int = 6) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    _dump(root / "train", _cifar_batch(n, 100, b"fine_labels", 1))
    _dump(root / "test", _cifar_batch(n, 100, b"fine_labels", 2))
    _dump(root / "meta", {b"fine_label_names": [f"f{i}".encode() for i in range(100)]})
    return root


def test_cifar10_reader_and_dataset(tmp_path: Path) -> None:
    root = write_cifar10(tmp_path / "c10")
    xtr, ytr, xte, yte, names = read_cifar10(root)
    assert xtr.shape == (20, 3, 32, 32) and xte.shape == (4, 3, 32, 32) and names[3] == "c3"
    raw = pickle.loads((root / "data_batch_1").read_bytes())[b"data"]
    assert np.array_equal(xtr[0, 1], raw[0, 1024:2048].reshape(32, 32))  # channel-major rows
    ds = data.load_dataset(f"cifar10:{root}")
    assert ds.num_classes == 10 and len(ds.pool) == 20 and len(ds.test) == 4 and ds.flip_invariant
    tr, va, te = data.split(ds, seed=0, val_fraction=0.25)
    x, _ = next(TensorLoader(tr, resolution=16, mean=ds.mean, std=ds.std, batch_size=8).epoch())
    assert x.shape == (8, 3, 16, 16)


def test_cifar100_reader(tmp_path: Path) -> None:
    xtr, ytr, xte, yte, names = read_cifar100(write_cifar100(tmp_path / "c100"))
    assert xtr.shape == (6, 3, 32, 32) and len(names) == 100 and names[7] == "f7"
    assert data.load_dataset(f"cifar100:{tmp_path / 'c100'}").num_classes == 100


@pytest.mark.parametrize("corrupt,needle", [
    ("missing", "lacks data_batch_3"),
    ("keys", "not 'data' and 'labels'"),
    ("garbage", "cannot read"),
    ("shape", "must be uint8 (N, 3072)"),
    ("code", "is not allowed"),
])
def test_corrupt_cifar10_gives_one_line_error_naming_path_and_layout(tmp_path: Path, corrupt: str,
                                                                      needle: str) -> None:
    root = write_cifar10(tmp_path / "c10")
    target = root / "data_batch_3"
    if corrupt == "missing":
        target.unlink()
    elif corrupt == "keys":
        _dump(target, {b"pixels": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]})
    elif corrupt == "garbage":
        target.write_bytes(b"\x00not a pickle at all")
    elif corrupt == "shape":
        _dump(target, {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]})
    else:
        _dump(target, {b"data": Path("/etc"), b"labels": [0]})  # a non-numpy global
    with pytest.raises(ValueError, match="python-pickle layout") as e:
        data.load_dataset(f"cifar10:{root}")
    msg = str(e.value)
    assert needle in msg and str(root) in msg and "\n" not in msg


def test_cifar100_wrong_keys(tmp_path: Path) -> None:
    root = write_cifar100(tmp_path / "c100")
    _dump(root / "test", _cifar_batch(3, 10, b"coarse_labels", 0))
    with pytest.raises(ValueError, match="not 'data' and 'fine_labels'.*cifar-100-python"):
        read_cifar100(root)
