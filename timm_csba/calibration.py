"""Per-class logit offsets fitted on validation and folded into the classifier, so the weights carry them.

A model trained under class imbalance ranks the minority classes well before it predicts them: its decision
thresholds sit where the training distribution put them. Adding an offset b_c to each class's logit moves the
thresholds (a prior correction: softmax(z + b) = p * exp(b), renormalised). `fit_logit_offsets` chooses b on
validation logits for the selection metric (macro-F1) by coordinate ascent on a grid; `fold_logit_offsets` adds
b to the classifier's output biases, so `timm.create_model(..., pretrained=True)` and timm's standard eval
transform give the calibrated predictions with no extra step.

The validation split fits the offsets, so their score on it is optimistic; `cross_fitted_predictions` gives
the honest estimate (fit on one half of validation, predict the other, and back), which is what a recipe
compares before it keeps the lever.
"""
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold

from .models.csba_squeeze import BranchClassifier, ClassSpecificHeads

__all__ = ['fit_logit_offsets', 'cross_fitted_predictions', 'fold_logit_offsets']

GRID = np.round(np.arange(-3.0, 3.0001, 0.1), 1)


def _macro_f1(logits: np.ndarray, labels: np.ndarray, offsets: np.ndarray) -> float:
    classes = list(range(logits.shape[1]))
    return f1_score(labels, (logits + offsets).argmax(1), labels=classes, average='macro', zero_division=0)


def fit_logit_offsets(logits: Sequence, labels: Sequence[int], rounds: int = 3) -> np.ndarray:
    """Offsets (class 0 fixed at 0) that maximise macro-F1 of argmax(logits + offsets) on these samples.

    Coordinate ascent over classes 1..C-1 on a grid of -3..3 in steps of 0.1; ties go to the offset nearest 0,
    so a class the data say nothing about keeps its logit unchanged.
    """
    logits, labels = np.asarray(logits, dtype=np.float64), np.asarray(labels)
    offsets = np.zeros(logits.shape[1])
    by_closeness = GRID[np.argsort(np.abs(GRID), kind='stable')]
    for _ in range(rounds):
        before = offsets.copy()
        for c in range(1, logits.shape[1]):
            scores = []
            for value in by_closeness:
                offsets[c] = value
                scores.append(_macro_f1(logits, labels, offsets))
            offsets[c] = by_closeness[int(np.argmax(scores))]  # first maximum: the nearest to 0
        if np.array_equal(before, offsets):
            break
    return offsets


def cross_fitted_predictions(logits: Sequence, labels: Sequence[int], folds: int = 2, seed: int = 0) -> np.ndarray:
    """Predictions where every sample's offsets were fitted on the other folds (stratified), never on itself."""
    logits, labels = np.asarray(logits, dtype=np.float64), np.asarray(labels)
    predictions = np.empty(len(labels), dtype=np.int64)
    for fit, held_out in StratifiedKFold(folds, shuffle=True, random_state=seed).split(logits, labels):
        offsets = fit_logit_offsets(logits[fit], labels[fit])
        predictions[held_out] = (logits[held_out] + offsets).argmax(1)
    return predictions


def fold_logit_offsets(model: nn.Module, offsets: Sequence[float]) -> None:
    """Add `offsets` to the model's output logits, exactly, by changing its classifier biases."""
    classifier = model.get_classifier()
    offsets = torch.as_tensor(np.asarray(offsets), dtype=torch.float32)
    if isinstance(classifier, BranchClassifier):
        # the logits are a sum of branch outputs, or a softmax-weighted sum (weights add up to 1)
        share = 1.0 if classifier.branch_weights is not None else 1.0 / len(classifier.branches)
        updates = [(branch.fc.bias, offsets * share) for branch in classifier.branches]
    elif isinstance(classifier, ClassSpecificHeads):
        updates = [(classifier.fc.bias, offsets)]
    elif isinstance(classifier, (nn.Linear, nn.Conv2d)) and classifier.bias is not None:
        updates = [(classifier.bias, offsets)]
    else:
        raise ValueError(f'cannot fold logit offsets into a {type(classifier).__name__} classifier (it needs an '
                         f'output bias).')
    if len(offsets) != updates[0][0].numel():
        raise ValueError(f'{len(offsets)} offsets for {updates[0][0].numel()} classes.')
    with torch.no_grad():
        for bias, update in updates:
            bias.add_(update.to(bias))
