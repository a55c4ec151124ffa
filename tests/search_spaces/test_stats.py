"""The verdict rule on synthetic results whose truth is known."""

import numpy as np
import pytest

from effnas.search_spaces.common.stats import BETTER, TIED, TOO_FEW, WORSE, compare, interval, noise_floor, seeds_needed


def runs(mean: float, sd: float, n: int, rng: np.random.Generator) -> np.ndarray:
    return mean + sd * rng.standard_normal(n)


def test_two_points_with_sigma_half_and_three_seeds_is_better_almost_always() -> None:
    # Truth: A is 2 points better, seed noise sd 0.5 points, 3 seeds each (unpaired: Welch).
    rng = np.random.default_rng(0)
    verdicts = [compare(runs(0.62, 0.005, 3, rng), runs(0.60, 0.005, 3, rng)).verdict for _ in range(200)]
    assert verdicts.count(BETTER) / 200 > 0.8  # the t-test's power here is about 0.9
    assert WORSE not in verdicts
    flipped = [compare(runs(0.60, 0.005, 3, rng), runs(0.62, 0.005, 3, rng)).verdict for _ in range(200)]
    assert flipped.count(WORSE) / 200 > 0.8


def test_no_difference_is_tied_at_the_test_level() -> None:
    rng = np.random.default_rng(1)
    verdicts = [compare(runs(0.6, 0.005, 3, rng), runs(0.6, 0.005, 3, rng)).verdict for _ in range(400)]
    false_calls = (verdicts.count(BETTER) + verdicts.count(WORSE)) / 400
    assert false_calls < 0.1  # 5 % nominal
    assert verdicts.count(TIED) / 400 > 0.9


def test_one_seed_is_too_few_unless_a_noise_floor_is_given() -> None:
    c = compare([0.70], [0.60])
    assert c.verdict == TOO_FEW and c.seeds_needed is None
    floor = noise_floor([[0.60, 0.61, 0.59], [0.70, 0.71], [0.5, 0.52, 0.51]])
    assert floor is not None and floor.df == 5 and floor.groups == 3
    assert compare([0.70], [0.60], floor=floor).verdict == BETTER
    assert compare([0.605], [0.60], floor=floor).verdict == TIED


def test_paired_by_seed_removes_the_shared_seed_effect() -> None:
    # Seeds move both methods alike (+-3 points); A is 1 point better at every seed.
    seed_effect = np.array([-0.03, 0.0, 0.03])
    a, b = 0.61 + seed_effect + [0.001, -0.001, 0.0], 0.60 + seed_effect
    assert compare(a, b).verdict == TIED  # unpaired, the seed effect hides it
    paired = compare(a, b, seeds_a=[0, 1, 2], seeds_b=[0, 1, 2])
    assert paired.verdict == BETTER and paired.test.startswith("paired")
    assert paired.low > 0 and paired.seeds_needed == 3


def test_interval_and_power() -> None:
    iv = interval([0.60, 0.62, 0.64])
    assert iv.n == 3 and iv.low == pytest.approx(0.5703, abs=1e-4) and iv.high == pytest.approx(0.6697, abs=1e-4)
    assert interval([0.5]).text() == "50.0 (n = 1)"
    assert interval([0.60, 0.62, 0.64]).text() == "62.0 [57.0, 67.0] (n = 3)"
    # Larger differences need fewer seeds; zero difference can never be separated.
    assert seeds_needed(0.02, 0.005, paired=False) == 3
    assert seeds_needed(0.005, 0.01, paired=False) > seeds_needed(0.01, 0.01, paired=False)
    assert seeds_needed(0.0, 0.01, paired=True) is None
