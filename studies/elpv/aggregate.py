"""Issue 14's study, read: one CSV row per finished run, the statistics, the plots and REPORT.md.

    python studies/elpv/aggregate.py                              # studies/elpv/records/<recipe>/* -> studies/elpv/
    python studies/elpv/aggregate.py --runs runs/elpv_study       # the run folders themselves (this session's)
    python studies/elpv/aggregate.py --out /tmp/study             # a report elsewhere, results.csv left as it is

Reads each finished run's args.yaml, test_metrics.json, test_predictions.csv, metrics.jsonl and
diagnostics/diagnostics.json (a run without diagnostics is left out and listed), by default from the records the
runner keeps in git. Runs finished before records were kept survive only as their rows in
records/<recipe>/rows_without_records.csv: their rows join the table and the tests over seeds, and the bootstrap
over test images, which needs predictions, resamples the seeds that kept them and names the runs left out. The
seed-0 runs among them whose weights are published were recorded afterwards from their hub/ folder (the run's
args.yaml, metrics, test metrics, provenance and diagnostics), with test_predictions.csv from `python -m
timm_csba.evaluate local-dir:hub/<arch>.elpv --split test`, which gives the run's confusion matrix exactly; their
rows equal the ones kept before. Writes results.csv (one row per run), REPORT.md and plots/*.png next to this file.
"""
import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from studies.elpv.run import ARMS, RECIPES, RECORDS  # noqa: E402
from timm_csba.diagnostics import RunDiagnostics  # noqa: E402
from timm_csba.diagnostics import spearman  # noqa: E402
from timm_csba.metrics import load_predictions  # noqa: E402
from timm_csba.runs import positive_int, study_run_dir, study_run_of  # noqa: E402
from timm_csba.stats import bootstrap_macro_f1_difference, mean_std, paired_seed_test  # noqa: E402
from timm_csba.stats import format_mean_std as _fmt  # noqa: E402

HERE = Path(__file__).resolve().parent
GRADES = ('functional', 'possibly_defective', 'likely_defective', 'defective')
MINORITY = ('possibly_defective', 'likely_defective')
SETS = ('backbone', 'stem', 'stages.0', 'stages.1', 'stages.2', 'stages.3', 'head')
# (title, file) of the figures each recipe gets in plots/<recipe>/
PLOTS = (('F1 by arm', 'f1_by_arm.png'), ('conflict', 'conflict_init_vs_trained.png'),
         ('conflict vs F1', 'conflict_vs_f1.png'))
# after-training backbone conflict, compared between arms as the F1s are: does an architecture reduce conflict?
CONFLICT_TRAINED = ('backbone_cosine_trained', 'backbone_magnitude_trained')
ALPHA = 0.05  # a seed-paired difference counts when its t-test p is below this
# rows of runs whose folders were gone before the runner kept records, one file per recipe's folder
ROWS_WITHOUT_RECORDS = 'rows_without_records.csv'
# the comparisons the referee asked for: CSBA against the summed baseline and against its capacity control
COMPARISONS = (('csba', 'sum'), ('csba', 'shared'), ('shared', 'sum'), ('gradnorm', 'sum'), ('heads', 'sum'),
               ('sum_focal', 'sum'))


# ------------------------------------------------------------------------------------------------ one row per run


def _mean_off_diagonal(matrix: np.ndarray) -> float:
    """Mean over classes of the off-diagonal entries of each class's [B, B] matrix (NaN without two branches)."""
    values = [m[i, j] for m in matrix for i in range(len(m)) for j in range(len(m)) if i != j]
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else math.nan


def run_row(run: Path) -> Dict[str, Any]:
    """The CSV row of one finished, diagnosed run."""
    args = yaml.safe_load((run / 'args.yaml').read_text())
    test = json.loads((run / 'test_metrics.json').read_text())
    history = [json.loads(line) for line in (run / 'metrics.jsonl').read_text().splitlines()]
    report = RunDiagnostics.from_json(json.loads((run / 'diagnostics' / 'diagnostics.json').read_text()))
    trained, init = report.diagnostics, report.compare
    names = trained.class_names
    recipe, arm = study_run_of(run)
    row: Dict[str, Any] = {
        'recipe': recipe, 'arm': arm, 'architecture': args['model'],
        'loss': args['loss'], 'seed': args['seed'], 'epochs': len(history), 'best_epoch': test['best_epoch'],
        'train_hours': sum(r.get('epoch_time_s', 0) for r in history) / 3600,
        'accuracy': test['accuracy'], 'balanced_accuracy': test['balanced_accuracy'], 'macro_f1': test['macro_f1'],
        **{f'f1_{n}': test['per_class'][n]['f1'] for n in names},
    }
    for name in SETS:
        for kind in ('cosine', 'magnitude'):
            for when, diagnostics in (('init', init), ('trained', trained)):
                stats = diagnostics.parameter_sets.get(name) if diagnostics is not None else None
                row[f'{name}_{kind}_{when}'] = stats.summary[kind].mean_off_diagonal if stats else math.nan
    for when, diagnostics in (('init', init), ('trained', trained)):
        stats = diagnostics.parameter_sets['backbone']
        row[f'backbone_cosine_negpairs_{when}'] = stats.summary['cosine'].mean_most_negative_pairs
        # a grade's mean cosine with the other grades: what the Spearman against its F1 pools
        for n, value in zip(names, stats.row_mean_cosine()):
            row[f'conflict_{n}_{when}'] = value
    shares = trained.branches.grad_shares.numpy() if trained.branches is not None else None
    for b in range(3):
        row[f'branch{b}_grad_share'] = float(np.nanmean(shares[b])) if shares is not None else math.nan
    row['attention_jaccard'] = _mean_off_diagonal(trained.attention.jaccard.numpy()) if trained.attention else math.nan
    return row


def collect(runs: Path, recipes: Sequence[str]) -> tuple:
    """(rows of the diagnosed runs, names of finished runs without diagnostics) under runs/<recipe>/, with the
    rows of runs/<recipe>/rows_without_records.csv for the runs that have no folder there."""
    rows, undiagnosed = [], []
    for recipe in recipes:
        folders = sorted(p for p in (runs / recipe).glob('*.s*') if p.is_dir() and not p.name.startswith('.'))
        for run in folders:
            if not (run / 'test_metrics.json').exists():
                continue
            if not (run / 'diagnostics' / 'diagnostics.json').exists():
                undiagnosed.append(f'{recipe}/{run.name}')
                continue
            rows.append(run_row(run))
        kept = runs / recipe / ROWS_WITHOUT_RECORDS
        if kept.exists():
            names = {run.name for run in folders}
            for row in pd.read_csv(kept).to_dict('records'):
                if row['recipe'] != recipe:
                    raise SystemExit(f'error: {kept} holds a row of recipe {row["recipe"]!r}; move it to '
                                     f'{runs / row["recipe"] / ROWS_WITHOUT_RECORDS}.')
                if study_run_dir(runs, recipe, row['arm'], row['seed']).name not in names:
                    rows.append(row)
    order = {recipe: i for i, recipe in enumerate(recipes)}
    arms = {arm: i for i, arm in enumerate(ARMS)}
    rows.sort(key=lambda r: (order[r['recipe']], arms.get(r['arm'], len(arms)), r['arm'], r['seed']))
    return rows, undiagnosed


# ------------------------------------------------------------------------------------------------ statistics


def arm_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per recipe and arm: the number of seeds and mean ± std of each test metric and conflict summary."""
    metrics = ['accuracy', 'balanced_accuracy', 'macro_f1', *(f'f1_{g}' for g in GRADES),
               'backbone_cosine_init', 'backbone_cosine_trained', 'backbone_magnitude_init',
               'backbone_magnitude_trained']
    out = []
    for (recipe, arm), group in table.groupby(['recipe', 'arm'], sort=False):
        record = {'recipe': recipe, 'arm': arm, 'seeds': len(group)}
        for metric in metrics:
            record[metric], record[f'{metric}_std'] = mean_std(group[metric].tolist())
        out.append(record)
    return pd.DataFrame(out)


def compare_arms(table: pd.DataFrame, runs: Path, a: str, b: str, recipe: str, resamples: int = 2000) -> Dict:
    """a vs b on the seeds both have: paired tests over seeds (macro-F1, minority grades) and the image bootstrap
    of the macro-F1 difference (the same test images; every seed of each whose test predictions were kept)."""
    rows = table[table.recipe == recipe]
    seeds = sorted(set(rows[rows.arm == a].seed) & set(rows[rows.arm == b].seed))
    if len(seeds) < 2:
        return {}

    def values(arm, column):
        by_seed = rows[rows.arm == arm].set_index('seed')[column]
        return [float(by_seed[s]) for s in seeds]

    result = {'a': a, 'b': b, 'seeds': seeds, 'bootstrap': None, 'without_predictions': [], 'bootstrap_seeds': []}
    for column in ('macro_f1', *(f'f1_{g}' for g in MINORITY), *CONFLICT_TRAINED):
        result[column] = paired_seed_test(values(a, column), values(b, column))
    files = {(arm, seed): study_run_dir(runs, recipe, arm, seed) / 'test_predictions.csv' for arm in (a, b)
             for seed in seeds}
    result['without_predictions'] = [path.parent.name for path in files.values() if not path.exists()]
    # runs finished before records were kept have no predictions: resample over the seeds that both arms kept
    result['bootstrap_seeds'] = [s for s in seeds if files[a, s].exists() and files[b, s].exists()]
    if not result['bootstrap_seeds']:
        return result
    labels, predictions = None, {a: [], b: []}
    for arm in (a, b):
        for seed in result['bootstrap_seeds']:
            y, p = load_predictions(files[arm, seed])
            labels = y if labels is None else labels
            if not np.array_equal(labels, y):
                raise ValueError(f'{arm}.s{seed} was tested on other images than {a}.s{seeds[0]}')
            predictions[arm].append(p)
    result['bootstrap'] = bootstrap_macro_f1_difference(labels, np.stack(predictions[a]), np.stack(predictions[b]),
                                                        num_classes=len(GRADES), resamples=resamples)
    return result


def conflict_vs_f1(table: pd.DataFrame, when: str = 'trained', within_grade: bool = False) -> Dict[str, Any]:
    """Spearman between a grade's backbone conflict (its mean cosine with the other grades) and its F1, pooled
    over runs and grades (each run contributes its four grades). Pooled, the grades' own differences can dominate
    (on ELPV the majority grade has both the most negative cosine and the best F1); `within_grade` subtracts each
    grade's mean over the runs from both, asking whether a grade does worse in the runs where it conflicts more."""
    conflict = table[[f'conflict_{grade}_{when}' for grade in GRADES]].astype(float)
    f1 = table[[f'f1_{grade}' for grade in GRADES]].astype(float)
    if within_grade:  # pandas' means skip NaN, and a grade that no run diagnosed stays NaN without a warning
        conflict, f1 = conflict - conflict.mean(), f1 - f1.mean()
    return spearman(conflict.to_numpy().ravel().tolist(), f1.to_numpy().ravel().tolist())


def rank_agreement(summary: pd.DataFrame, recipe_a: str, recipe_b: str) -> Optional[Dict[str, Any]]:
    """Do two recipes rank the arms alike? Spearman of the arms' mean macro-F1 under each (arms in both)."""
    a = summary[summary.recipe == recipe_a].set_index('arm').macro_f1
    b = summary[summary.recipe == recipe_b].set_index('arm').macro_f1
    arms = [arm for arm in a.index if arm in b.index]
    if len(arms) < 3:
        return None
    return {'arms': arms, **spearman([a[x] for x in arms], [b[x] for x in arms])}


# ------------------------------------------------------------------------------------------------ report


def macro_f1_shown(comparison: Dict) -> bool:
    """A macro-F1 difference counts when the seed-paired t-test gives p < ALPHA and the image bootstrap interval
    excludes 0 (over the seeds with test predictions, `compare_arms`); without any bootstrap (no seed pair kept its
    test predictions) the seed test alone does not show one."""
    boot = comparison['bootstrap']
    return comparison['macro_f1'].ttest_p < ALPHA and boot is not None and (boot.low > 0 or boot.high < 0)


def verdict(comparison: Dict) -> str:
    """Plain words for a vs b on macro-F1 (`macro_f1_shown`): a difference or 'no difference is shown'."""
    seed_test, boot = comparison['macro_f1'], comparison['bootstrap']
    a, b = comparison['a'], comparison['b']
    shown = macro_f1_shown(comparison)
    direction = 'higher' if seed_test.mean_difference > 0 else 'lower'
    words = (f'{a} scores {direction} macro-F1 than {b}' if shown
             else f'no difference in macro-F1 between {a} and {b} is shown')
    images = (f'over test images{_bootstrap_subset(comparison)} {boot.estimate:+.3f}, {boot.confidence:.0%} CI '
              f'[{boot.low:+.3f}, {boot.high:+.3f}]' if boot is not None else _no_bootstrap(comparison))
    return (f'{words} (difference {seed_test.mean_difference:+.3f} over {seed_test.n} seeds, paired t p = '
            f'{_fmt(seed_test.ttest_p)}, Wilcoxon p = {_fmt(seed_test.wilcoxon_p)}; {images})')


def _no_bootstrap(comparison: Dict) -> str:
    return f'no bootstrap over test images: no test predictions of {", ".join(comparison["without_predictions"])}'


def _bootstrap_subset(comparison: Dict) -> str:
    """' (seeds 3, 4 only; no test predictions of ...)' when the bootstrap left seeds out, else ''."""
    if not comparison['without_predictions']:
        return ''
    return (f' ({_seeds(comparison["bootstrap_seeds"])} only; no test predictions of '
            f'{", ".join(comparison["without_predictions"])})')


def _seeds(seeds: Sequence[int]) -> str:
    return f'seed{"s" * (len(seeds) > 1)} {", ".join(map(str, seeds))}'


def _shown(seed_test) -> bool:
    return seed_test.ttest_p < ALPHA


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]  # str.capitalize would lower-case the rest, CSBA included


def _difference(seed_test, what: str) -> str:
    return f'{what} {seed_test.mean_difference:+.3f} (paired t p = {_fmt(seed_test.ttest_p)}, n = {seed_test.n})'


def conclusion(table: pd.DataFrame, comparisons: Sequence[Dict], pooled: Dict[str, Any],
               within: Dict[str, Any]) -> List[str]:
    """The issue's four questions answered in plain words from one recipe's numbers. A difference between arms
    counts when its seed-paired t-test gives p < ALPHA (for macro-F1 the image bootstrap interval must also exclude
    0: `macro_f1_shown`); the answer says 'not shown' otherwise, never 'no effect'."""
    by_pair = {(c['a'], c['b']): c for c in comparisons}
    csba_sum, csba_shared, shared_sum = (by_pair.get(pair) for pair in
                                         (('csba', 'sum'), ('csba', 'shared'), ('shared', 'sum')))
    lines = []
    if csba_sum is None:
        return ['- Nothing to conclude yet: csba and sum need at least two seeds in common.']

    cosine, magnitude = (csba_sum[column] for column in CONFLICT_TRAINED)
    if _shown(cosine) or _shown(magnitude):
        # a higher (less negative) cosine after training is less conflict
        direction = 'less' if (cosine if _shown(cosine) else magnitude).mean_difference > 0 else 'more'
        answer = f'yes, CSBA ends training with {direction} backbone conflict than sum'
    else:
        answer = 'not shown'
    lines.append(f'- **Does CSBA reduce gradient conflict?** {_sentence(answer)}: after training, '
                 f'{_difference(cosine, "cosine csba − sum")}, {_difference(magnitude, "magnitude-aware")}; a '
                 f'higher (less negative) value is less conflict.')

    minority = {g: csba_sum[f'f1_{g}'] for g in MINORITY}
    better = [g for g, t in minority.items() if _shown(t) and t.mean_difference > 0]
    worse = [g for g, t in minority.items() if _shown(t) and t.mean_difference < 0]
    answer = ('yes, on ' + ' and '.join(better) if better and not worse else
              'no, it is worse on ' + ' and '.join(worse) if worse and not better else
              'mixed' if better else 'not shown')
    lines.append(f'- **Does CSBA beat the summed baseline on the minority grades?** {_sentence(answer)}: ' +
                 ', '.join(_difference(t, f'F1 {g} csba − sum') for g, t in minority.items()) +
                 f'; {verdict(csba_sum)}.')

    if csba_shared is None or shared_sum is None:
        lines.append('- **Does the shared-gate control explain the difference?** Not measured yet: the shared arm '
                     'needs at least two seeds in common with csba and sum.')
    else:
        macro = {pair: c['macro_f1'] for pair, c in by_pair.items()}
        sign = np.sign(macro['csba', 'sum'].mean_difference)

        def moves_like_csba(comparison):  # a shown macro-F1 difference in the direction csba differs from sum
            return macro_f1_shown(comparison) and np.sign(comparison['macro_f1'].mean_difference) == sign

        gate, capacity = moves_like_csba(csba_shared), moves_like_csba(shared_sum)
        if not macro_f1_shown(csba_sum):
            answer = 'there is no shown difference between csba and sum to explain'
        elif gate and not capacity:
            answer = 'no: CSBA also differs from its capacity control, so the branch-specific attention, not the ' \
                     'added gate parameters, carries the difference'
        elif capacity and not gate:
            answer = 'yes: the shared gate differs from sum as CSBA does, so capacity explains the difference'
        else:
            answer = 'undecided: neither the control nor CSBA\'s own gates alone account for the difference'
        lines.append(f'- **Does the shared-gate control explain the difference?** {_sentence(answer)}: '
                     f'{_difference(macro["csba", "shared"], "macro-F1 csba − shared")}, '
                     f'{_difference(macro["shared", "sum"], "shared − sum")}.')

    answer = ('yes, within grades: a grade scores ' + ('lower' if within['rho'] > 0 else 'higher') +
              ' F1 in the runs where it conflicts more' if within['p_value'] < ALPHA else 'not shown')
    lines.append(f'- **Does gradient conflict predict per-grade F1?** {_sentence(answer)}: within each grade, '
                 f'Spearman rho = {_fmt(within["rho"])} (p = {_fmt(within["p_value"])}, n = {within["n"]}) '
                 f'between its mean backbone cosine with the other grades and its F1. Pooled over grades rho = '
                 f'{_fmt(pooled["rho"])} (p = {_fmt(pooled["p_value"])}), which mixes the grades\' own differences '
                 f'with any effect of conflict{_grade_extremes(table)}.')
    return lines


def _grade_extremes(table: pd.DataFrame) -> str:
    """': <grade> both conflicts most and scores best' when one grade does both (mean over runs), else ''."""
    conflict = {g: table[f'conflict_{g}_trained'].mean() for g in GRADES}
    f1 = {g: table[f'f1_{g}'].mean() for g in GRADES}
    most_conflicted, best = min(conflict, key=conflict.get), max(f1, key=f1.get)
    return f': {best} both conflicts most and scores best' if most_conflicted == best else ''


def plot(table: pd.DataFrame, out: Path) -> List[str]:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    out.mkdir(parents=True, exist_ok=True)
    arms = [arm for arm in ARMS if arm in set(table.arm)]
    written = []

    fig, axes = plt.subplots(1, len(GRADES), figsize=(4 * len(GRADES), 3.5), sharey=True)
    for ax, grade in zip(axes, GRADES):
        for i, arm in enumerate(arms):
            values = table[table.arm == arm][f'f1_{grade}']
            ax.scatter([i] * len(values), values, alpha=0.6)
            ax.hlines(values.mean(), i - 0.3, i + 0.3, color='k')
        ax.set_xticks(range(len(arms)), arms, rotation=45)
        ax.set_title(f'test F1, {grade}')
    fig.tight_layout()
    fig.savefig(out / 'f1_by_arm.png', dpi=110)
    plt.close(fig)
    written.append('f1_by_arm.png')

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for ax, kind in zip(axes, ('cosine', 'magnitude')):
        width = 0.4
        for j, when in enumerate(('init', 'trained')):
            means = [table[table.arm == arm][f'backbone_{kind}_{when}'].mean() for arm in arms]
            stds = [table[table.arm == arm][f'backbone_{kind}_{when}'].std() for arm in arms]
            ax.bar(np.arange(len(arms)) + (j - 0.5) * width, means, width, yerr=stds, label=when)
        ax.axhline(0, color='k', lw=0.5)
        ax.set_xticks(range(len(arms)), arms, rotation=45)
        ax.set_title(f'backbone {kind} conflict (mean off-diagonal)')
        ax.legend()
    fig.tight_layout()
    fig.savefig(out / 'conflict_init_vs_trained.png', dpi=110)
    plt.close(fig)
    written.append('conflict_init_vs_trained.png')

    fig, ax = plt.subplots(figsize=(5, 4))
    for grade in GRADES:
        ax.scatter(table[f'conflict_{grade}_trained'], table[f'f1_{grade}'], label=grade, alpha=0.7)
    ax.set_xlabel("grade's mean backbone cosine with the other grades (trained)")
    ax.set_ylabel('test F1 of the grade')
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / 'conflict_vs_f1.png', dpi=110)
    plt.close(fig)
    written.append('conflict_vs_f1.png')
    return written


def report(table: pd.DataFrame, runs: Path, undiagnosed: Sequence[str], resamples: int = 2000) -> str:
    summary = arm_summary(table)
    lines = ['# ELPV study: gradient conflict and the minority grades (issue 14)', '',
             'Generated by `python studies/elpv/aggregate.py` from the records of `python studies/elpv/run.py` '
             '(`studies/elpv/records/`); every number below is recomputed from `results.csv` and the runs\' test '
             'predictions. Test split: split seed 0, 525 cells.', '']
    for recipe, group in table.groupby('recipe', sort=False):
        config, flags = RECIPES.get(recipe, ('?', []))
        lines += [f'## Recipe `{recipe}`: `{" ".join([config, *flags])}`', '',
                  f'{len(group)} runs, {group.train_hours.sum():.1f} training hours in all '
                  f'({group.train_hours.mean() * 60:.0f} min a run).', '',
                  '| arm | seeds | accuracy | macro-F1 | ' + ' | '.join(f'F1 {g}' for g in GRADES) +
                  ' | backbone cosine init → trained | magnitude init → trained |',
                  '|---|---|---|---|' + '---|' * len(GRADES) + '---|---|']
        for _, s in summary[summary.recipe == recipe].iterrows():
            lines.append(
                f'| {s.arm} | {s.seeds} | {_fmt(s.accuracy, s.accuracy_std)} | {_fmt(s.macro_f1, s.macro_f1_std)} | ' +
                ' | '.join(_fmt(s[f"f1_{g}"], s[f"f1_{g}_std"]) for g in GRADES) +
                f' | {_fmt(s.backbone_cosine_init, s.backbone_cosine_init_std)} → '
                f'{_fmt(s.backbone_cosine_trained, s.backbone_cosine_trained_std)} | '
                f'{_fmt(s.backbone_magnitude_init, s.backbone_magnitude_init_std)} → '
                f'{_fmt(s.backbone_magnitude_trained, s.backbone_magnitude_trained_std)} |')
        comparisons = [c for c in (compare_arms(group, runs, a, b, recipe, resamples) for a, b in COMPARISONS) if c]
        lines += ['', '### Paired comparisons', '']
        if comparisons:
            lines += ['| a vs b | seeds | macro-F1 a − b (seed-paired t p, Wilcoxon p) | image bootstrap 95% CI | ' +
                      ' | '.join(f'F1 {g} a − b (t p)' for g in MINORITY) + ' |',
                      '|---|---|---|---|' + '---|' * len(MINORITY)]
        else:
            lines.append('None yet: a comparison needs at least two seeds that both arms have.')
        others = []  # the comparisons the conclusion does not already quote
        for comparison in comparisons:
            a, b = comparison['a'], comparison['b']
            m, boot = comparison['macro_f1'], comparison['bootstrap']
            subset = f' ({_seeds(comparison["bootstrap_seeds"])})' if comparison['without_predictions'] else ''
            interval = ('— (runs without predictions)' if boot is None
                        else f'[{boot.low:+.3f}, {boot.high:+.3f}]{subset}')
            lines.append(f'| {a} vs {b} | {m.n} | {m.mean_difference:+.3f} ({_fmt(m.ttest_p)}, {_fmt(m.wilcoxon_p)}) | '
                         f'{interval} | ' +
                         ' | '.join(f'{comparison[f"f1_{g}"].mean_difference:+.3f} '
                                    f'({_fmt(comparison[f"f1_{g}"].ttest_p)})' for g in MINORITY) + ' |')
            if (a, b) != ('csba', 'sum'):
                others.append(verdict(comparison))
        layer = ['', '### Conflict per stage (cosine, mean off-diagonal, mean over seeds: init → trained)', '',
                 '| arm | ' + ' | '.join(SETS[1:]) + ' |', '|---|' + '---|' * len(SETS[1:])]
        for arm, runs_of_arm in group.groupby('arm', sort=False):
            layer.append(f'| {arm} | ' + ' | '.join(
                f'{runs_of_arm[f"{s}_cosine_init"].mean():+.3f} → {runs_of_arm[f"{s}_cosine_trained"].mean():+.3f}'
                for s in SETS[1:]) + ' |')
        lines += layer
        pooled, pooled_init = conflict_vs_f1(group), conflict_vs_f1(group, 'init')
        within = conflict_vs_f1(group, within_grade=True)
        lines += ['', '### Does conflict predict a grade\'s F1?', '',
                  f'Spearman between a grade\'s mean backbone cosine with the other grades and its test F1, pooled '
                  f'over every run and grade: after training rho = {_fmt(pooled["rho"])} (p = '
                  f'{_fmt(pooled["p_value"])}, n = {pooled["n"]}); at initialisation rho = '
                  f'{_fmt(pooled_init["rho"])} (p = {_fmt(pooled_init["p_value"])}, n = {pooled_init["n"]}). '
                  f'Pooled, the differences between the grades '
                  f'(frequency, difficulty) enter as well; within each grade (both centred on the grade\'s mean over '
                  f'runs), after training rho = {_fmt(within["rho"])} (p = '
                  f'{_fmt(within["p_value"])}, n = {within["n"]}). The pairs are not independent (four grades of one '
                  f'run share a model), so p is optimistic.', '',
                  '### In plain words', '', *conclusion(group, comparisons, pooled, within), '',
                  *(['The other comparisons:', '', *(f'- {v}.' for v in others), ''] if others else []),
                  *(f'![{title}](plots/{recipe}/{name})' for title, name in PLOTS), '']
    recipes = list(dict.fromkeys(table.recipe))
    for i, a in enumerate(recipes):
        for b in recipes[i + 1:]:
            agreement = rank_agreement(summary, a, b)
            if agreement:
                lines += [f'Recipes `{a}` and `{b}` rank the arms ({", ".join(agreement["arms"])}) with Spearman '
                          f'rho = {_fmt(agreement["rho"])} on mean macro-F1.', '']
    if undiagnosed:
        lines += [f'Finished but not yet diagnosed (left out): {", ".join(undiagnosed)}.', '']
    return '\n'.join(lines)


def aggregate(runs: Path, recipes: Sequence[str], out: Path, resamples: int = 2000) -> pd.DataFrame:
    from timm_csba.files import write_text
    rows, undiagnosed = collect(runs, recipes)
    if not rows:
        raise SystemExit(f'error: no finished, diagnosed runs under {runs} for {", ".join(recipes)}; run '
                         f'studies/elpv/run.py first.')
    table = pd.DataFrame(rows)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / 'results.csv', table.to_csv(index=False))
    for recipe, group in table.groupby('recipe', sort=False):
        plot(group, out / 'plots' / recipe)  # one recipe's runs per figure: arms compare within a recipe
    write_text(out / 'REPORT.md', report(table, runs, undiagnosed, resamples))
    return table


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--recipe', nargs='+', default=['hub96', 'hub'], help='recipes to read, in the report\'s order')
    parser.add_argument('--runs', type=Path, default=RECORDS,
                        help='the runner\'s records (default) or run folders, as <recipe>/<arm>.s<seed>')
    parser.add_argument('--out', type=Path, default=HERE, help='where results.csv, REPORT.md and plots/ go')
    parser.add_argument('--resamples', type=positive_int, default=2000, help='bootstrap resamples of the test images')
    args = parser.parse_args(argv)
    table = aggregate(args.runs, args.recipe, args.out, args.resamples)
    print(f'{len(table)} runs -> {args.out / "results.csv"}, {args.out / "REPORT.md"}')


if __name__ == '__main__':
    main()
