"""Deterministic stratified splits: the index lists depend only on the labels and the seed (numpy's PCG64 stream),
so the same seed gives the same train / validation / test cells on any machine."""
import math
from typing import Dict, Sequence

import datasets
import numpy as np

from .errors import DatasetError

SPLITS = ('train', 'validation', 'test')


def stratified_split(
        labels: Sequence[int],
        fractions: Dict[str, float],
        seed: int = 0,
) -> Dict[str, np.ndarray]:
    """Return sorted index arrays for each split in `fractions` plus 'train' (the rest), stratified by label.

    Each class is shuffled with one seeded numpy Generator, visited in label order, and cut by rounding
    fraction * class size, so the result depends on the labels and the seed only.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    parts = {name: [] for name in (*fractions, 'train')}
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        start = 0
        for name, fraction in fractions.items():
            count = int(math.floor(fraction * len(members) + 0.5))
            parts[name].append(members[start:start + count])
            start += count
        parts['train'].append(members[start:])
    return {name: np.sort(np.concatenate(chunks)) for name, chunks in parts.items()}


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    """Refuse fractions that leave a split empty or no training images."""
    for name, value in (('val_fraction', val_fraction), ('test_fraction', test_fraction)):
        if not 0 < value < 1:
            raise DatasetError(f'{name}={value} leaves a split empty or takes all images; use a value in (0, 1).')
    if val_fraction + test_fraction >= 1:
        raise DatasetError(
            f'val_fraction + test_fraction = {val_fraction + test_fraction:.3g} leaves no training images; '
            f'keep their sum below 1.')


def split_off(dataset: datasets.Dataset, fractions: Dict[str, float], seed: int) -> Dict[str, datasets.Dataset]:
    """The dataset cut by `stratified_split` into the named splits and 'train' (the rest)."""
    indices = stratified_split(dataset['label'], fractions, seed)
    return {name: dataset.select(indices[name]) for name in SPLITS if name in indices}
