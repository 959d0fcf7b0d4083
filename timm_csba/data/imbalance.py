"""Class statistics of a split and the two ways to correct for imbalance: loss weights and class-aware sampling."""
from typing import Dict, Sequence

import datasets
import numpy as np
import torch

from .errors import DatasetError


def class_counts(split: datasets.Dataset) -> Dict[str, int]:
    """Return {class name: number of images} for every class of the split's ClassLabel, zeros included."""
    names = split.features['label'].names
    counts = np.bincount(np.asarray(split['label'], dtype=np.int64), minlength=len(names))
    return {name: int(count) for name, count in zip(names, counts)}


def imbalance_ratio(split: datasets.Dataset) -> float:
    """Return the largest over the smallest non-zero class count."""
    counts = [c for c in class_counts(split).values() if c > 0]
    return max(counts) / min(counts)


def weights_from_counts(counts: Sequence[int], scheme: str = 'inverse', beta: float = 0.9999) -> torch.Tensor:
    """Return per-class loss weights for class sizes `counts`.

    'inverse': w_c = N / (C * n_c) (paper Eq. 3), so the sample-weighted mean weight is 1.
    'sqrt_inverse': w_c proportional to n_c^(-1/2), scaled the same way: a milder correction.
    'effective_number': w_c proportional to (1 - beta) / (1 - beta^n_c) (Cui et al. 2019), scaled to sum to C.
    """
    counts = torch.as_tensor(list(counts), dtype=torch.float64)
    if (counts == 0).any():
        raise DatasetError('class weights: a class has no training images; its weight would be infinite.')
    if scheme == 'inverse':
        weights = counts.sum() / (len(counts) * counts)
    elif scheme == 'sqrt_inverse':
        weights = counts.rsqrt() * counts.sum() / (counts * counts.rsqrt()).sum()
    elif scheme == 'effective_number':
        weights = (1 - beta) / (1 - beta ** counts)
        weights = weights * len(counts) / weights.sum()
    else:
        raise DatasetError(f"Unknown class weight scheme {scheme!r}; use 'inverse', 'sqrt_inverse' or "
                           f"'effective_number'.")
    return weights.float()


def class_weights(split: datasets.Dataset, scheme: str = 'inverse', beta: float = 0.9999) -> torch.Tensor:
    """Return per-class loss weights computed from this (train) split; see `weights_from_counts`."""
    return weights_from_counts(class_counts(split).values(), scheme, beta)


# sampler name -> q in p(image of class c) proportional to n_c^(q - 1): 1 is plain shuffling (as the data fall)
SAMPLERS = {'none': 1.0, 'sqrt': 0.5, 'balanced': 0.0}


class ClassAwareSampler(torch.utils.data.Sampler):
    """Draw as many indices as there are images, with replacement, class c with probability n_c^q / sum n_k^q.

    q = 0 ('balanced') shows every class equally often, q = 1/2 ('sqrt') is square-root sampling, between the
    data's own frequencies (q = 1) and balance (Kang et al. 2020, "Decoupling Representation and Classifier for
    Long-Tailed Recognition"). Draws are seeded by (seed, epoch); accelerate's prepared loader calls `set_epoch`,
    so a resumed epoch draws the indices of the original run, in any number of processes.
    """

    def __init__(self, labels: Sequence[int], q: float, seed: int = 0):
        labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
        counts = torch.bincount(labels).double()
        class_mass = counts.clamp(min=1) ** q  # total probability of each class, before normalising
        self.weights = (class_mass / counts.clamp(min=1))[labels]
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.weights)

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        yield from torch.multinomial(self.weights, len(self.weights), replacement=True, generator=generator).tolist()
