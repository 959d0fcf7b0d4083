"""A study's statistics over its table of runs: per-arm means, paired comparisons of arms over seeds and test
images, conflict against F1, and whether two recipes rank the arms alike."""
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import numpy as np
import pandas as pd

from studies.analysis.study import Study
from timm_csba.diagnostics import spearman
from timm_csba.hub.export import study_run_dir
from timm_csba.metrics import load_predictions
from timm_csba.stats import balanced_accuracy, bootstrap_difference, macro_f1, mean_std, paired_seed_test

# after-training backbone conflict, compared between arms as the F1s are: does an architecture reduce conflict?
CONFLICT_TRAINED = ('backbone_cosine_trained', 'backbone_magnitude_trained')
CONFLICT = ('backbone_cosine_init', 'backbone_cosine_trained', 'backbone_magnitude_init',
            'backbone_magnitude_trained')
BOOTSTRAP_METRICS = {'macro_f1': macro_f1, 'balanced_accuracy': balanced_accuracy}


def arm_summary(table: pd.DataFrame, study: Study) -> pd.DataFrame:
    """Per recipe and arm: the number of seeds and mean ± std of each test metric and conflict summary."""
    metrics = ['accuracy', 'balanced_accuracy', 'macro_f1', *study.f1_columns(), *CONFLICT]
    out = []
    for (recipe, arm), group in table.groupby(['recipe', 'arm'], sort=False):
        record = {'recipe': recipe, 'arm': arm, 'seeds': len(group)}
        for metric in metrics:
            record[metric], record[f'{metric}_std'] = mean_std(group[metric].tolist())
        out.append(record)
    return pd.DataFrame(out)


def compare_arms(table: pd.DataFrame, runs: Path, a: str, b: str, recipe: str, study: Study,
                 resamples: int = 2000) -> Dict:
    """a vs b on the seeds both have: paired tests over seeds (macro-F1, the study's focus columns, conflict after
    training) and the image bootstrap of the differences of `study.bootstrap_metrics` (the same test images; every
    seed of each whose test predictions were kept). {} with fewer than two seeds in common."""
    rows = table[table.recipe == recipe]
    seeds = sorted(set(rows[rows.arm == a].seed) & set(rows[rows.arm == b].seed))
    if len(seeds) < 2:
        return {}

    def values(arm, column):
        by_seed = rows[rows.arm == arm].set_index('seed')[column]
        return [float(by_seed[s]) for s in seeds]

    result = {'a': a, 'b': b, 'seeds': seeds, 'bootstraps': {}, 'without_predictions': [], 'bootstrap_seeds': []}
    for column in dict.fromkeys(('macro_f1', *study.focus, *CONFLICT_TRAINED)):
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
    for metric in study.bootstrap_metrics:
        result['bootstraps'][metric] = bootstrap_difference(
            labels, np.stack(predictions[a]), np.stack(predictions[b]), num_classes=len(study.classes),
            metric=BOOTSTRAP_METRICS[metric], resamples=resamples)
    return result


def conflict_vs_f1(table: pd.DataFrame, classes: Sequence[str], when: str = 'trained',
                   within_class: bool = False) -> Dict[str, Any]:
    """Spearman between a class's backbone conflict (its mean cosine with the other classes) and its F1, pooled
    over runs and classes (each run contributes every class). Pooled, the classes' own differences can dominate
    (on ELPV the majority grade has both the most negative cosine and the best F1); `within_class` subtracts each
    class's mean over the runs from both, asking whether a class does worse in the runs where it conflicts more."""
    conflict = table[[f'conflict_{c}_{when}' for c in classes]].astype(float)
    f1 = table[[f'f1_{c}' for c in classes]].astype(float)
    if within_class:  # pandas' means skip NaN, and a class that no run diagnosed stays NaN without a warning
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
