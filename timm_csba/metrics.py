"""Classification metrics for imbalanced data, thin over scikit-learn, and the confusion-matrix picture."""
from pathlib import Path
from typing import Any, Dict, Sequence, Tuple

import numpy as np
from sklearn.metrics import (
    accuracy_score, balanced_accuracy_score, confusion_matrix, precision_recall_fscore_support,
)

from .files import atomic_path, write_text

__all__ = ['METRICS', 'classification_metrics', 'save_confusion_matrix', 'save_predictions', 'save_epoch_logits',
           'load_predictions', 'load_probabilities']

# scalar metrics usable for early stopping / best-checkpoint selection (all: higher is better)
METRICS = ('accuracy', 'balanced_accuracy', 'macro_f1')
MAX_ANNOTATED = 30  # classes up to which the confusion-matrix picture labels every cell


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int], class_names: Sequence[str]) -> Dict[str, Any]:
    """Return accuracy, balanced accuracy, macro-F1, per-class precision/recall/F1/support and the confusion
    matrix (rows: true class, columns: predicted), with every class of `class_names` present."""
    labels = list(range(len(class_names)))
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0)
    return {
        'num_samples': int(len(y_true)),
        'accuracy': float(accuracy_score(y_true, y_pred)),
        'balanced_accuracy': float(balanced_accuracy_score(y_true, y_pred)) if len(y_true) else 0.0,
        'macro_f1': float(np.mean(f1)),
        'per_class': {
            name: {'precision': float(p), 'recall': float(r), 'f1': float(f), 'support': int(s)}
            for name, p, r, f, s in zip(class_names, precision, recall, f1, support)
        },
        'confusion_matrix': confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def save_confusion_matrix(metrics: Dict[str, Any], path: str, title: str = '') -> None:
    """Write the confusion matrix of `classification_metrics` output as an annotated PNG."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    names = list(metrics['per_class'])
    # beyond MAX_ANNOTATED classes (a pretext of 1,000 fractal categories) the matrix is a picture of its diagonal:
    # a labelled cell per pair would make a figure a hundred thousand pixels wide and take hours to draw
    many = len(names) > MAX_ANNOTATED
    size = 10.0 if many else max(4.0, 1.1 * len(names))
    fig, ax = plt.subplots(figsize=(size + 1, size))
    ConfusionMatrixDisplay(np.asarray(metrics['confusion_matrix']), display_labels=None if many else names).plot(
        ax=ax, cmap='Blues', colorbar=many, include_values=not many, xticks_rotation=30)
    if many:
        ax.set_xticks([])
        ax.set_yticks([])
    ax.set_title(title or f'accuracy {metrics["accuracy"]:.3f}, macro-F1 {metrics["macro_f1"]:.3f}')
    fig.tight_layout()
    fig.savefig(Path(path), dpi=120)
    plt.close(fig)


def save_predictions(path: str, labels: Sequence[int], logits: Any, class_names: Sequence[str]) -> None:
    """Write one CSV row per image, in split order: index, label, prediction (the argmax) and class probabilities.
    Two runs tested on the same split can then be compared image by image (paired bootstrap)."""
    from scipy.special import softmax
    logits = np.asarray(logits, dtype=np.float64)
    probabilities = softmax(logits, axis=1)
    rows = [','.join(['index', 'label', 'prediction', *(f'p_{name}' for name in class_names)])]
    for i, (label, row, p) in enumerate(zip(np.asarray(labels).tolist(), logits, probabilities)):
        rows.append(','.join([str(i), str(label), str(int(row.argmax())), *(f'{v:.6f}' for v in p)]))
    write_text(path, '\n'.join(rows) + '\n')


def save_epoch_logits(path: str, epochs: Sequence[int], logits: Sequence[Any], labels: Sequence[int]) -> None:
    """One .npz of a split's logits at every epoch: `epochs` [E], `logits` [E, N, C] (float16) and `labels` [N].
    A rule for choosing the epoch can then be judged on validation alone: choose on one half, score on the other,
    instead of trusting the best of many noisy scores on the same cells."""
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, epochs=np.asarray(epochs, dtype=np.int64), labels=np.asarray(labels),
                            logits=np.stack([np.asarray(x, dtype=np.float16) for x in logits]))


def load_predictions(path: str) -> Tuple[np.ndarray, np.ndarray]:
    """(labels, predictions) of a `save_predictions` file."""
    table = np.loadtxt(path, delimiter=',', skiprows=1, ndmin=2)
    return table[:, 1].astype(int), table[:, 2].astype(int)


def load_probabilities(path: str) -> Tuple[np.ndarray, np.ndarray]:
    """(labels [N], class probabilities [N, C]) of a `save_predictions` file."""
    table = np.loadtxt(path, delimiter=',', skiprows=1, ndmin=2)
    return table[:, 1].astype(int), table[:, 3:]
