"""Issue 51's study read by the shared aggregation: the committed Fashion-MNIST-LT records aggregate with head /
medium / tail F1 and both bootstraps, and its conclusion answers the paper's question and the LDAM-DRW check from the
shown differences."""
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from studies.analysis.comparisons import compare_arms  # noqa: E402
from studies.analysis.prior_shift import adjusted_predictions, prior_shift_rows  # noqa: E402
from studies.fmnist_lt import aggregate as fmnist_aggregate  # noqa: E402
from studies.fmnist_lt.conclusion import CLASSES, GROUPS, conclusion  # noqa: E402
from timm_csba.metrics import load_predictions  # noqa: E402
from timm_csba.stats import BootstrapInterval, SeedComparison, balanced_accuracy, macro_f1  # noqa: E402

STUDY = fmnist_aggregate.STUDY
RECORDS = ROOT / 'studies' / 'fmnist_lt' / 'records'


def test_groups_are_the_long_tail_profile_in_class_order():
    assert [c for group in GROUPS.values() for c in group] == list(CLASSES)
    assert list(GROUPS) == ['head', 'medium', 'tail'] and GROUPS['tail'] == ('Sneaker', 'Bag', 'Ankle boot')


def test_the_committed_records_aggregate_with_group_f1_and_both_bootstraps(tmp_path):
    """Two 'seeds' of one arm: the recorded sum.s0 and a copy of it under another arm, so that a comparison exists
    (and its differences are exactly 0) without hours of training."""
    runs = tmp_path / 'records'
    (runs / 'protocol').mkdir(parents=True)
    for arm, seed in (('sum', 0), ('sum', 1), ('csba', 0), ('csba', 1)):
        copy = runs / 'protocol' / f'{arm}.s{seed}'
        shutil.copytree(RECORDS / 'protocol' / 'sum.s0', copy)
        args = yaml.safe_load((copy / 'args.yaml').read_text())
        (copy / 'args.yaml').write_text(yaml.safe_dump({**args, 'seed': seed}))
    table = fmnist_aggregate.shared.aggregate(STUDY, runs, ['protocol'], tmp_path / 'out', resamples=20)
    row = table.iloc[0]
    for group, members in GROUPS.items():
        assert row[f'f1_{group}'] == pytest.approx(np.mean([row[f'f1_{c}'] for c in members]))
    comparison = compare_arms(table, runs, 'csba', 'sum', 'protocol', STUDY, resamples=20)
    assert set(comparison['bootstraps']) == {'macro_f1', 'balanced_accuracy'}
    assert comparison['balanced_accuracy'].mean_difference == 0 and comparison['f1_tail'].mean_difference == 0
    labels, predictions = load_predictions(runs / 'protocol' / 'sum.s0' / 'test_predictions.csv')
    assert len(labels) == 10_000 and np.bincount(labels).tolist() == [1000] * 10  # balanced: accuracy is balanced
    assert row.balanced_accuracy == pytest.approx(balanced_accuracy(labels, predictions, 10), abs=1e-6)
    assert row.macro_f1 == pytest.approx(macro_f1(labels, predictions, 10), abs=1e-6)
    report = (tmp_path / 'out' / 'REPORT.md').read_text()
    assert '| arm | seeds | accuracy | macro-F1 | F1 head | F1 medium | F1 tail |' in report
    assert 'image bootstrap 95% CI, macro-F1 | image bootstrap 95% CI, balanced accuracy |' in report
    assert 'Does CSBA\'s CIFAR-10-LT gain show on Fashion-MNIST-LT?** Not shown' in report
    assert 'Does LDAM-DRW beat plain CE as published?** Not measured yet' in report
    assert STUDY.notes.read_text().splitlines()[0] in report  # the written account closes it

    # post-hoc logit adjustment of the same runs: tau = 0 is the run as trained; the bound includes tau 0 and 1
    shifted = prior_shift_rows(table, runs, STUDY)
    assert len(shifted) == 4 and shifted.as_trained.tolist() == pytest.approx([row.balanced_accuracy] * 4, abs=1e-6)
    assert (shifted.best >= shifted.adjusted).all() and (shifted.best >= shifted.as_trained).all()
    assert '### What re-balancing alone is worth: post-hoc logit adjustment' in report


def test_logit_adjustment_moves_the_decision_towards_the_rarer_class_by_hand():
    probabilities, prior = np.array([[0.6, 0.4], [0.95, 0.05]]), np.array([0.9, 0.1])
    assert adjusted_predictions(probabilities, prior, 0.0).tolist() == [0, 0]  # as trained
    # tau 1: log .6 - log .9 = -0.41 < log .4 - log .1 = 1.39; log .95 - log .9 = 0.05 > log .05 - log .1 = -0.69
    assert adjusted_predictions(probabilities, prior, 1.0).tolist() == [1, 0]
    # tau 2 doubles the shift: log .95 - 2 log .9 = 0.16 < log .05 - 2 log .1 = 1.61
    assert adjusted_predictions(probabilities, prior, 2.0).tolist() == [1, 1]


def _comparison(a, b, macro=0.0, accuracy=0.0, p=0.01, interval=(0.01, 0.05)):
    null = SeedComparison(5, 0.0, 0.01, 1.0, 1.0)
    return {'a': a, 'b': b, 'seeds': list(range(5)), 'without_predictions': [], 'bootstrap_seeds': list(range(5)),
            'bootstraps': {'macro_f1': BootstrapInterval(macro, *interval, 0.95, 200),
                           'balanced_accuracy': BootstrapInterval(accuracy, *interval, 0.95, 200)},
            'macro_f1': SeedComparison(5, macro, 0.01, p, p), 'balanced_accuracy': SeedComparison(5, accuracy, 0.01, p, p),
            'f1_head': null, 'f1_medium': null, 'f1_tail': null, 'backbone_cosine_trained': null,
            'backbone_magnitude_trained': null}


def _answers(comparisons):
    row = {'recipe': 'protocol', 'arm': 'csba', 'seed': 0}
    for i, c in enumerate(CLASSES):
        row[f'conflict_{c}_trained'], row[f'f1_{c}'] = -0.1 * i, 0.5 + 0.01 * i
    lines = conclusion(pd.DataFrame([row]), comparisons, {'rho': 0.1, 'p_value': 0.5, 'n': 10},
                       {'rho': 0.1, 'p_value': 0.5, 'n': 10})
    return {line.split('**')[1]: line.split('**')[2].strip() for line in lines}


def test_the_conclusion_answers_the_papers_question_and_the_ldam_check():
    gain = 'Does CSBA\'s CIFAR-10-LT gain show on Fashion-MNIST-LT?'
    ldam = 'Does LDAM-DRW beat plain CE as published?'
    answers = _answers([_comparison('csba', 'sum', macro=0.07), _comparison('sum_ldam_drw', 'sum', accuracy=0.04)])
    assert answers[gain].startswith('Yes, csba scores higher macro-F1 than sum:') and '+0.060' in answers[gain]
    assert answers[ldam].startswith('Yes, by at least the 3 points') and '0.704 → 0.770' in answers[ldam]
    assert answers['Does the shared-gate control explain the difference?'].startswith('Not measured yet')

    answers = _answers([_comparison('csba', 'sum', macro=0.02), _comparison('sum_ldam_drw', 'sum', accuracy=0.015)])
    assert answers[gain].startswith('Yes, csba scores higher macro-F1 than sum, by less than the paper claims')
    assert answers[ldam].startswith('Partly: it gains, by less than the 3 points')

    lower = _comparison('sum_ldam_drw', 'sum', accuracy=-0.03, interval=(-0.05, -0.01))
    answers = _answers([_comparison('csba', 'sum', macro=0.01, p=0.4, interval=(-0.01, 0.03)), lower])
    assert answers[gain].startswith('Not shown') and answers[ldam].startswith('No, LDAM-DRW scores lower than CE')
    # a seed-paired p below 0.05 whose image interval spans 0 is not shown
    answers = _answers([_comparison('sum_ldam_drw', 'sum', accuracy=0.05, interval=(-0.01, 0.08))])
    assert answers[ldam].startswith('Not shown') and answers[gain].startswith('Not measured yet')
