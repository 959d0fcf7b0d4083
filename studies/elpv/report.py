"""REPORT.md of the study: per recipe the arms' table, the paired comparisons, conflict per stage, conflict
against F1, and the issue's four questions answered in plain words."""
from pathlib import Path
from typing import Any, Dict, List, Sequence

import numpy as np
import pandas as pd

from studies.elpv.comparisons import (COMPARISONS, CONFLICT_TRAINED, MINORITY, arm_summary, compare_arms,
                                      conflict_vs_f1, rank_agreement)
from studies.elpv.plots import PLOTS
from studies.elpv.rows import GRADES, SETS
from studies.elpv.run import RECIPES
from timm_csba.stats import format_mean_std as _fmt

ALPHA = 0.05  # a seed-paired difference counts when its t-test p is below this


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


def summary_rows(recipe: str, answers: Sequence[str]) -> List[str]:
    """The REPORT's opening table, one row per question a recipe answers: the plain-words bullets of `conclusion`
    ('- **question** Verdict: the numbers') split into their columns."""
    rows = []
    for answer in answers:
        if '**' not in answer:  # nothing to conclude yet
            rows.append(f'| `{recipe}` | — | {answer[2:]} | — |')
            continue
        _, question, rest = answer.split('**', 2)
        verdict, _, numbers = rest.strip().partition(': ')
        rows.append(f'| `{recipe}` | {question} | **{verdict}** | {numbers} |')
    return rows


def report(table: pd.DataFrame, runs: Path, undiagnosed: Sequence[str], resamples: int = 2000) -> str:
    summary = arm_summary(table)
    verdicts = ['| recipe | question | verdict | the numbers |', '|---|---|---|---|']
    lines = []
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
        answers = conclusion(group, comparisons, pooled, within)
        verdicts += summary_rows(recipe, answers)
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
                  '### In plain words', '', *answers, '',
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
    head = ['# ELPV study: gradient conflict and the minority grades', '',
            'Generated by `python studies/elpv/aggregate.py` from the records of `python studies/elpv/run.py` '
            '(`studies/elpv/records/`); every number below is recomputed from `results.csv` and the runs\' test '
            'predictions. Test split: split seed 0, 525 cells. A difference counts as shown when its seed-paired '
            f't-test gives p < {ALPHA} (for macro-F1 the test-image bootstrap interval must also exclude 0).', '',
            '## Summary', '', *verdicts, '']
    return '\n'.join(head + lines)
