"""recover(): trials a killed process left RUNNING become FAIL; ones that ended meanwhile keep their state."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

from effnas.nas.study import recover


def _study(tmp_path):
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(tmp_path / "s.journal")))
    return optuna.create_study(study_name="s", storage=storage), storage


def test_recover_marks_running_trials_interrupted(tmp_path) -> None:
    study, _ = _study(tmp_path)
    done = study.ask()
    study.tell(done, 1.0)
    study.ask()  # left RUNNING by a "killed" process
    assert recover(study) == 1
    states = [(t.state, t.user_attrs.get("status")) for t in study.trials]
    assert states == [(TrialState.COMPLETE, None), (TrialState.FAIL, "interrupted")]


def test_a_trial_that_ends_while_recovering_keeps_its_state(tmp_path) -> None:
    study, storage = _study(tmp_path)
    running = study.ask()
    stale = study.get_trials(deepcopy=True, states=(TrialState.RUNNING,))
    # Another process (a dying worker) finishes the trial after recover() listed it as RUNNING.
    other = optuna.load_study(study_name="s", storage=storage)
    other.tell(running.number, 2.0)
    study.get_trials = lambda *a, **k: stale  # type: ignore[method-assign]  # the listing made before
    assert recover(study) == 0
    assert optuna.load_study(study_name="s", storage=storage).trials[0].state == TrialState.COMPLETE
