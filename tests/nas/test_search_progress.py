"""The search's per-trial line: the line of every batch of runs (effnas.search_spaces.common.progress)."""

from __future__ import annotations

import io
import re

from effnas.nas import Objective, SearchConfig, SurrogateTrainer, get_space, run_search
from effnas.nas.search import Progress

LINE = re.compile(r"\[(\d+)/(\d+)\] trial (\d+) random  val (\d+\.\d) %  (?:<1|\d+) s \| reward 0\.\d{4}  "
                  r"MACs \d+\.\d\dM \| best reward 0\.\d+ \| (ETA (?:<1|\d+) s|ETA \d+ min)")


def test_a_line_per_finished_trial_with_count_accuracy_and_eta() -> None:
    out = io.StringIO()
    cfg = SearchConfig(get_space("tiny"), Objective(target=1.5e6), strategy="random", trials=3, prune=False,
                       train={"epochs": 1})
    study = run_search(cfg, SurrogateTrainer(seed=0), progress=Progress(3, 0, stream=out, workers=1))
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and "\r" not in out.getvalue()
    for k, line in enumerate(lines, 1):
        m = LINE.fullmatch(line)
        assert m, line
        trial = study.trials[int(m.group(3))]
        assert (int(m.group(1)), int(m.group(2))) == (k, 3)
        assert float(m.group(4)) == round(100 * trial.user_attrs["accuracy"], 1)
    assert lines[-1].endswith("ETA <1 s")
