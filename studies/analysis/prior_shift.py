"""What re-balancing alone is worth to a study's runs: post-hoc logit adjustment (Menon et al., ICLR 2021) of each
run's saved test probabilities.

Subtracting tau * log(train prior) from the log-probabilities moves every decision boundary towards the rarer class;
at tau = 1, with calibrated probabilities, it is the rule that maximises balanced accuracy. It needs no training, so
it measures what re-balancing the decisions of a model as trained is worth. Re-weighting late in training (DRW) and
the logit-adjusted loss move the same boundaries while training, so on a dataset where this is worth little they
have little to gain: the check that tells a small LDAM-DRW gain due to the data from one due to a broken loss.
"""
import json
from pathlib import Path
from typing import List, Optional

import numpy as np
import pandas as pd

from studies.analysis.study import Study
from timm_csba.hub.export import study_run_dir
from timm_csba.metrics import load_probabilities
from timm_csba.stats import balanced_accuracy, format_mean_std, mean_std

# the strengths the bound is searched over; tau = 1 is the one that needs no choosing
TAUS = tuple(np.round(np.arange(0.0, 2.01, 0.1), 1))
# probabilities are saved with 6 decimals, so a 0 stands for anything below 5e-7: clip to that resolution. With
# tau <= 2 the largest shift is 2 * log(n_max / n_min) (9.2 at ratio 100), far less than the gap between log(1e-6)
# and the log-probability of the winning class (at least log(1 / C)), so a clipped class never wins
FLOOR = 1e-6


def adjusted_predictions(probabilities: np.ndarray, prior: np.ndarray, tau: float) -> np.ndarray:
    """argmax over classes of log p(y|x) - tau * log prior(y)."""
    return np.argmax(np.log(np.clip(probabilities, FLOOR, None)) - tau * np.log(prior), axis=-1)


def _train_prior(run: Path) -> Optional[np.ndarray]:
    """The run's train-split class frequencies, as its diagnosis counted them (None where it counted another split
    or a class had no image: there is no prior to divide by)."""
    path = run / 'diagnostics' / 'diagnostics.json'
    if not path.exists():
        return None
    report = json.loads(path.read_text())
    counts = np.asarray(report['samples_per_class'], dtype=float)
    if report['split'] != 'train' or not np.all(counts > 0):
        return None
    return counts / counts.sum()


def prior_shift_rows(table: pd.DataFrame, runs: Path, study: Study) -> pd.DataFrame:
    """One row per run that kept its test probabilities: its test balanced accuracy as trained, after the
    adjustment at tau = 1, and the best over TAUS (chosen on the test split itself: a bound, not a result)."""
    rows = []
    for run_row in table.itertuples():
        run = study_run_dir(runs, run_row.recipe, run_row.arm, run_row.seed)
        prior, predictions = _train_prior(run), run / 'test_predictions.csv'
        if prior is None or not predictions.exists():
            continue
        labels, probabilities = load_probabilities(predictions)
        scores = [float(balanced_accuracy(labels, adjusted_predictions(probabilities, prior, tau),
                                          len(study.classes))) for tau in TAUS]
        best = int(np.argmax(scores))
        rows.append({'recipe': run_row.recipe, 'arm': run_row.arm, 'seed': run_row.seed,
                     'as_trained': scores[TAUS.index(0.0)], 'adjusted': scores[TAUS.index(1.0)],
                     'best_tau': TAUS[best], 'best': scores[best]})
    return pd.DataFrame(rows)


def _mean_std(values: pd.Series) -> str:
    return format_mean_std(*mean_std(values.tolist()))


def _change(values: pd.Series) -> str:
    """'+0.012 ± 0.008': a mean difference shows its sign."""
    mean, std = mean_std(values.tolist())
    return f'{mean:+.3f}' + ('' if np.isnan(std) else f' ± {std:.3f}')


def prior_shift_section(table: pd.DataFrame, runs: Path, study: Study) -> List[str]:
    """The REPORT's section for one recipe's runs: per arm, the mean test balanced accuracy as trained, after
    post-hoc logit adjustment at tau = 1, and the bound."""
    rows = prior_shift_rows(table, runs, study)
    if rows.empty:
        return []
    lines = ['### What re-balancing alone is worth: post-hoc logit adjustment', '',
             'Each run\'s saved test probabilities, its decisions re-balanced after training: the predicted class '
             'is the argmax of log p(y|x) − τ·log π(y), π the train split\'s class frequencies (Menon et al., '
             '2021). τ = 1 needs no choosing; the last two columns search τ in 0, 0.1, …, 2 on the test split '
             'itself, so they bound what any such shift could buy rather than measure a method.', '',
             '| arm | seeds | balanced accuracy as trained | adjusted, τ = 1 | change | best τ on test (bound) | '
             'change at best τ |', '|---|---|---|---|---|---|---|']
    for arm, group in rows.groupby('arm', sort=False):
        lines.append(f'| {arm} | {len(group)} | {_mean_std(group.as_trained)} | {_mean_std(group.adjusted)} | '
                     f'{_change(group.adjusted - group.as_trained)} | '
                     f'{", ".join(f"{t:.1f}" for t in group.best_tau)} | '
                     f'{_change(group.best - group.as_trained)} |')
    return [*lines, '']
