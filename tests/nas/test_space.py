from __future__ import annotations

import json
import math

import optuna
import pytest

import effnas.search_spaces as ss
from effnas.nas import SPACES, SearchSpace, get_space


@pytest.mark.parametrize("model", ["mnasnet_a1", "mnasnet_b1", "efficientnet_b0"])
def test_mnasnet_space_expresses_reference_networks(model: str) -> None:
    space = get_space("mnasnet")
    ref = ss.get(model)
    params = space.params_for(ref)
    assert space.to_spec(params).stages == tuple(
        __import__("dataclasses").replace(s, activation=None) for s in ref.stages
    )
    assert set(params) == set(space.distributions())


def test_paper_lists_cannot_express_b0_stage_5_width() -> None:
    with pytest.raises(ValueError, match="cannot express block 4"):
        get_space("mnasnet_paper").params_for(ss.get("efficientnet_b0"))


def test_sizes_follow_the_paper() -> None:
    # MnasNet §4.1: per-block sub-space 4 ops x 2 kernels x 2 SE x 3 skips x 3 filters x 3 layers = 432,
    # size 432^B; with B = 5 "about 10^13".
    assert get_space("mnasnet_paper").size == 432**7
    assert math.isclose(432**5, 1.5e13, rel_tol=0.05)
    assert get_space("mnasnet").size == 576**7
    assert get_space("efficientnet").size == 36**7


@pytest.mark.parametrize("name", list(SPACES))
def test_every_sample_builds(name: str) -> None:
    space = get_space(name)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(5):
        spec = space.to_spec(space.sample(study.ask()), resolution=32, num_classes=10)
        assert len(spec.stages) == space.num_blocks
        ss.build(spec)


def test_space_round_trips_through_json_and_toml(tmp_path) -> None:
    space = get_space("tiny")
    p = tmp_path / "s.json"
    p.write_text(json.dumps(space.to_dict()))
    assert get_space(str(p)) == space
    t = tmp_path / "s.toml"
    t.write_text('name = "mine"\nstages = ["r1_k3_s11_e1_i32_o16", "r2_k3_s22_e6_i16_o24"]\nhead_channels = 64\n'
                 '[choices]\nkernel = [3, 5, 7]\nlayers = [0, 1]\n')
    mine = get_space(str(t))
    assert mine.size == 6**2 and mine.head_channels == 64
    assert mine.to_spec({"b1_kernel": 7, "b1_layers": 1}).stages[1].kernel == 7


@pytest.mark.parametrize("change,needle", [
    ({"choices": {"kernel": []}}, "choice list 'kernel'.*is empty"),
    ({"choices": {"kernels": [3]}}, "unknown choice 'kernels'"),
    ({"choices": {"conv_op": ["sepconv"]}}, "unknown conv_op 'sepconv'"),
    ({"choices": {"kernel": [4]}}, "kernel must be odd"),
    ({"choices": {"filters": [0]}}, "filters multiplier"),
    ({"choices": {"layers": [0], "repeats": [1]}}, "keep one of them"),
    ({"stages": []}, "no stages"),
])
def test_bad_spaces_are_one_line_errors(change: dict, needle: str) -> None:
    d = {**get_space("tiny").to_dict(), **change}
    with pytest.raises(ValueError, match=needle) as e:
        SearchSpace.from_dict(d)
    assert "\n" not in str(e.value)


def test_unknown_space() -> None:
    with pytest.raises(ValueError, match="unknown search space 'nope'"):
        get_space("nope")


def test_nano_space_expresses_the_demo_base() -> None:
    import effnas.search_spaces as ss
    from effnas.nas.space import get_space

    space = get_space("nano")
    spec = space.to_spec(space.params_for(ss.get("efficientnet_nano")))
    assert spec.stages == ss.get("efficientnet_nano").stages
    assert spec.resolution == 16 and spec.head_channels == 256
