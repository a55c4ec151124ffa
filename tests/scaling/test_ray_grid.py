from __future__ import annotations

import pytest

import effnas.search_spaces as ss
from effnas.scaling import grid_candidates, grid_search


@pytest.mark.slow
def test_grid_candidates_run_as_ray_trials_and_resume(tmp_path) -> None:
    from effnas.experiments.cluster.ray_backend import executor

    def evaluator(config: dict, *, on_epoch=None) -> dict:  # a closed-form TEST evaluator, pickled by value
        from effnas.scaling import counts

        c = counts(ss.NetworkSpec.from_dict(config["model"]), config["resolution"])
        acc = 1 - 0.6 * (c.macs / 1e6) ** -0.35
        if on_epoch is not None:
            on_epoch({"epoch": 1, "train_loss": 1.0, "val_accuracy": acc})
        return {"status": "completed", "val_accuracy": acc, "test_accuracy": acc, "macs": c.macs}

    cands = grid_candidates(step=0.2, tolerance=0.15)
    res = grid_search(ss.get("tiny"), evaluator, candidates=cands, train_config={"dataset": "test", "epochs": 1},
                      out_dir=tmp_path, executor=executor(2))
    ready = int(res.table.within_tolerance.sum())  # the others are listed as out_of_tolerance, not trained
    assert len(res.table) == len(cands) and set(res.table.status) == {"completed", "out_of_tolerance"}
    assert len(list(tmp_path.glob("candidates/*/result.json"))) == ready == 4

    def never(config: dict, *, on_epoch=None) -> dict:
        raise AssertionError("a finished candidate was trained again")

    again = grid_search(ss.get("tiny"), never, candidates=cands, train_config={"dataset": "test", "epochs": 1},
                        out_dir=tmp_path, executor=executor(2), resume=True)
    assert again.best == res.best
