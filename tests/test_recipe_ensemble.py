"""studies/elpv_recipe/ensemble.py: seed ensembles of last-epoch validation predictions, checked on hand-built
logits whose scores are known."""
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from studies.elpv_recipe import ensemble  # noqa: E402

LABELS = np.array([0, 0, 1, 1])


def _run(folder: Path, wrong_cell: int, labels=LABELS) -> Path:
    """A two-epoch run: epoch 1 wrong on every cell (must be ignored), epoch 2 confidently right (logit margin 2)
    except on `wrong_cell`, where it leans wrong by a margin of 1."""
    last = 2.0 * np.eye(2)[labels]
    last[wrong_cell] = np.eye(2)[1 - labels[wrong_cell]]
    first = np.eye(2)[1 - labels]
    folder.mkdir()
    np.savez(folder / 'val_predictions.npz', epochs=[1, 2], logits=np.stack([first, last]).astype(np.float16),
             labels=labels)
    return folder


def test_averaging_runs_that_err_on_different_cells_corrects_them(tmp_path):
    runs = [_run(tmp_path / f's{i}', wrong_cell=i) for i in range(3)]
    probabilities, labels = ensemble.last_epoch_probabilities(runs)
    scores = ensemble.ensemble_scores(probabilities, labels)
    # one run, one cell wrong: F1 2/3 for the class that lost it, 4/5 for the other, macro 11/15, accuracy 3/4
    assert scores[1]['macro_f1'] == pytest.approx([11 / 15] * 3)
    assert scores[1]['accuracy'] == pytest.approx([0.75] * 3)
    assert sorted(scores[1]['per_class_f1'][0]) == pytest.approx([2 / 3, 4 / 5])
    # two runs: the right run's p = 0.88 outweighs the wrong run's p = 0.27 for the true class, on every cell
    assert scores[2]['macro_f1'] == pytest.approx([1.0] * 3) and scores[3]['macro_f1'] == pytest.approx([1.0])


def test_subsets_are_all_of_them_or_a_distinct_draw():
    rng = np.random.default_rng(0)
    assert ensemble.subsets(4, 2, limit=10, rng=rng) == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    drawn = ensemble.subsets(10, 3, limit=20, rng=rng)
    assert len(drawn) == len(set(drawn)) == 20 and all(len(s) == 3 for s in drawn)


def test_runs_of_other_validation_cells_are_refused_in_one_line(tmp_path):
    runs = [_run(tmp_path / 'a', 0), _run(tmp_path / 'b', 0, labels=np.array([0, 1, 1, 1]))]
    with pytest.raises(SystemExit, match='validated on other cells .*one split seed'):
        ensemble.main([str(run) for run in runs])


def test_runs_without_validation_logits_are_named_in_one_line(tmp_path):
    with pytest.raises(SystemExit, match='no val_predictions.npz in .*old_run.*train them again'):
        ensemble.main([str(tmp_path / 'old_run')])
