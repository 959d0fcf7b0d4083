"""Issue 14's study machinery on a two-seed, two-architecture smoke grid: the runner skips, resumes and records,
the aggregator writes its CSV, report and plots from the runs or their records, the statistics agree with values
computed by hand, and a model card quotes (and requotes) its run's row of the report."""
import importlib
import importlib.util
import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from huggingface_hub import ModelCard
from sklearn.metrics import balanced_accuracy_score, f1_score

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from studies.elpv import aggregate as study_aggregate  # noqa: E402
from studies.analysis import comparisons as study_comparisons  # noqa: E402
from studies.analysis import rows as study_rows  # noqa: E402
from studies.elpv import conclusion as study_conclusion  # noqa: E402
from studies.elpv.conclusion import GRADES  # noqa: E402
from studies.elpv import run as study_run  # noqa: E402
from studies import grid as study_grid  # noqa: E402
from timm_csba.hub import HubError, export_run  # noqa: E402
from timm_csba.hub.__main__ import main as hub_main  # noqa: E402
from timm_csba.metrics import load_predictions  # noqa: E402
from timm_csba.stats import (balanced_accuracy, bootstrap_difference, format_mean_std, macro_f1, mean_std,  # noqa: E402
                             paired_seed_test)

ARMS, SEEDS = ['csba', 'sum'], [0, 1]


def records_of(runs: Path) -> Path:
    return runs.parent / 'records'


@pytest.fixture(scope='module')
def grid(tmp_path_factory):
    runs = tmp_path_factory.mktemp('study') / 'runs'
    outcomes = study_run.run_grid('smoke', ARMS, SEEDS, runs, parallel=2, threads=1, max_batches=2,
                                  records=records_of(runs))
    assert outcomes == {f'{a}.s{s}': 'done' for s in SEEDS for a in ARMS}, outcomes
    return runs


def test_every_done_run_is_recorded_without_its_weights(grid):
    for arm in ARMS:
        for seed in SEEDS:
            run, record = grid / 'smoke' / f'{arm}.s{seed}', records_of(grid) / 'smoke' / f'{arm}.s{seed}'
            files = sorted(str(p.relative_to(record)) for p in record.rglob('*') if p.is_file())
            assert files == sorted(study_run.RECORD_FILES)
            assert (record / 'test_predictions.csv').read_bytes() == (run / 'test_predictions.csv').read_bytes()
    assert [p.name for p in (records_of(grid) / 'smoke').iterdir() if p.name.startswith('.')] == []  # no temp folders


def test_a_second_pass_skips_every_finished_run(grid, capsys):
    # runs done in a pass that kept no records are recorded by the next one; a smoke grid's records stay beside
    # its runs, out of the committed studies/elpv/records
    argv = ['--recipe', 'smoke', '--arms', *ARMS, '--seeds', *map(str, SEEDS), '--runs', str(grid)]
    assert study_run.main(argv) == 0
    assert capsys.readouterr().out.count(': recorded in ') == len(ARMS) * len(SEEDS)
    assert all(study_run.is_recorded(grid / 'smoke' / f'{a}.s{s}', grid / 'records') for a in ARMS for s in SEEDS)
    assert not (study_run.RECORDS / 'smoke').exists()


def test_killed_and_undiagnosed_runs_continue_where_they_stopped(grid, tmp_path):
    runs = tmp_path / 'runs'
    shutil.copytree(grid, runs)
    killed, undiagnosed = runs / 'smoke' / 'sum.s1', runs / 'smoke' / 'csba.s0'
    finished = json.loads((killed / 'test_metrics.json').read_text())
    for name in ('test_metrics.json', 'test_predictions.csv', 'diagnostics'):  # as if killed after the last epoch
        path = killed / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    shutil.rmtree(undiagnosed / 'diagnostics')
    assert study_run.state_of(killed) == 'killed' and study_run.state_of(undiagnosed) == 'trained'
    killed_steps = study_run.steps('smoke', 'sum', 1, runs, threads=1)
    assert '--resume' in killed_steps[0] and str(killed) in killed_steps[0] and '--config' not in killed_steps[0]
    undiagnosed_steps = study_run.steps('smoke', 'csba', 0, runs, threads=1)
    assert len(undiagnosed_steps) == 1 and 'timm_csba.diagnose' in undiagnosed_steps[0]

    records = tmp_path / 'records'
    outcomes = study_run.run_grid('smoke', ARMS, SEEDS, runs, max_batches=2, records=records)
    assert outcomes['sum.s1'] == outcomes['csba.s0'] == 'done' and outcomes['sum.s0'] == 'done, skipped'
    resumed = json.loads((killed / 'test_metrics.json').read_text())
    assert resumed['confusion_matrix'] == finished['confusion_matrix'] and resumed['seed'] == 1
    assert (undiagnosed / 'diagnostics' / 'diagnostics.json').exists()
    assert (records / 'smoke' / 'sum.s1' / 'test_metrics.json').read_text() == (killed / 'test_metrics.json').read_text()


def test_recorded_runs_are_not_trained_again_on_a_machine_without_their_folders(grid, tmp_path):
    # a new session's machine has the committed records and no runs/: only the unrecorded run is left to do
    records = tmp_path / 'records'
    shutil.copytree(records_of(grid), records)
    shutil.rmtree(records / 'smoke' / 'csba.s1')
    outcomes = study_run.run_grid('smoke', ARMS, SEEDS, tmp_path / 'runs', dry_run=True, records=records)
    assert outcomes == {'csba.s0': 'done, skipped', 'sum.s0': 'done, skipped', 'sum.s1': 'done, skipped',
                        'csba.s1': 'would run'}


def test_arms_run_at_their_own_seeds_unless_seeds_are_given(tmp_path):
    grid = study_grid.Grid(tmp_path / 'runs', tmp_path / 'records', {'a': [], 'b': []}, study_run.RECIPES,
                           seeds=(0, 1, 2), arm_seeds={'b': (0, 1)})
    by_default = study_grid.run_grid(grid, 'smoke', ['a', 'b'], None, grid.runs, dry_run=True)
    assert list(by_default) == ['a.s0', 'b.s0', 'a.s1', 'b.s1', 'a.s2']  # seed-major, b stops at its last seed
    given = study_grid.run_grid(grid, 'smoke', ['a', 'b'], [2], grid.runs, dry_run=True)
    assert list(given) == ['a.s2', 'b.s2']


def test_aggregate_writes_one_row_per_run_the_report_and_plots(grid, tmp_path):
    table = study_aggregate.aggregate(grid, ['smoke'], tmp_path, resamples=200)
    csv = pd.read_csv(tmp_path / 'results.csv')
    assert len(csv) == 4 and sorted(zip(csv.arm, csv.seed)) == [(a, s) for a in sorted(ARMS) for s in SEEDS]
    columns = set(csv.columns)
    assert {'recipe', 'arm', 'architecture', 'loss', 'seed', 'accuracy', 'balanced_accuracy', 'macro_f1',
            'f1_possibly_defective', 'f1_likely_defective', 'backbone_cosine_init', 'backbone_cosine_trained',
            'backbone_magnitude_init', 'backbone_magnitude_trained', 'stages.0_cosine_trained', 'head_cosine_init',
            'conflict_likely_defective_trained', 'branch0_grad_share', 'attention_jaccard'} <= columns
    for _, row in csv.iterrows():
        test = json.loads((grid / 'smoke' / f'{row.arm}.s{row.seed}' / 'test_metrics.json').read_text())
        assert row.macro_f1 == pytest.approx(test['macro_f1'])
        assert row.architecture == {'csba': 'csba_squeeze', 'sum': 'csba_squeeze_sum'}[row.arm]
    # the branch shares of a three-branch head sum to one; only CSBA's private gates have an overlap to measure
    shares = csv[['branch0_grad_share', 'branch1_grad_share', 'branch2_grad_share']].sum(axis=1)
    assert np.allclose(shares, 1.0)
    assert csv[csv.arm == 'csba'].attention_jaccard.between(0, 1).all() and csv[csv.arm == 'sum'].attention_jaccard.isna().all()

    report = (tmp_path / 'REPORT.md').read_text()
    assert '| csba vs sum | 2 |' in report and 'Spearman' in report and '## Recipe `smoke`' in report
    assert {p.name for p in (tmp_path / 'plots' / 'smoke').iterdir()} == {'f1_by_arm.png', 'conflict_init_vs_trained.png',
                                                                 'conflict_vs_f1.png'}
    assert len(table) == 4


def test_records_aggregate_like_the_runs_and_rows_without_records_join_them(grid, tmp_path):
    from_runs = study_aggregate.aggregate(grid, ['smoke'], tmp_path / 'from_runs', resamples=20)
    records = tmp_path / 'records'
    shutil.copytree(records_of(grid), records)
    from_records = study_aggregate.aggregate(records, ['smoke'], tmp_path / 'from_records', resamples=20)
    pd.testing.assert_frame_equal(from_runs, from_records)

    # sum.s1 finished before records were kept: only its row survives, so its seed pairs and the bootstrap runs on
    # the seed that kept its predictions
    kept = from_records[(from_records.arm == 'sum') & (from_records.seed == 1)]
    shutil.rmtree(records / 'smoke' / 'sum.s1')
    stale = from_records[(from_records.arm == 'csba') & (from_records.seed == 0)].assign(macro_f1=-1.0)
    pd.concat([kept, stale]).to_csv(records / 'smoke' / study_rows.ROWS_WITHOUT_RECORDS, index=False)
    table = study_aggregate.aggregate(records, ['smoke'], tmp_path / 'joined', resamples=20)
    pd.testing.assert_frame_equal(table, from_records)  # sum.s1 from its row; csba.s0's record beats its stale row
    report = (tmp_path / 'joined' / 'REPORT.md').read_text()
    assert '| csba vs sum | 2 |' in report and '] (seed 0) |' in report
    assert 'over test images (seed 0 only; no test predictions of sum.s1) ' in report
    seed_0 = study_comparisons.compare_arms(table, records, 'csba', 'sum', 'smoke', study_aggregate.STUDY,
                                            resamples=20)['bootstraps']['macro_f1']
    labels, csba = load_predictions(records / 'smoke' / 'csba.s0' / 'test_predictions.csv')
    _, sum_ = load_predictions(records / 'smoke' / 'sum.s0' / 'test_predictions.csv')
    assert seed_0.estimate == pytest.approx(macro_f1(labels, csba, 4) - macro_f1(labels, sum_, 4))

    other = records / 'smoke' / study_rows.ROWS_WITHOUT_RECORDS  # a row filed under the wrong recipe
    kept.assign(recipe='hub96').to_csv(other, index=False)
    with pytest.raises(SystemExit, match="holds a row of recipe 'hub96'; move it to .*hub96/rows_without_records"):
        study_aggregate.aggregate(records, ['smoke'], tmp_path / 'wrong', resamples=20)


def test_the_model_card_quotes_the_runs_row_of_the_study_report(grid, tmp_path):
    """`python -m timm_csba.hub export RUN --study results.csv`: the card gives the run's arm as the report does."""
    study = tmp_path / 'study'
    study_aggregate.aggregate(grid, ['smoke'], study, resamples=20)
    staged = export_run(grid / 'smoke' / 'csba.s0', tmp_path / 'csba_squeeze.smoke', study=study / 'results.csv')
    text = ModelCard.load(staged / 'README.md').text
    assert '## In the ELPV study' in text and f'`{study / "REPORT.md"}`' in text and 'seeds 0, 1)' in text
    card_row = next(line for line in text.splitlines() if line.startswith('| 2 |'))
    # the report's row is arm | seeds | the card's columns | magnitude init -> trained
    assert f'| csba {card_row}' in (study / 'REPORT.md').read_text()

    sum_only = tmp_path / 'sum_only.csv'
    sum_only.write_text(''.join(line for line in (study / 'results.csv').open() if ',csba,' not in line))
    with pytest.raises(HubError, match='no row for smoke/csba.s0.*aggregate.py'):
        export_run(grid / 'smoke' / 'csba.s0', tmp_path / 'out', study=sum_only)
    older = tmp_path / 'older.csv'  # a results.csv from before a column the card quotes
    pd.read_csv(study / 'results.csv').drop(columns='backbone_cosine_init').to_csv(older, index=False)
    with pytest.raises(HubError, match='lacks the columns backbone_cosine_init.*aggregate.py'):
        export_run(grid / 'smoke' / 'csba.s0', tmp_path / 'out', study=older)
    assert not (tmp_path / 'out').exists()


def test_update_study_requotes_the_card_when_seeds_join(grid, tmp_path, capsys):
    """`python -m timm_csba.hub update-study FOLDER`: seeds trained after the export join the card's study row;
    the weights and the run's record stay as exported."""
    study = tmp_path / 'study'
    study_aggregate.aggregate(grid, ['smoke'], study, resamples=20)
    at_export = tmp_path / 'at_export.csv'  # the study when seed 0 was exported: seed 1 not trained yet
    table = pd.read_csv(study / 'results.csv')
    table[table.seed == 0].to_csv(at_export, index=False)
    staged = export_run(grid / 'smoke' / 'csba.s0', tmp_path / 'csba_squeeze.smoke', study=at_export)
    before = {p.relative_to(staged): p.read_bytes() for p in staged.rglob('*') if p.is_file()}
    assert json.loads((staged / 'study.json').read_text())['seeds'] == [0]

    hub_main(['update-study', str(staged), '--study', str(study / 'results.csv')])
    assert 'the card quotes seeds 0, 1 of' in capsys.readouterr().out
    after = {p.relative_to(staged): p.read_bytes() for p in staged.rglob('*') if p.is_file()}
    assert set(after) == set(before)
    assert sorted(str(k) for k in after if after[k] != before[k]) == ['README.md', 'study.json']
    assert json.loads((staged / 'study.json').read_text())['seeds'] == [0, 1]
    assert 'seeds 0, 1)' in ModelCard.load(staged / 'README.md').text

    plain = export_run(grid / 'smoke' / 'csba.s0', tmp_path / 'plain')  # exported without --study
    with pytest.raises(SystemExit, match='quotes no study .*export RUN --to .*plain --study'):
        hub_main(['update-study', str(plain)])
    table[table.arm == 'sum'].to_csv(tmp_path / 'sum_only.csv', index=False)
    with pytest.raises(SystemExit, match='no row for smoke/csba.s0'):
        hub_main(['update-study', str(staged), '--study', str(tmp_path / 'sum_only.csv')])
    assert json.loads((staged / 'study.json').read_text())['seeds'] == [0, 1]  # left as it was


def test_paired_seed_test_by_hand():
    a, b = [0.50, 0.55, 0.60, 0.52, 0.58], [0.45, 0.50, 0.50, 0.50, 0.50]
    diff = np.subtract(a, b)  # 0.05 0.05 0.10 0.02 0.08: all positive
    result = paired_seed_test(a, b)
    assert result.n == 5 and result.mean_difference == pytest.approx(0.06)
    assert result.std_difference == pytest.approx(math.sqrt(np.sum((diff - 0.06) ** 2) / 4))
    t = 0.06 / (result.std_difference / math.sqrt(5))
    from scipy.stats import t as student
    assert result.ttest_p == pytest.approx(2 * student.sf(t, df=4))
    assert result.wilcoxon_p == pytest.approx(2 / 32)  # exact: only 1 of the 2^5 sign patterns is as extreme, x2
    assert paired_seed_test([0.5, 0.6], [0.5, 0.6]).ttest_p == 1.0
    assert mean_std([1.0, 2.0, 3.0, float('nan')]) == (2.0, 1.0)
    # the report (NaN) and the cards (None from JSON) print a missing value the same way
    assert format_mean_std(*mean_std([0.5, 0.6])) == '0.550 ± 0.071'
    assert format_mean_std(*mean_std([0.5])) == format_mean_std(0.5, None) == '0.500'
    assert format_mean_std(*mean_std([])) == format_mean_std(None) == '—'


def test_macro_f1_and_bootstrap_by_hand():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 300)
    a = np.where(rng.random((3, 300)) < 0.7, labels, rng.integers(0, 4, (3, 300)))
    b = np.where(rng.random((3, 300)) < 0.5, labels, rng.integers(0, 4, (3, 300)))
    for seed in range(3):
        assert macro_f1(labels, a[seed], 4) == pytest.approx(f1_score(labels, a[seed], average='macro'))
    assert macro_f1(labels, np.zeros(300, int), 4) == pytest.approx(
        f1_score(labels, np.zeros(300, int), average='macro', labels=[0, 1, 2, 3], zero_division=0))
    interval = bootstrap_difference(labels, a, b, 4, resamples=300)
    by_hand = np.mean([f1_score(labels, p, average='macro') for p in a]) - \
        np.mean([f1_score(labels, p, average='macro') for p in b])
    assert interval.estimate == pytest.approx(by_hand) and interval.low < by_hand < interval.high and interval.low > 0
    same = bootstrap_difference(labels, a, a, 4, resamples=50)
    assert (same.estimate, same.low, same.high) == (0.0, 0.0, 0.0)


def test_balanced_accuracy_and_its_bootstrap_by_hand():
    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1, 2, 3], [200, 60, 30, 10])  # imbalanced, so balanced accuracy is not accuracy
    a = np.where(rng.random((3, 300)) < 0.8, labels, rng.integers(0, 4, (3, 300)))
    b = np.where(rng.random((3, 300)) < 0.4, labels, rng.integers(0, 4, (3, 300)))
    for seed in range(3):
        assert balanced_accuracy(labels, a[seed], 4) == pytest.approx(balanced_accuracy_score(labels, a[seed]))
    # a class absent from the labels is left out, as scikit-learn does (it warns); predicting it still costs
    assert balanced_accuracy(np.array([0, 0, 1]), np.array([0, 2, 1]), 3) == pytest.approx((0.5 + 1) / 2)
    interval = bootstrap_difference(labels, a, b, 4, metric=balanced_accuracy, resamples=300)
    by_hand = np.mean([balanced_accuracy_score(labels, p) for p in a]) - \
        np.mean([balanced_accuracy_score(labels, p) for p in b])
    assert interval.estimate == pytest.approx(by_hand) and 0 < interval.low < by_hand < interval.high


def test_conflict_vs_f1_pools_grades_and_runs():
    rows = []
    for seed, shift in enumerate((0.0, 0.05)):  # more conflict (a more negative cosine), lower F1
        row = {'recipe': 'x', 'arm': 'csba', 'seed': seed}
        for i, grade in enumerate(GRADES):
            row[f'conflict_{grade}_trained'] = -0.4 + 0.1 * i + shift
            row[f'f1_{grade}'] = 0.2 + 0.2 * i + 2 * shift
        rows.append(row)
    result = study_comparisons.conflict_vs_f1(pd.DataFrame(rows), GRADES)
    assert result['n'] == 8 and result['rho'] == pytest.approx(1.0)
    # swap the F1 of the 2nd and 3rd most conflicted grades: d = 1 twice, rho = 1 - 6 * 2 / (8 * (64 - 1))
    rows[1]['f1_functional'], rows[0]['f1_possibly_defective'] = 0.4, 0.3
    assert study_comparisons.conflict_vs_f1(pd.DataFrame(rows), GRADES)['rho'] == pytest.approx(1 - 12 / 504)


def test_conflict_vs_f1_within_grade_removes_the_grades_own_differences():
    # grades ordered one way (a grade with more conflict has a higher F1), runs the other: within every grade the
    # run with more conflict (cosine 1/16 below the grade's mean) has the lower F1 (by 1/64); binary fractions, so
    # the centred values tie exactly
    rows = []
    for seed, shift in enumerate((-1 / 16, 1 / 16)):
        row = {'recipe': 'x', 'arm': 'csba', 'seed': seed}
        for i, grade in enumerate(GRADES):
            row[f'conflict_{grade}_trained'] = -0.25 * i + shift
            row[f'f1_{grade}'] = 0.25 * i + shift / 4
        rows.append(row)
    table = pd.DataFrame(rows)
    # pooled, by rank: grade 3's runs hold conflict ranks 1, 2 and F1 ranks 7, 8, ... so d = -6, -6, -2, -2, 2, 2, 6, 6
    assert study_comparisons.conflict_vs_f1(table, GRADES)['rho'] == pytest.approx(1 - 6 * 160 / (8 * 63))
    within = study_comparisons.conflict_vs_f1(table, GRADES, within_class=True)
    # centred: (-1/16, -1/64) and (+1/16, +1/64) for each of the 4 grades, two tied groups of 4: rho = 1
    assert within['n'] == 8 and within['rho'] == pytest.approx(1.0)


def _comparison(a, b, macro=0.0, p=0.5, interval=None, f1_likely=0.0, p_likely=0.5, cosine=0.0, p_cosine=0.5):
    """A compare_arms result with the given macro-F1, likely_defective F1 and backbone cosine differences."""
    from timm_csba.stats import BootstrapInterval, SeedComparison
    null = SeedComparison(5, 0.0, 0.01, 1.0, 1.0)
    boot = None if interval is None else BootstrapInterval(macro, *interval, 0.95, 200)
    return {'a': a, 'b': b, 'seeds': list(range(5)), 'bootstraps': {} if boot is None else {'macro_f1': boot},
            'without_predictions': [],
            'bootstrap_seeds': [] if boot is None else list(range(5)),
            'macro_f1': SeedComparison(5, macro, 0.01, p, p), 'f1_possibly_defective': null,
            'f1_likely_defective': SeedComparison(5, f1_likely, 0.01, p_likely, p_likely),
            'backbone_cosine_trained': SeedComparison(5, cosine, 0.01, p_cosine, p_cosine),
            'backbone_magnitude_trained': null}


def _grades_table():
    row = {'recipe': 'x', 'arm': 'csba', 'seed': 0}
    for i, grade in enumerate(GRADES):  # functional: the most conflicted grade and the best F1
        row[f'conflict_{grade}_trained'], row[f'f1_{grade}'] = -0.4 + 0.1 * i, 0.9 - 0.2 * i
    return pd.DataFrame([row])


def _answers(comparisons, within_rho=0.1, within_p=0.6):
    lines = study_conclusion.conclusion(_grades_table(), comparisons, {'rho': -0.7, 'p_value': 0.001, 'n': 40},
                                    {'rho': within_rho, 'p_value': within_p, 'n': 40})
    return {line.split('**')[1]: line.split('**')[2] for line in lines}


def test_the_conclusion_answers_each_question_from_the_shown_differences():
    csba_sum = _comparison('csba', 'sum', macro=0.05, p=0.01, interval=(0.02, 0.08), f1_likely=0.10, p_likely=0.01,
                           cosine=0.04, p_cosine=0.02)
    # CSBA beats its capacity control as it beats sum, and the control does not beat sum: the gates carry it
    answers = _answers([csba_sum, _comparison('csba', 'shared', 0.04, 0.02, (0.01, 0.07)),
                        _comparison('shared', 'sum', 0.01, 0.4, (-0.02, 0.04))], within_rho=0.4, within_p=0.01)
    assert answers['Does CSBA reduce gradient conflict?'].startswith(' Yes, CSBA ends training with less backbone')
    assert answers['Does CSBA beat the summed baseline on the minority grades?'].startswith(' Yes, on likely_defective:')
    assert 'csba scores higher macro-F1 than sum' in answers['Does CSBA beat the summed baseline on the minority grades?']
    assert answers['Does the shared-gate control explain the difference?'].startswith(' No: CSBA also differs')
    assert answers['Does gradient conflict predict per-grade F1?'].startswith(
        ' Yes, within grades: a grade scores lower F1 in the runs where it conflicts more')
    assert 'functional both conflicts most and scores best' in answers['Does gradient conflict predict per-grade F1?']

    # the control gains over sum as CSBA does, and CSBA does not beat it: capacity
    answers = _answers([csba_sum, _comparison('csba', 'shared', 0.01, 0.5, (-0.02, 0.03)),
                        _comparison('shared', 'sum', 0.04, 0.01, (0.01, 0.07))])
    assert answers['Does the shared-gate control explain the difference?'].startswith(' Yes: the shared gate')
    assert answers['Does gradient conflict predict per-grade F1?'].startswith(' Not shown')

    # a seed-paired p below 0.05 without test predictions (no bootstrap) shows no macro-F1 difference
    no_bootstrap = _comparison('csba', 'sum', macro=0.05, p=0.01, f1_likely=-0.1, p_likely=0.01)
    no_bootstrap['without_predictions'] = ['sum.s0']
    answers = _answers([no_bootstrap, _comparison('csba', 'shared'), _comparison('shared', 'sum')])
    assert answers['Does CSBA reduce gradient conflict?'].startswith(' Not shown')
    assert answers['Does CSBA beat the summed baseline on the minority grades?'].startswith(
        ' No, it is worse on likely_defective')
    assert 'no test predictions of sum.s0' in answers['Does CSBA beat the summed baseline on the minority grades?']
    assert answers['Does the shared-gate control explain the difference?'].startswith(' There is no shown difference')
    assert _answers([csba_sum])['Does the shared-gate control explain the difference?'].startswith(' Not measured')
    assert study_conclusion.conclusion(_grades_table(), [], {}, {}) == [
        '- Nothing to conclude yet: csba and sum need at least two seeds in common.']

    # a shown change in the other direction: CSBA conflicts more, so it does not reduce conflict
    more_conflict = _comparison('csba', 'sum', cosine=-0.04, p_cosine=0.02)
    answers = _answers([more_conflict, _comparison('csba', 'shared'), _comparison('shared', 'sum')])
    assert answers['Does CSBA reduce gradient conflict?'].startswith(' No, CSBA ends training with more backbone')


@pytest.mark.parametrize('study', ['elpv', 'fmnist_lt'])
def test_every_arm_of_every_recipe_passes_train_pys_checks(study, tmp_path):
    """A grid whose arm train.py would refuse fails hours into a study; its flags are checked here in seconds."""
    spec = importlib.util.spec_from_file_location('train', ROOT / 'train.py')
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    grid = importlib.import_module(f'studies.{study}.run').GRID
    for recipe, (config, flags) in grid.recipes.items():
        for arm, arm_flags in grid.arms.items():
            argv = ['--config', str(ROOT / config), *flags, *arm_flags, '--seed', '0', '--output-dir',
                    str(tmp_path / recipe / arm)]
            train.check_args(train.resolve_config(train.build_parser(), argv))
