"""The long-tail profile of LDAM-DRW (Cao et al. 2019) as an option of any dataset with a balanced train split:
class i of C keeps n_i = floor(n_max * IR^(-i / (C - 1))) of its train images, in the dataset's class order, the
images chosen by the seed; validation is then carved from the long-tailed pool and the test split is untouched
(CIFAR-10-LT at IR 100: 5000 ... 50 images, 12,406 in all)."""
from typing import List

import datasets
import numpy as np
from datasets import DatasetDict

from .errors import DatasetError
from .splits import split_off

__all__ = ['long_tail_counts', 'long_tail_indices', 'long_tailed']


def long_tail_counts(head_count: int, num_classes: int, imbalance_ratio: float) -> List[int]:
    """Per-class sizes n_i = floor(head_count * IR^(-i / (C - 1))) of the LDAM-DRW long-tail profile."""
    return [int(head_count * imbalance_ratio ** (-i / (num_classes - 1))) for i in range(num_classes)]


def long_tail_indices(labels, num_classes: int, imbalance_ratio: float, seed: int, source: str) -> np.ndarray:
    """Sorted indices of the images a balanced pool keeps under the profile; DatasetError, naming the fix, for a
    ratio below 1, an unbalanced pool or a ratio that leaves a class with no image."""
    if not imbalance_ratio >= 1:
        raise DatasetError(f'imbalance_ratio={imbalance_ratio} is below 1; it is n_max / n_min, so use a value >= 1 '
                           f'(100 for the CIFAR-10-LT protocol)')
    labels = np.asarray(labels)
    available = np.bincount(labels, minlength=num_classes)
    if available.min() != available.max():
        raise DatasetError(f'imbalance_ratio needs a balanced train split to cut the profile from; {source}\'s has '
                           f'{available.min()} to {available.max()} images per class. Drop imbalance_ratio, or '
                           f'use a dataset whose train split is balanced (cifar10, fashion_mnist)')
    targets = long_tail_counts(int(available[0]), num_classes, imbalance_ratio)
    if min(targets) < 1:
        raise DatasetError(f'imbalance_ratio={imbalance_ratio} leaves the last class of {source} with no image '
                           f'({available[0]} per class at most); use a ratio of at most {available[0]}')
    rng = np.random.default_rng(seed)
    return np.sort(np.concatenate([
        rng.permutation(np.flatnonzero(labels == c))[:targets[c]] for c in range(num_classes)]))


def long_tailed(pool: datasets.Dataset, test: datasets.Dataset, imbalance_ratio: float, seed: int,
                val_fraction: float, source: str) -> DatasetDict:
    """train and validation cut from the long-tailed `pool` (stratified, so validation is long-tailed too), and
    `test` as given."""
    keep = long_tail_indices(pool['label'], pool.features['label'].num_classes, imbalance_ratio, seed, source)
    splits = split_off(pool.select(keep), {'validation': val_fraction}, seed)
    return DatasetDict(train=splits['train'], validation=splits['validation'], test=test)
