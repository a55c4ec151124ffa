"""The verdict rule on synthetic results whose truth is known."""

import numpy as np
import pytest

from effnas.search_spaces.common.stats import (
    BETTER,
    TIED,
    TOO_FEW,
    WORSE,
    bootstrap_compare,
    bootstrap_interval,
    compare,
    interval,
    noise_floor,
    resample_indices,
    seeds_needed,
    verdict,
)


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


def test_bootstrap_interval_of_a_mean_matches_the_t_interval_and_covers_the_truth() -> None:
    # Truth: 200 draws of N(0.5, 0.1); the bootstrap interval of the mean should be close to the t one.
    rng = np.random.default_rng(2)
    x = runs(0.5, 0.1, 200, rng)
    idx = resample_indices(len(x), seed=0)
    boot = bootstrap_interval(float(x.mean()), x[idx].mean(axis=1), n=len(x))
    t = interval(x)
    assert boot.method == "bootstrap" and boot.low < 0.5 < boot.high
    assert abs(boot.low - t.low) < 0.004 and abs(boot.high - t.high) < 0.004
    assert resample_indices(5, resamples=3, seed=1).tolist() == resample_indices(5, resamples=3, seed=1).tolist()


def test_bootstrap_compare_separates_a_real_difference_and_ties_none() -> None:
    # Two noisy measurements of the same 60 units: B tracks the truth less well than A by construction.
    rng = np.random.default_rng(3)
    truth = rng.standard_normal(60)
    a, b, c = truth + 0.3 * rng.standard_normal(60), truth + 3.0 * rng.standard_normal(60), \
        truth + 0.3 * rng.standard_normal(60)
    idx = resample_indices(60, seed=0)

    def corr(x: np.ndarray) -> tuple[float, np.ndarray]:
        reps = np.array([np.corrcoef(x[i], truth[i])[0, 1] for i in idx])
        return float(np.corrcoef(x, truth)[0, 1]), reps

    (pa, ra), (pb, rb), (pc, rc) = corr(a), corr(b), corr(c)
    assert bootstrap_compare(pa, ra, pb, rb, n=60).verdict == BETTER
    assert bootstrap_compare(pb, rb, pa, ra, n=60).verdict == WORSE
    assert bootstrap_compare(pa, ra, pc, rc, n=60).verdict == TIED
    against = bootstrap_compare(pa, ra, 0.0, n=60)  # a published constant
    assert against.verdict == BETTER and against.low > 0 and "constant" in against.test
    assert verdict(0.1, float("nan")) == TOO_FEW
