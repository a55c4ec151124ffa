"""Generated sets stored once per machine (effnas.experiments.data.stored)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from effnas.experiments.data import stored

NAMES = ("x", "y")


@pytest.fixture(autouse=True)
def cache(monkeypatch, tmp_path):
    monkeypatch.setenv("EFFNAS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def counting_build(calls: list[int]):
    def build() -> dict[str, np.ndarray]:
        calls.append(1)
        rng = np.random.default_rng(0)
        return {"x": rng.integers(0, 255, (4, 3, 2, 2), dtype=np.uint8), "y": np.arange(4)}
    return build


def test_built_once_then_read_back_identical():
    calls: list[int] = []
    a = stored.load_or_build("t", NAMES, sources=("code",), params=(4,), build=counting_build(calls))
    b = stored.load_or_build("t", NAMES, sources=("code",), params=(4,), build=counting_build(calls))
    assert len(calls) == 1
    assert all(np.array_equal(a[k], b[k]) and a[k].dtype == b[k].dtype for k in NAMES)


def test_new_code_or_params_give_a_new_file():
    calls: list[int] = []
    for sources, params in ((("code",), (4,)), (("code v2",), (4,)), (("code",), (5,))):
        stored.load_or_build("t", NAMES, sources=sources, params=params, build=counting_build(calls))
    assert len(calls) == 3


def test_a_truncated_file_is_built_again():
    calls: list[int] = []
    stored.load_or_build("t", NAMES, sources=("code",), params=(4,), build=counting_build(calls))
    path = stored.path_for("t", ("code",), (4,)) / "x.npy"
    path.write_bytes(path.read_bytes()[:100])
    b = stored.load_or_build("t", NAMES, sources=("code",), params=(4,), build=counting_build(calls))
    assert len(calls) == 2 and np.array_equal(b["y"], np.arange(4))
    assert stored._read(path.parent, NAMES) is not None  # rewritten whole


def test_an_unwritable_cache_warns_and_still_returns_the_arrays(cache):
    cache.write_text("a file where the cache directory should be")
    with pytest.warns(UserWarning, match="could not store"):
        a = stored.load_or_build("t", NAMES, sources=("code",), params=(4,), build=counting_build([]))
    assert np.array_equal(a["y"], np.arange(4))


@pytest.mark.slow
def test_shapes_reads_back_the_generated_images_and_statistics():
    from effnas.experiments.data import datasets, shapes

    d = datasets._load("shapes", None, "auto", False)  # generated, then stored
    again = datasets._load("shapes", None, "auto", False)  # read from the stored file
    for a, b in ((d.pool, again.pool), (d.test, again.test)):
        assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert len(again.test) == datasets.SHAPES_TEST and again.classes == shapes.CLASSES
    assert (again.mean, again.std) == (d.mean, d.std) == datasets._stats(again.pool.images)
