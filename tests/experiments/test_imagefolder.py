"""The streaming ImageFolder path: index, decoding, the papers' crops, per-image policies, workers."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from effnas.experiments.config.schema import JobConfig, load_config
from effnas.experiments.data import datasets as data
from effnas.experiments.data.augment import PerImagePolicy
from effnas.experiments.data.files import imagefolder, transforms
from effnas.experiments.data.files.imagefolder import decode, index_imagefolder
from effnas.experiments.data.files.streamloader import StreamLoader
from effnas.experiments.data.files.transforms import ImageTransform, centre_box, inception_box
from effnas.experiments.train.loop import train, train_fn


@pytest.fixture(autouse=True)
def _decoded_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Decoded folders go to a temporary cache, not the user's."""
    monkeypatch.setenv("EFFNAS_CACHE", str(tmp_path / "cache"))
    data.load_dataset.cache_clear()


def _save(path: Path, size: tuple[int, int], value: int, fmt: str = "PNG", mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    color: int | tuple[int, ...] = {"L": value, "CMYK": (value, 0, 0, 0), "RGBA": (value, 0, 0, 128),
                                    "P": value}.get(mode, (value, 255 - value, 0))
    Image.new(mode, size, color).save(path, format=fmt)


def _imagenet_layout(root: Path, *, n: int = 3) -> Path:
    """train/ + val/ with '.JPEG' files of mixed sizes, plus a grey JPEG, a CMYK JPEG and an RGBA PNG."""
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c, cls in enumerate(("n01440764", "n01443537")):
            for i in range(n):
                w, h = int(rng.integers(150, 400)), int(rng.integers(150, 400))
                _save(root / split / cls / f"{split}_{i}.JPEG", (w, h), 40 + 150 * c, "JPEG")
    _save(root / "train" / "n01440764" / "grey.jpeg", (200, 180), 90, "JPEG", "L")
    _save(root / "train" / "n01440764" / "cmyk.JPG", (220, 160), 200, "JPEG", "CMYK")
    _save(root / "train" / "n01443537" / "alpha.PNG", (180, 240), 30, "PNG", "RGBA")
    (root / "train" / "n01443537" / "README.txt").write_text("not an image")
    return root


# ---------------------------------------------------------------- index and decoding


def test_imagenet_layout_with_val_and_any_case_extension(tmp_path: Path) -> None:
    root = _imagenet_layout(tmp_path / "inet")
    train, val, classes = index_imagefolder(root)
    assert classes == ("n01440764", "n01443537") and val is not None
    assert len(train) == 3 + 3 + 3 and len(val) == 6  # .JPEG, .jpeg, .JPG, .PNG; not README.txt
    assert train.labels.tolist().count(0) == 5 and Path(val.root).name == "val"
    for i in range(len(train)):
        img = decode(train.path(i))
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3  # grey, CMYK, alpha -> RGB
    ds = data.load_dataset(f"imagefolder:{root}")
    assert ds.streaming and ds.geometry == "inception" and len(ds.test) == 6 and ds.num_classes == 2


@pytest.mark.parametrize("path", ["stream", "memory"])
def test_the_paper_recipe_trains_on_an_imagenet_layout(tmp_path: Path, path: str) -> None:
    """train/ + val/, '.JPEG', mixed sizes, a grey, a CMYK and an alpha file, and one truncated
    JPEG: skipped with a warning naming it, and counted."""
    root = _imagenet_layout(tmp_path / "inet", n=4)
    good = (root / "train" / "n01443537" / "train_0.JPEG").read_bytes()
    (root / "train" / "n01443537" / "cut.JPEG").write_bytes(good[:200])
    paper = load_config("paper")
    cfg = JobConfig.make(paper.data, paper.train, model="tiny", dataset=f"imagefolder:{root}", resolution=64,
                         epochs=1, batch_size=5, eval_batch_size=8, warmup_epochs=0.0, ema=0.0, quiet=True,
                         threads=1, loader_workers=0, val_fraction=0.2, path=path)  # 10 streamed: no batch dropped
    with pytest.warns(UserWarning, match=r"skipped undecodable image '.*cut.JPEG'"):
        m = train(cfg)
    assert m["status"] == "completed", m["error"]
    assert m["data_pipeline"] == {"path": {"stream": "streaming", "memory": "cached"}[path],
                                  "train": "rrc(0.08-1)+flip+autoaugment@64", "eval": "centre(0.667)@64",
                                  "workers": 0}  # 64 / (64 + 32)
    assert m["skipped_images"] == 1
    # the streaming index still lists the truncated file; the memory path dropped it before splitting
    assert m["train_size"] + m["val_size"] == {"stream": 12, "memory": 11}[path] and m["test_size"] == 8



def test_train_test_and_flat_layouts(tmp_path: Path) -> None:
    for split, n in (("train", 4), ("test", 2)):
        for c in ("a", "b"):
            for i in range(n):
                _save(tmp_path / "tt" / split / c / f"{i}.png", (12, 12), 50)
    train, test, classes = index_imagefolder(tmp_path / "tt")
    assert classes == ("a", "b") and len(train) == 8 and test is not None and Path(test.root).name == "test"
    for c in ("x", "y"):
        for i in range(5):
            _save(tmp_path / "flat" / c / f"{i}.jpg", (16, 16), 10, "JPEG")
    ds = data.load_dataset(f"imagefolder:{tmp_path / 'flat'}")
    assert len(ds.pool) == 8 and len(ds.test) == 2 and ds.geometry == "small"  # one per class carved


def test_layout_errors_are_one_line_and_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist: expected PATH/train"):
        index_imagefolder(tmp_path / "missing")
    _save(tmp_path / "nv" / "train" / "a" / "0.png", (8, 8), 1)
    with pytest.raises(ValueError, match="has train/ but neither val/ nor test/"):
        index_imagefolder(tmp_path / "nv")
    _save(tmp_path / "mc" / "train" / "a" / "0.png", (8, 8), 1)
    _save(tmp_path / "mc" / "train" / "b" / "0.png", (8, 8), 1)
    _save(tmp_path / "mc" / "val" / "a" / "0.png", (8, 8), 1)
    with pytest.raises(ValueError, match=r"'.*/mc/val' lacks class directory 'b'"):
        index_imagefolder(tmp_path / "mc")
    _save(tmp_path / "mc" / "val" / "b" / "0.png", (8, 8), 1)
    _save(tmp_path / "mc" / "val" / "z" / "0.png", (8, 8), 1)
    with pytest.raises(ValueError, match="has class 'z' that train/ lacks"):
        index_imagefolder(tmp_path / "mc")
    _save(tmp_path / "e" / "a" / "0.png", (8, 8), 1)
    (tmp_path / "e" / "b").mkdir()
    with pytest.raises(ValueError, match=r"class directory '.*/e/b' has no image files"):
        index_imagefolder(tmp_path / "e")
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with pytest.raises(ValueError, match=r"cannot decode image '.*broken.jpg'.*fix or remove") as e:
        decode(str(bad))
    assert "\n" not in str(e.value)
    (tmp_path / "mc" / "val" / "z" / "0.png").unlink()
    (tmp_path / "mc" / "val" / "z").rmdir()
    with pytest.raises(ValueError, match="has 2 class directories, not 10"):
        data.load_dataset(f"cifar10:{tmp_path / 'mc'}")


def test_statistics_come_from_a_sample(tmp_path: Path) -> None:
    for c, v in (("a", 0), ("b", 255)):
        for i in range(30):
            _save(tmp_path / "s" / c / f"{i}.png", (20, 20), v)
    train, _, _ = index_imagefolder(tmp_path / "s")
    mean, std, side, nbytes = imagefolder.survey(train, n=10, seed=0)
    assert side == 20 and nbytes == 20 * 20 * 3 and 0 < mean[0] < 1 and std[0] > 0.2  # black and red/green images
    mean_all, _, _, _ = imagefolder.survey(train, n=60, seed=0)
    assert mean_all[2] == 0.0 and abs(mean_all[0] - 0.5) < 1e-6  # blue is 0 everywhere; half the images red


# ---------------------------------------------------------------- geometry


def test_eval_centre_crop_is_the_tf_efficientnet_rule() -> None:
    assert centre_box(375, 500, 224 / 256) == (24, 86, 328, 328)  # int(0.875 * 375); (h - side + 1) // 2
    yy, xx = np.mgrid[0:375, 0:500]
    img = np.stack([xx * 255 // 499, yy * 255 // 374, (xx + yy) % 256], -1).astype(np.uint8)
    out = ImageTransform(224)(img, 0, 0)
    ref = Image.fromarray(img).crop((86, 24, 86 + 328, 24 + 328)).resize((224, 224), Image.Resampling.BICUBIC)
    diff = (out.int() - torch.from_numpy(np.array(ref)).int()).abs()
    assert out.shape == (224, 224, 3) and diff[..., :2].max() <= 2  # smooth channels: same crop, same resize
    assert ImageTransform(600).describe() == "centre(0.949)@600"  # crop_padding 32 at B7's resolution
    assert ImageTransform(224, crop_pct=0.95).describe() == "centre(0.950)@224"


def test_inception_crop_draws_area_and_ratio_in_range() -> None:
    rng = np.random.default_rng(0)
    boxes = [inception_box(375, 500, rng, 0.875) for _ in range(2000)]
    share = np.array([bh * bw / (375 * 500) for _, _, bh, bw in boxes])
    ratio = np.array([bw / bh for _, _, bh, bw in boxes])
    assert share.min() >= 0.07 and share.max() <= 1.0 and share.min() < 0.15 and np.median(share) < 0.6
    assert ratio.min() > 0.74 and ratio.max() < 1.35
    assert all(0 <= t and t + bh <= 375 and 0 <= lf and lf + bw <= 500 for t, lf, bh, bw in boxes)
    # A 1000 x 10 strip cannot hold a 3/4..4/3 crop of >= 8 % area: the evaluation centre crop.
    assert inception_box(10, 1000, rng, 0.875) == centre_box(10, 1000, 0.875)


def test_crops_read_native_pixels() -> None:
    """A B1-sized run (240 px) keeps detail that a 128-px cache (the old reader) erases: stripes of
    4 px period in a 480-px image are 2-px stripes at 240 px, beyond the 128-px Nyquist limit."""
    stripes = np.zeros((480, 480, 3), dtype=np.uint8)
    stripes[:, (np.arange(480) // 2) % 2 == 1] = 255

    def amplitude(x: torch.Tensor) -> float:  # of the 2-px period along a row (FFT bin 120 of 240)
        row = x.float()[..., 0].mean(0)
        return float(torch.fft.rfft(row - row.mean()).abs()[120]) / 240

    native = ImageTransform(240, crop_pct=1.0)(stripes, 0, 0)
    via_cache = ImageTransform(240, crop_pct=1.0)(
        ImageTransform(128, crop_pct=1.0)(stripes, 0, 0).numpy(), 0, 0)
    assert amplitude(native) > 60 and amplitude(via_cache) < 5
    for seed in range(3):  # the Inception crop magnifies native pixels: the stripes keep their contrast
        out = ImageTransform(240, crop="rrc", seed=seed)(stripes, 0, 0).float()
        assert float((out[:, 1:] - out[:, :-1]).abs().mean()) > 40


def _photo(path: Path, size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A natural-looking quality-90 JPEG (smooth colour fields, edges, noise) of ``size`` (w, h): its pixels."""
    rng = np.random.default_rng(seed)
    w, h = size
    coarse = Image.fromarray(rng.integers(0, 256, (h // 25, w // 25, 3), dtype=np.uint8))
    img = np.asarray(coarse.resize((w, h), Image.Resampling.BICUBIC)).astype(np.int16)
    img = (img + rng.normal(0, 6, (h, w, 3))).clip(0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path, format="JPEG", quality=90)
    return decode(str(path))


@pytest.mark.parametrize("crop", ["rrc", "none"])
def test_jpegs_are_decoded_at_the_size_the_crop_needs(tmp_path: Path, crop: str) -> None:
    """The transform of an undecoded JPEG draws the same crop on the full image as before, decodes
    it at 1/2, 1/4 or 1/8 when the crop keeps >= R pixels a side, moves the crop's edges by at most
    k/2 full pixels (onto the reduced pixels) and gives nearly the full decode's pixels of that crop."""
    path = tmp_path / "a" / "0.jpg"
    full = _photo(path, (1200, 900))
    split, _, _ = index_imagefolder(tmp_path)
    enc = split.fetch(0)
    assert isinstance(enc, imagefolder.Encoded) and (enc.height, enc.width) == full.shape[:2] == (900, 1200)
    asked: list[int] = []
    seen = imagefolder.Encoded(900, 1200, lambda k: asked.append(k) or enc.decode(k))
    unable = imagefolder.Encoded(900, 1200, lambda k: full)  # a decoder that cannot reduce
    diffs = []
    for res in (64, 112, 224):
        for i in range(12):
            rng, again = np.random.default_rng((3, 1, i)), np.random.default_rng((3, 1, i))
            pct = res / (res + 32)  # the box is drawn as before: the first draws of (seed, epoch, index)
            want = inception_box(900, 1200, again, pct) if crop == "rrc" else centre_box(900, 1200, pct)
            flipped = ImageTransform(res, crop=crop, flip=True, seed=3)
            assert flipped.box(900, 1200, rng) == want
            assert torch.equal(flipped(unable, 1, i), flipped(full, 1, i))  # same box, same flip at full size
            tf = ImageTransform(res, crop=crop, seed=3)
            out = tf(seen, 1, i)
            k = asked[-1]
            assert out.shape == (res, res, 3) and k == transforms.reduction(want, res)
            top, left, ch, cw = (v * k for v in transforms._scaled(want, k, -(-900 // k), -(-1200 // k)))
            t0, l0, h0, w0 = want
            edges = np.array([top - t0, left - l0, top + ch - t0 - h0, left + cw - l0 - w0])
            assert np.abs(edges).max() <= k / 2 and min(ch, cw) >= k * res
            ref = transforms._resize(transforms._crop(full, (top, left, ch, cw)), res).permute(1, 2, 0)
            diffs.append(float((out.int() - ref.int()).abs().float().mean()))
    assert {1, 2, 4, 8} <= set(asked) if crop == "rrc" else {2, 4, 8} == set(asked)
    assert max(diffs) < 3.0 and np.mean(diffs) < 1.5, diffs  # libjpeg's reduction vs the antialiased bicubic


def test_a_reduced_decode_never_magnifies() -> None:
    """Decode-time reduction keeps every crop at >= R pixels a side (no upsampling of a reduced decode)."""
    rng = np.random.default_rng(0)
    for _ in range(3000):
        h, w = (int(v) for v in rng.integers(16, 3000, 2))
        res = int(rng.integers(8, 400))
        box = inception_box(h, w, rng, 0.875)
        k = transforms.reduction(box, res)
        top, left, ch, cw = transforms._scaled(box, k, -(-h // k), -(-w // k))
        assert min(ch, cw) >= (res if k > 1 else 1) and top >= 0 and left >= 0
        assert top + ch <= -(-h // k) and left + cw <= -(-w // k)
        if k < 8:
            assert min(box[2], box[3]) < 2 * k * (res + 1)  # the largest reduction that fits
    # 22 px = 2 x 11 at 1/2 would be 10 px (edges 1.5 -> 2, 12.5 -> 12): needs 2 x 12, so no reduction
    assert transforms.reduction((3, 3, 22, 22), 11) == 1 and transforms.reduction((3, 3, 24, 24), 11) == 2


def test_the_flip_is_horizontal() -> None:
    img = np.broadcast_to(np.arange(0, 240, 5, dtype=np.uint8)[None, :, None], (40, 48, 3)).copy()
    plain = ImageTransform(40, crop_pct=1.0)(img, 0, 0)
    outs = [ImageTransform(40, crop_pct=1.0, flip=True)(img, 0, i) for i in range(12)]
    assert all(torch.equal(o, plain) or torch.equal(o, plain.flip(1)) for o in outs)
    assert 2 <= sum(torch.equal(o, plain) for o in outs) <= 10 and not torch.equal(plain, plain.flip(1))


def test_only_plain_jpegs_are_left_encoded(tmp_path: Path) -> None:
    """Grey and YCbCr JPEGs reach the transform encoded; CMYK JPEG, PNG and cached pixels decoded;
    a JPEG whose header reads but whose data is cut is skipped by the loader as before."""
    _save(tmp_path / "f" / "a" / "grey.jpg", (300, 200), 90, "JPEG", "L")
    _save(tmp_path / "f" / "a" / "cmyk.jpg", (300, 200), 200, "JPEG", "CMYK")
    _save(tmp_path / "f" / "a" / "rgb.png", (300, 200), 30, "PNG")
    good = (tmp_path / "f" / "a" / "grey.jpg").read_bytes()
    _photo(tmp_path / "f" / "a" / "x.jpg", (500, 375))
    (tmp_path / "f" / "a" / "z_cut.jpg").write_bytes((tmp_path / "f" / "a" / "x.jpg").read_bytes()[:2000])
    split, _, _ = index_imagefolder(tmp_path / "f")
    kinds = {Path(split.path(i)).name: type(split.fetch(i)).__name__ for i in range(len(split))}
    assert kinds == {"cmyk.jpg": "ndarray", "grey.jpg": "Encoded", "rgb.png": "ndarray", "x.jpg": "Encoded",
                     "z_cut.jpg": "Encoded"}
    grey = split.fetch(1)
    assert isinstance(grey, imagefolder.Encoded) and grey.decode(2).shape == (100, 150, 3)
    assert np.array_equal(grey.decode(1), decode(split.path(1))) and good[:3] == b"\xff\xd8\xff"
    tf = ImageTransform(48, crop="rrc", flip=True)
    loader = StreamLoader(split, transform=tf, mean=(0.5,) * 3, std=(0.25,) * 3, batch_size=5, workers=0)
    with pytest.warns(UserWarning, match=r"skipped undecodable image '.*z_cut.jpg'"):
        (x, y), = list(loader.epoch(0))
    assert x.shape == (4, 3, 48, 48) and y.tolist() == [0] * 4


def test_batches_are_normalised_per_channel() -> None:
    x = torch.randint(0, 256, (4, 20, 24, 3), dtype=torch.uint8)
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    want = (x.permute(0, 3, 1, 2).float() - torch.tensor(mean).view(1, 3, 1, 1) * 255) / (
        torch.tensor(std).view(1, 3, 1, 1) * 255)
    split = imagefolder.FileSplit("/x", np.array([b"a"] * 4), torch.zeros(4, dtype=torch.int64))
    for channels_last in (True, False):
        loader = StreamLoader(split, transform=ImageTransform(24), mean=mean, std=std, batch_size=4, workers=0,
                              channels_last=channels_last)
        out = loader.normalise(x)
        assert out.shape == (4, 3, 20, 24) and torch.allclose(out, want, atol=1e-5)
        assert out.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def test_small_images_get_the_cifar_pad_crop() -> None:
    img = np.full((32, 32, 3), 200, dtype=np.uint8)
    outs = [ImageTransform(32, "small", "pad", seed=0)(img, 0, i) for i in range(20)]
    assert all(o.shape == (32, 32, 3) for o in outs)
    zeros = [int((o[..., 0] == 0).sum()) for o in outs]
    assert max(zeros) > 0 and len(set(zeros)) > 3  # up to 4 px of zero padding, per image
    assert torch.equal(ImageTransform(32, "small")(img, 0, 0), torch.from_numpy(img))
    again = [ImageTransform(32, "small", "pad", seed=0)(img, 0, i) for i in range(20)]
    assert all(torch.equal(a, b) for a, b in zip(outs, again, strict=True))  # a function of (seed, epoch, index)
    later = [ImageTransform(32, "small", "pad", seed=0)(img, 1, i) for i in range(20)]
    assert not all(torch.equal(a, b) for a, b in zip(outs, later, strict=True))


# ---------------------------------------------------------------- per-image policies


@pytest.mark.parametrize("name", ["autoaugment", "randaugment"])
def test_kornia_draws_one_policy_per_batch_ours_one_per_image(name: str) -> None:
    pol = PerImagePolicy(name)
    torch.manual_seed(0)
    for _ in range(5):  # kornia: one sub-policy (AutoAugment) / one op list (RandAugment) for the whole batch
        params = pol.policy.forward_parameters(torch.Size((8, 3, 32, 32)))
        if name == "autoaugment":
            assert len(params) == 1 and isinstance(params[0].data, list)  # one PolicySequential
        else:
            assert len(params) == 2  # N = 2 operations, shared by all 8 images
    img = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
    ops = []
    for seed in range(16):  # what the workers do: every image draws its own
        out = pol(img, seed=seed)
        assert out.dtype == torch.uint8 and out.shape == img.shape
        ops.append(pol.last_ops)
    assert len(set(ops)) >= 4
    assert torch.equal(pol(img, seed=3), pol(img, seed=3))
    state = torch.get_rng_state()
    pol(img, seed=4)
    assert torch.equal(state, torch.get_rng_state())  # the trainer's generator is untouched


def test_images_of_one_streamed_batch_get_different_operations(tmp_path: Path) -> None:
    src = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    for i in range(16):
        (tmp_path / "f" / "a").mkdir(parents=True, exist_ok=True)
        Image.fromarray(src).save(tmp_path / "f" / "a" / f"{i}.png")
    train, _, _ = index_imagefolder(tmp_path / "f")
    tf = ImageTransform(32, "small", policy="autoaugment", seed=1)
    loader = StreamLoader(train, transform=tf, mean=(0.5,) * 3, std=(0.25,) * 3, batch_size=16, workers=0)
    (x, _), = list(loader.epoch(0))
    distinct = {bytes(x[i].numpy()) for i in range(16)}
    assert len(distinct) >= 8  # identical files, different operations per image


# ---------------------------------------------------------------- loader


def test_workers_change_processes_not_batches(cifar10_small: Path) -> None:
    ds = data.load_dataset(f"cifar10:{cifar10_small}", path="stream")
    assert ds.geometry == "small" and len(ds.pool) == 1000 and len(ds.test) == 200
    tr, _, _ = data.split(ds, seed=0)
    before = len(multiprocessing.active_children())
    batches = {}
    for workers in (0, 2):
        loader = data.make_loader(ds, tr, resolution=32, batch_size=64, train=True, seed=0, workers=workers)
        assert isinstance(loader, StreamLoader)
        it = loader.epoch(1)
        batches[workers] = [next(it) for _ in range(3)]
        assert len(multiprocessing.active_children()) - before == workers
        it = loader.epoch(2)  # epoch 1 abandoned mid-way; the persistent workers start epoch 2
        batches[workers] += [next(it) for _ in range(2)]
        assert len(multiprocessing.active_children()) - before == workers
        del it, loader
    for (x0, y0), (x2, y2) in zip(batches[0], batches[2], strict=True):
        assert torch.equal(x0, x2) and torch.equal(y0, y2)
    assert not torch.equal(batches[0][0][1], batches[0][3][1])  # epoch 2 has its own order
    x, _ = batches[0][0]
    assert x.shape == (64, 3, 32, 32) and x.is_contiguous(memory_format=torch.channels_last)


def test_loader_threads_decode_in_threads_and_give_the_same_batches(cifar10_small: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from effnas.experiments.data.files.transforms import ImageTransform

    ds = data.load_dataset(f"cifar10:{cifar10_small}", path="stream")
    tr, _, _ = data.split(ds, seed=0)
    seen: set[str] = set()
    real = ImageTransform.__call__

    def spy(self: ImageTransform, img: object, epoch: int, index: int) -> torch.Tensor:
        seen.add(threading.current_thread().name)
        return real(self, img, epoch, index)  # type: ignore[arg-type]

    monkeypatch.setattr(ImageTransform, "__call__", spy)
    out = {}
    for threads in (0, 2):
        seen.clear()
        loader = data.make_loader(ds, tr, resolution=32, batch_size=64, train=True, seed=0, workers=0,
                                  threads=threads)
        it = loader.epoch(1)
        out[threads] = [next(it) for _ in range(3)]
        del it  # abandoned mid-epoch: the pool is shut down
        names = set(seen)
        assert (names == {threading.current_thread().name}) if threads == 0 else (
            len(names) == 2 and all(n.startswith("effnas-loader") for n in names)), names
    for (x0, y0), (x2, y2) in zip(out[0], out[2], strict=True):
        assert torch.equal(x0, x2) and torch.equal(y0, y2)
    with pytest.raises(ValueError, match="not both"):
        data.make_loader(ds, tr, resolution=32, batch_size=64, train=True, workers=1, threads=2)


def test_a_small_net_learns_real_cifar10_through_the_stream(cifar10_small: Path) -> None:
    m = train_fn({"model": "tiny", "dataset": f"cifar10:{cifar10_small}", "resolution": 32, "epochs": 6,
                  "batch_size": 50, "val_fraction": 0.1, "quiet": True, "threads": 1, "loader_workers": 1,
                  "path": "stream"})
    assert m["status"] == "completed", m["error"]
    assert m["data_pipeline"] == {"path": "streaming", "train": "resize+pad4+flip@32", "eval": "resize@32",
                                  "workers": 1}
    assert m["test_accuracy"] > 0.2  # 1,000 training images, 6 epochs; chance is 0.1


@pytest.mark.slow
def test_efficientnet_nano_learns_the_full_real_cifar10(cifar10_jpeg: Path) -> None:
    """30 % of the 45,000 training images, 4 epochs (the README's calibration reached ~50 % on
    the pickled copy); the full 10,000-image test split."""
    m = train_fn({"model": "efficientnet_nano", "dataset": f"cifar10:{cifar10_jpeg}", "resolution": 32,
                  "epochs": 4, "batch_size": 128, "data_fraction": 0.3, "quiet": True, "threads": 1,
                  "loader_workers": 1, "path": "stream"})
    assert m["status"] == "completed", m["error"]
    assert m["test_size"] == 10_000 and m["test_accuracy"] > 0.4  # chance is 0.1


@pytest.mark.gpu
def test_cuda_batches_arrive_normalised_on_the_device(cifar10_small: Path) -> None:
    if not torch.cuda.is_available():
        pytest.fail("the gpu-marked tests need a CUDA device: run them with -m gpu on a GPU machine")
    ds = data.load_dataset(f"cifar10:{cifar10_small}", path="stream")
    loader = data.make_loader(ds, ds.test, resolution=32, batch_size=50, train=False, device="cuda", workers=1)
    assert isinstance(loader, StreamLoader) and loader.loader.pin_memory
    x, y = next(iter(loader.epoch(0)))
    assert x.is_cuda and y.is_cuda and x.dtype == torch.float32 and x.is_contiguous(memory_format=torch.channels_last)


def _rss() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096


def test_an_index_of_a_million_files_stays_small() -> None:
    """The streaming path holds names, not pixels: a 1,000,000-entry ImageNet-style listing, its
    loader and a shuffled epoch's first batches add well under 200 MB to the process."""
    before = _rss()
    n = 1_000_000
    names = np.char.add(np.char.add(b"n01440764/n01440764_", np.arange(n).astype("S7")), b".JPEG")
    split = imagefolder.FileSplit("/data/imagenet/train", names, torch.arange(n) % 1000)
    loader = StreamLoader(split, transform=ImageTransform(224), mean=(0.5,) * 3, std=(0.25,) * 3, batch_size=256,
                          shuffle=True, workers=0)
    batches = iter(loader.sampler)
    first = [next(batches) for _ in range(3)]
    assert len(loader) == n // 256 + 1 and len(first[0]) == 256 and first[0][0][1] == 0
    assert split.path(7) == "/data/imagenet/train/n01440764/n01440764_7.JPEG"
    assert (_rss() - before) / 2**20 < 200
    assert names.nbytes / 2**20 < 40  # 32 bytes a name


def test_loader_threads_refuse_per_image_policies_and_leave_no_threads(cifar10_small: Path) -> None:
    import threading

    ds = data.load_dataset(f"cifar10:{cifar10_small}", path="stream")
    tr, _, _ = data.split(ds, seed=0)
    with pytest.raises(ValueError, match="cannot run randaugment.*use data.loader_workers"):
        data.make_loader(ds, tr, resolution=32, batch_size=16, train=True, policy="randaugment", threads=2)
    loader = data.make_loader(ds, tr, resolution=32, batch_size=16, train=True, threads=2)
    it = loader.epoch(0)
    next(it)
    it.close()  # an abandoned epoch shuts its pool down
    assert not [t for t in threading.enumerate() if t.name.startswith("effnas-loader")]
