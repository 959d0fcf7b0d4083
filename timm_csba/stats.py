"""Statistics for comparing trained models: over training seeds, over test images, and across classes.

    paired_seed_test(a, b)                    # two architectures, one value per shared seed: Wilcoxon + paired t
    bootstrap_difference(y, pa, pb, n)        # the same test images, resampled: CI of the macro-F1 difference
    bootstrap_difference(y, pa, pb, n, balanced_accuracy)   # ... or of another metric's
    mean_std(values)                          # mean and sample std (ddof=1), NaN-free
    format_mean_std(mean, std)                # '0.550 ± 0.024', as the study report and the model cards print it

Thin over scipy.stats; with 5 seeds a Wilcoxon signed-rank test cannot reach p < 0.05 two-sided (its smallest
exact p is 2/32 = 0.0625), which is why the paired t-test and the image bootstrap are reported beside it.
"""
import math
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
from scipy import stats

__all__ = ['SeedComparison', 'BootstrapInterval', 'paired_seed_test', 'bootstrap_difference', 'macro_f1',
           'balanced_accuracy', 'per_class_f1', 'mean_std', 'format_mean_std']


@dataclass
class SeedComparison:
    """a - b over the seeds both have: mean and std of the differences, Wilcoxon signed-rank and paired t p."""
    n: int
    mean_difference: float
    std_difference: float
    wilcoxon_p: float
    ttest_p: float


@dataclass
class BootstrapInterval:
    """A statistic on the test images as given and its percentile interval over image resamples."""
    estimate: float
    low: float
    high: float
    confidence: float
    resamples: int


def mean_std(values: Sequence[float]) -> tuple:
    """Mean and sample standard deviation (ddof=1) of the finite values; NaN where there are too few."""
    finite = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=np.float64)
    mean = float(finite.mean()) if finite.size else math.nan
    std = float(finite.std(ddof=1)) if finite.size > 1 else math.nan
    return mean, std


def paired_seed_test(a: Sequence[float], b: Sequence[float]) -> SeedComparison:
    """Compare two models trained on the same seeds (a[i] and b[i] share seed i; NaN pairs are dropped)."""
    pairs = np.asarray([(x, y) for x, y in zip(a, b) if not (math.isnan(x) or math.isnan(y))], dtype=np.float64)
    n = len(pairs)
    if n < 2:
        return SeedComparison(n, math.nan, math.nan, math.nan, math.nan)
    diff = pairs[:, 0] - pairs[:, 1]
    if np.all(diff == 0):  # no difference at all: neither test is defined, and nothing differs
        return SeedComparison(n, 0.0, 0.0, 1.0, 1.0)
    wilcoxon = stats.wilcoxon(pairs[:, 0], pairs[:, 1]).pvalue
    ttest = stats.ttest_rel(pairs[:, 0], pairs[:, 1]).pvalue
    return SeedComparison(n, float(diff.mean()), float(diff.std(ddof=1)), float(wilcoxon), float(ttest))


def per_class_f1(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """F1 of each class, [..., num_classes], vectorised over the leading axes of `predictions` (resamples, seeds);
    a class neither present nor predicted scores 0, as scikit-learn's f1_score(zero_division=0)."""
    f1 = []
    for c in range(num_classes):
        tp = np.sum((predictions == c) & (labels == c), axis=-1)
        fp = np.sum((predictions == c) & (labels != c), axis=-1)
        fn = np.sum((predictions != c) & (labels == c), axis=-1)
        denominator = 2 * tp + fp + fn
        f1.append(np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0))
    return np.stack(f1, axis=-1)


def macro_f1(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """Macro-F1 along the last axis, vectorised over leading axes (resamples, seeds); an absent class scores 0,
    as scikit-learn's f1_score(average='macro', zero_division=0) with every class listed."""
    return per_class_f1(labels, predictions, num_classes).mean(axis=-1)


def balanced_accuracy(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """The mean recall of the classes present in `labels`, vectorised over leading axes of `predictions`, as
    scikit-learn's balanced_accuracy_score; on a balanced test split it is the accuracy."""
    present = [c for c in range(num_classes) if np.any(labels == c)]
    recall = [np.sum((predictions == c) & (labels == c), axis=-1) / np.sum(labels == c) for c in present]
    return np.mean(np.stack(recall, axis=-1), axis=-1)


Metric = Callable[[np.ndarray, np.ndarray, int], np.ndarray]


def bootstrap_difference(
        labels: Sequence[int],
        predictions_a: np.ndarray,
        predictions_b: np.ndarray,
        num_classes: int,
        metric: Metric = macro_f1,
        resamples: int = 2000,
        confidence: float = 0.95,
        seed: Optional[int] = 0,
) -> BootstrapInterval:
    """`metric` of a minus that of b, each averaged over its seeds ([seeds, images] predictions on the same test
    images), with a percentile interval from resampling the images: one resample is applied to every seed of both
    models, so the interval is over test images, paired, and not over training seeds."""
    labels = np.asarray(labels)
    predictions_a, predictions_b = np.atleast_2d(predictions_a), np.atleast_2d(predictions_b)

    def difference(index):
        y = labels[index]
        return metric(y, predictions_a[..., index], num_classes).mean(-1) - \
            metric(y, predictions_b[..., index], num_classes).mean(-1)

    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(labels), size=(resamples, len(labels)))
    boot = np.array([difference(index) for index in draws])
    tail = (1 - confidence) / 2
    return BootstrapInterval(estimate=float(difference(np.arange(len(labels)))),
                             low=float(np.quantile(boot, tail)), high=float(np.quantile(boot, 1 - tail)),
                             confidence=confidence, resamples=resamples)


def format_mean_std(mean: Optional[float], std: Optional[float] = None) -> str:
    """'0.550 ± 0.024' at three decimals; '—' for a missing mean and no ± for a missing std (None from JSON or NaN
    from a DataFrame: a single seed has no std)."""
    def missing(value):
        return value is None or math.isnan(value)
    return '—' if missing(mean) else f'{mean:.3f}' + ('' if missing(std) else f' ± {std:.3f}')
