"""Conflict matrices of per-class gradients, their summaries, and the geometry of class-mean features.

Matrices, for classes i, j:
    cosine       cos(g_i, g_j): direction only (paper Eq. 12, 31-32); negative = destructive interference.
    projection   <g_i, g_j> / |g_j|^2: how far a step along g_i moves along g_j, in units of g_j. Asymmetric;
                 it shows a large majority gradient swamping a small minority one even at a mild angle.
    magnitude    cos(g_i, g_j) * 2|g_i||g_j| / (|g_i|^2 + |g_j|^2): cosine shrunk towards 0 as the norms
                 differ (the gradient-magnitude similarity of PCGrad); equals the cosine for equal norms.
A class absent from the split has NaN in its row and column (listed in `absent_classes`), never a silent 0.
"""
import math
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence

import numpy as np
import torch

__all__ = ['conflict_matrices', 'ConflictSummary', 'conflict_summary', 'class_mean_features', 'angle_matrix',
           'spearman']


def conflict_matrices(grads: torch.Tensor) -> Dict[str, torch.Tensor]:
    """Return cosine, projection and magnitude-aware matrices [C, C] and per-class gradient norms [C]."""
    norms = grads.norm(dim=1)
    dots = grads @ grads.T
    outer = norms[:, None] * norms[None, :]
    cosine = dots / outer
    return {
        'cosine': cosine,
        'projection': dots / (norms[None, :] ** 2),
        'magnitude': cosine * 2 * outer / (norms[:, None] ** 2 + norms[None, :] ** 2),
        'norms': norms,
    }


@dataclass
class ConflictSummary:
    """Off-diagonal statistics of one conflict matrix, and its k most negative majority-minority pairs."""
    mean_off_diagonal: float
    std_off_diagonal: float
    k: int
    most_negative_pairs: List[Dict[str, Any]]  # {'majority': i, 'minority': j, 'value': v}, most negative first
    mean_most_negative_pairs: float


def conflict_summary(matrix: torch.Tensor, counts: Sequence[float], k: int = 6) -> ConflictSummary:
    """Mean and std of the off-diagonal entries, and the mean of the k most negative majority-minority pairs
    (majority: classes with at least the median count; paper Table 4)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    present = np.flatnonzero(counts > 0)
    off = np.array([matrix[i, j] for i in present for j in present if i != j])
    median = np.median(counts[present]) if len(present) else 0
    majority = [i for i in present if counts[i] >= median]
    minority = [i for i in present if counts[i] < median]
    pairs = sorted(((matrix[i, j], int(i), int(j)) for i in majority for j in minority), key=lambda t: t[0])[:k]
    return ConflictSummary(
        mean_off_diagonal=float(off.mean()) if off.size else math.nan,
        std_off_diagonal=float(off.std()) if off.size else math.nan,
        k=k,
        most_negative_pairs=[{'majority': i, 'minority': j, 'value': float(v)} for v, i, j in pairs],
        mean_most_negative_pairs=float(np.mean([v for v, _, _ in pairs])) if pairs else math.nan,
    )


def class_mean_features(sums: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    return sums / counts[:, None]


def angle_matrix(means: torch.Tensor) -> torch.Tensor:
    """Pairwise angles in degrees between class-mean feature vectors (paper Eq. 27)."""
    unit = means / means.norm(dim=1, keepdim=True)
    return torch.rad2deg(torch.arccos((unit @ unit.T).clamp(-1, 1)))


def spearman(x: Sequence[float], y: Sequence[float]) -> Dict[str, float]:
    """Spearman rank correlation of paired values (NaN pairs dropped) with the number of pairs it rests on."""
    from scipy.stats import spearmanr
    pairs = [(a, b) for a, b in zip(x, y) if not (math.isnan(a) or math.isnan(b))]
    # a constant side (one run, centred within classes) has no ranks to correlate: NaN, as scipy gives, unwarned
    if len(pairs) < 3 or len({a for a, _ in pairs}) == 1 or len({b for _, b in pairs}) == 1:
        return {'rho': math.nan, 'p_value': math.nan, 'n': len(pairs)}
    result = spearmanr([a for a, _ in pairs], [b for _, b in pairs])
    return {'rho': float(result.statistic), 'p_value': float(result.pvalue), 'n': len(pairs)}
