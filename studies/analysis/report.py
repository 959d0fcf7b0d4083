"""A study's REPORT.md: per recipe the arms' table, the paired comparisons, conflict per stage, conflict against
F1 and the study's questions answered in plain words (its `Study.conclusion`, built from the answers here that
every study with csba, sum and shared arms asks)."""
from pathlib import Path
from typing import Any, Dict, List, Sequence

import numpy as np
import pandas as pd

from studies.analysis.comparisons import (CONFLICT_TRAINED, arm_summary, compare_arms, conflict_vs_f1,
                                          rank_agreement)
from studies.analysis.plots import PLOTS
from studies.analysis.rows import SETS
from studies.analysis.study import Study
from timm_csba.stats import format_mean_std as _fmt

ALPHA = 0.05  # a seed-paired difference counts when its t-test p is below this


def difference_shown(comparison: Dict, metric: str = 'macro_f1') -> bool:
    """A difference in `metric` counts when the seed-paired t-test gives p < ALPHA and its image bootstrap interval
    excludes 0 (over the seeds with test predictions, `compare_arms`); without a bootstrap (no seed pair kept its
    test predictions) the seed test alone does not show one."""
    boot = comparison['bootstraps'].get(metric)
    return comparison[metric].ttest_p < ALPHA and boot is not None and (boot.low > 0 or boot.high < 0)


def verdict(comparison: Dict, metric: str = 'macro_f1', label: str = 'macro-F1') -> str:
    """Plain words for a vs b on `metric` (`difference_shown`): a difference or 'no difference is shown'."""
    seed_test, boot = comparison[metric], comparison['bootstraps'].get(metric)
    a, b = comparison['a'], comparison['b']
    direction = 'higher' if seed_test.mean_difference > 0 else 'lower'
    words = (f'{a} scores {direction} {label} than {b}' if difference_shown(comparison, metric)
             else f'no difference in {label} between {a} and {b} is shown')
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


def seed_shown(seed_test) -> bool:
    return seed_test.ttest_p < ALPHA


def sentence(text: str) -> str:
    return text[:1].upper() + text[1:]  # str.capitalize would lower-case the rest, CSBA included


def difference(seed_test, what: str) -> str:
    return f'{what} {seed_test.mean_difference:+.3f} (paired t p = {_fmt(seed_test.ttest_p)}, n = {seed_test.n})'


# ---------------------------------------------------------------------------------------- the shared questions
def conflict_answer(csba_sum: Dict) -> str:
    """Does CSBA reduce gradient conflict? From csba vs sum's backbone conflict after training."""
    cosine, magnitude = (csba_sum[column] for column in CONFLICT_TRAINED)
    if seed_shown(cosine) or seed_shown(magnitude):
        # a higher (less negative) cosine after training is less conflict
        if (cosine if seed_shown(cosine) else magnitude).mean_difference > 0:
            answer = 'yes, CSBA ends training with less backbone conflict than sum'
        else:
            answer = 'no, CSBA ends training with more backbone conflict than sum'
    else:
        answer = 'not shown'
    return (f'- **Does CSBA reduce gradient conflict?** {sentence(answer)}: after training, '
            f'{difference(cosine, "cosine csba − sum")}, {difference(magnitude, "magnitude-aware")}; a '
            f'higher (less negative) value is less conflict.')


def capacity_answer(by_pair: Dict[tuple, Dict]) -> str:
    """Does the shared-gate control (csba's gate parameters, one gate for every branch) explain csba vs sum?"""
    if any(by_pair.get(pair) is None for pair in (('csba', 'sum'), ('csba', 'shared'), ('shared', 'sum'))):
        return ('- **Does the shared-gate control explain the difference?** Not measured yet: the shared arm needs '
                'at least two seeds in common with csba and sum.')
    macro = {pair: c['macro_f1'] for pair, c in by_pair.items()}
    sign = np.sign(macro['csba', 'sum'].mean_difference)

    def moves_like_csba(comparison):  # a shown macro-F1 difference in the direction csba differs from sum
        return difference_shown(comparison) and np.sign(comparison['macro_f1'].mean_difference) == sign

    gate, capacity = moves_like_csba(by_pair['csba', 'shared']), moves_like_csba(by_pair['shared', 'sum'])
    if not difference_shown(by_pair['csba', 'sum']):
        answer = 'there is no shown difference between csba and sum to explain'
    elif gate and not capacity:
        answer = 'no: CSBA also differs from its capacity control, so the branch-specific attention, not the ' \
                 'added gate parameters, carries the difference'
    elif capacity and not gate:
        answer = 'yes: the shared gate differs from sum as CSBA does, so capacity explains the difference'
    else:
        answer = 'undecided: neither the control nor CSBA\'s own gates alone account for the difference'
    return (f'- **Does the shared-gate control explain the difference?** {sentence(answer)}: '
            f'{difference(macro["csba", "shared"], "macro-F1 csba − shared")}, '
            f'{difference(macro["shared", "sum"], "shared − sum")}.')


def conflict_predicts_answer(table: pd.DataFrame, classes: Sequence[str], word: str, words: str,
                             pooled: Dict[str, Any], within: Dict[str, Any]) -> str:
    """Does a class's gradient conflict predict its F1, within classes (pooled only as a caveat)? `word` and
    `words` name one class and several ('grade', 'grades')."""
    answer = (f'yes, within {words}: a {word} scores ' + ('lower' if within['rho'] > 0 else 'higher') +
              ' F1 in the runs where it conflicts more' if within['p_value'] < ALPHA else 'not shown')
    return (f'- **Does gradient conflict predict per-{word} F1?** {sentence(answer)}: within each {word}, '
            f'Spearman rho = {_fmt(within["rho"])} (p = {_fmt(within["p_value"])}, n = {within["n"]}) '
            f'between its mean backbone cosine with the other {words} and its F1. Pooled over {words} rho = '
            f'{_fmt(pooled["rho"])} (p = {_fmt(pooled["p_value"])}), which mixes the {words}\' own differences '
            f'with any effect of conflict{_class_extremes(table, classes)}.')


def _class_extremes(table: pd.DataFrame, classes: Sequence[str]) -> str:
    """': <class> both conflicts most and scores best' when one class does both (mean over runs), else ''."""
    conflict = {c: table[f'conflict_{c}_trained'].mean() for c in classes}
    f1 = {c: table[f'f1_{c}'].mean() for c in classes}
    most_conflicted, best = min(conflict, key=conflict.get), max(f1, key=f1.get)
    return f': {best} both conflicts most and scores best' if most_conflicted == best else ''


# ---------------------------------------------------------------------------------------- the report
def summary_rows(recipe: str, answers: Sequence[str]) -> List[str]:
    """The REPORT's opening table, one row per question a recipe answers: the plain-words bullets of a conclusion
    ('- **question** Verdict: the numbers') split into their columns."""
    rows = []
    for answer in answers:
        if '**' not in answer:  # nothing to conclude yet
            rows.append(f'| `{recipe}` | — | {answer[2:]} | — |')
            continue
        _, question, rest = answer.split('**', 2)
        verdict_words, _, numbers = rest.strip().partition(': ')
        rows.append(f'| `{recipe}` | {question} | **{verdict_words}** | {numbers} |')
    return rows


def _arm_table(summary: pd.DataFrame, recipe: str, study: Study) -> List[str]:
    lines = ['| arm | seeds | accuracy | macro-F1 | ' + ' | '.join(study.label(c) for c in study.shown) +
             ' | backbone cosine init → trained | magnitude init → trained |',
             '|---|---|---|---|' + '---|' * len(study.shown) + '---|---|']
    for _, s in summary[summary.recipe == recipe].iterrows():
        lines.append(
            f'| {s.arm} | {s.seeds} | {_fmt(s.accuracy, s.accuracy_std)} | {_fmt(s.macro_f1, s.macro_f1_std)} | ' +
            ' | '.join(_fmt(s[c], s[f"{c}_std"]) for c in study.shown) +
            f' | {_fmt(s.backbone_cosine_init, s.backbone_cosine_init_std)} → '
            f'{_fmt(s.backbone_cosine_trained, s.backbone_cosine_trained_std)} | '
            f'{_fmt(s.backbone_magnitude_init, s.backbone_magnitude_init_std)} → '
            f'{_fmt(s.backbone_magnitude_trained, s.backbone_magnitude_trained_std)} |')
    return lines


def _comparison_table(comparisons: Sequence[Dict], study: Study) -> List[str]:
    if not comparisons:
        return ['None yet: a comparison needs at least two seeds that both arms have.']
    focus = [c for c in study.focus if c != 'macro_f1']
    lines = ['| a vs b | seeds | macro-F1 a − b (seed-paired t p, Wilcoxon p) | ' +
             ' | '.join(f'image bootstrap 95% CI, {study.label(m)}' for m in study.bootstrap_metrics) + ' | ' +
             ' | '.join(f'{study.label(c)} a − b (t p)' for c in focus) + ' |',
             '|---|---|---|' + '---|' * (len(study.bootstrap_metrics) + len(focus))]
    for comparison in comparisons:
        m = comparison['macro_f1']
        subset = f' ({_seeds(comparison["bootstrap_seeds"])})' if comparison['without_predictions'] else ''
        intervals = []
        for metric in study.bootstrap_metrics:
            boot = comparison['bootstraps'].get(metric)
            intervals.append('— (runs without predictions)' if boot is None
                             else f'[{boot.low:+.3f}, {boot.high:+.3f}]{subset}')
        lines.append(f'| {comparison["a"]} vs {comparison["b"]} | {m.n} | {m.mean_difference:+.3f} '
                     f'({_fmt(m.ttest_p)}, {_fmt(m.wilcoxon_p)}) | ' + ' | '.join(intervals) + ' | ' +
                     ' | '.join(f'{comparison[c].mean_difference:+.3f} ({_fmt(comparison[c].ttest_p)})'
                                for c in focus) + ' |')
    return lines


def _stage_table(group: pd.DataFrame) -> List[str]:
    lines = ['| arm | ' + ' | '.join(SETS[1:]) + ' |', '|---|' + '---|' * len(SETS[1:])]
    for arm, runs_of_arm in group.groupby('arm', sort=False):
        lines.append(f'| {arm} | ' + ' | '.join(
            f'{runs_of_arm[f"{s}_cosine_init"].mean():+.3f} → {runs_of_arm[f"{s}_cosine_trained"].mean():+.3f}'
            for s in SETS[1:]) + ' |')
    return lines


def report(table: pd.DataFrame, runs: Path, undiagnosed: Sequence[str], study: Study, resamples: int = 2000) -> str:
    summary = arm_summary(table, study)
    word, words = study.class_word, study.class_words
    verdicts = ['| recipe | question | verdict | the numbers |', '|---|---|---|---|']
    lines = []
    for recipe, group in table.groupby('recipe', sort=False):
        config, flags = study.grid.recipes.get(recipe, ('?', []))
        comparisons = [c for c in (compare_arms(group, runs, a, b, recipe, study, resamples)
                                   for a, b in study.comparisons) if c]
        pooled, pooled_init = conflict_vs_f1(group, study.classes), conflict_vs_f1(group, study.classes, 'init')
        within = conflict_vs_f1(group, study.classes, within_class=True)
        answers = study.conclusion(group, comparisons, pooled, within)
        verdicts += summary_rows(recipe, answers)
        # the study's question (its first comparison) is quoted by the answers; the others' verdicts follow them
        others = [verdict(c) for c in comparisons if (c['a'], c['b']) != study.comparisons[0]]
        lines += [f'## Recipe `{recipe}`: `{" ".join([config, *flags])}`', '',
                  f'{len(group)} runs, {group.train_hours.sum():.1f} training hours in all '
                  f'({group.train_hours.mean() * 60:.0f} min a run).', '',
                  *_arm_table(summary, recipe, study),
                  '', '### Paired comparisons', '', *_comparison_table(comparisons, study),
                  '', *(line for section in study.sections for line in section(group, runs, study)),
                  '### Conflict per stage (cosine, mean off-diagonal, mean over seeds: init → trained)', '',
                  *_stage_table(group),
                  '', f'### Does conflict predict a {word}\'s F1?', '',
                  f'Spearman between a {word}\'s mean backbone cosine with the other {words} and its test F1, pooled '
                  f'over every run and {word}: after training rho = {_fmt(pooled["rho"])} (p = '
                  f'{_fmt(pooled["p_value"])}, n = {pooled["n"]}); at initialisation rho = '
                  f'{_fmt(pooled_init["rho"])} (p = {_fmt(pooled_init["p_value"])}, n = {pooled_init["n"]}). '
                  f'Pooled, the differences between the {words} '
                  f'(frequency, difficulty) enter as well; within each {word} (both centred on the {word}\'s mean '
                  f'over runs), after training rho = {_fmt(within["rho"])} (p = '
                  f'{_fmt(within["p_value"])}, n = {within["n"]}). The pairs are not independent (the '
                  f'{len(study.classes)} {words} of one run share a model), so p is optimistic.', '',
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
    records = study.grid.records.relative_to(study.grid.records.parents[2])
    head = [f'# {study.title}', '',
            f'Generated by `python {study.script}` from the records of `python {study.run_script}` (`{records}/`); '
            f'every number below is recomputed from `results.csv` and the runs\' test predictions. {study.intro} '
            f'A difference counts as shown when its seed-paired t-test gives p < {ALPHA} (for macro-F1 the '
            f'test-image bootstrap interval must also exclude 0).', '',
            '## Summary', '', *verdicts, '']
    notes = [study.notes.read_text().rstrip(), ''] if study.notes is not None else []
    return '\n'.join(head + lines + notes)
