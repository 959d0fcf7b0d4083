"""studies/elpv_recipe/selection.py: rules for choosing the epoch, judged on unseen halves of validation, checked
on hand-built logits whose answers are known."""
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from studies.elpv_recipe import selection  # noqa: E402


def test_rules_choose_the_epochs_computed_by_hand():
    scores = np.array([0.1, 0.9, 0.2, 0.5, 0.5, 0.5])
    assert selection.choose(scores, 'best') == 1
    assert selection.choose(scores, 'last') == 5
    # means of 5 consecutive epochs: 0.44 (epochs 0-4), 0.52 (1-5): the window ending at epoch 5 wins
    assert selection.choose(scores, 'trailing_5') == 5
    assert selection.choose(scores, 'trailing_10') == 5  # longer than the run: one window, its last epoch
    assert selection.choose(np.array([0.3, 0.7, 0.7]), 'best') == 1  # ties go to the earliest, as in train.py


def test_judge_scores_each_rule_on_the_half_it_did_not_choose_on(tmp_path):
    # 8 cells, 4 per class; epoch 1 right everywhere, epochs 2 and 3 call every cell class 0 / class 1
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    right = np.eye(2)[labels]
    logits = np.stack([right, np.tile([1.0, 0.0], (8, 1)), np.tile([0.0, 1.0], (8, 1))]).astype(np.float16)
    np.savez(tmp_path / 'val_predictions.npz', epochs=[1, 2, 3], logits=logits, labels=labels)
    result = selection.judge(np.load(tmp_path / 'val_predictions.npz'), splits=20)
    # a constant prediction on an unseen half of 2 + 2 cells: F1 2·2 / (2·2 + 2) = 2/3 for one class, 0 for the other
    assert result['best'] == (1.0, 0.0)
    assert result['last'] == pytest.approx((1 / 3, 0.0))
    assert result['trailing_5'] == pytest.approx((1 / 3, 0.0))
    assert result['min_loss'] == (1.0, 0.0)  # the right epoch also has the lowest loss on every half
    assert result['all cells'] == (1.0, 0.0)


def test_cross_entropy_matches_the_formula():
    logits = np.array([[[2.0, 0.0], [0.0, 1.0]]])  # one epoch, two cells, labels 0 and 1
    expected = np.mean([np.log(1 + np.exp(-2.0)), np.log(1 + np.exp(-1.0))])
    assert selection.cross_entropy(np.array([0, 1]), logits) == pytest.approx([expected])


def test_half_masks_take_half_of_every_class():
    labels = np.array([0] * 7 + [1] * 4 + [2] * 2)
    for mask in selection.half_masks(labels, splits=5, seed=1):
        assert [int(mask[labels == c].sum()) for c in range(3)] == [3, 2, 1]


def test_runs_without_validation_logits_are_named_in_one_line(tmp_path):
    with pytest.raises(SystemExit, match='no val_predictions.npz in .*old_run.*train them again'):
        selection.main([str(tmp_path / 'old_run')])
