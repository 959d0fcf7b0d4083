"""Annotated heatmaps of conflict matrices (matplotlib, imported on first use)."""
import math
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ['plot_matrix', 'plot_comparison']


def _heatmap(ax, matrix, names, title, vmax=1.0, fmt='{:.2f}'):
    matrix = np.asarray(matrix, dtype=np.float64)
    image = ax.imshow(matrix, cmap='RdBu_r', vmin=-vmax, vmax=vmax)  # diverging, centred at 0
    ax.set_xticks(range(len(names)), names, rotation=35, ha='right')
    ax.set_yticks(range(len(names)), names)
    ax.set_title(title)
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            value = matrix[i, j]
            ax.text(j, i, 'n/a' if math.isnan(value) else fmt.format(value), ha='center', va='center',
                    fontsize=8, color='white' if abs(value) > 0.6 * vmax else 'black')
    return image


def plot_matrix(matrix, names: Sequence[str], path: Path, title: str) -> None:
    """Annotated heatmap of one [C, C] matrix, diverging colour map centred at 0, class names on the axes."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    size = max(4.0, 0.9 * len(names) + 1.5)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    fig.colorbar(_heatmap(ax, matrix, names, title), ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_comparison(before, after, names: Sequence[str], path: Path, labels: Sequence[str], title: str) -> None:
    """Two matrices side by side and their difference (after - before)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    size = max(4.0, 0.9 * len(names) + 1.5)
    fig, axes = plt.subplots(1, 3, figsize=(3 * size, size))
    _heatmap(axes[0], before, names, labels[0])
    _heatmap(axes[1], after, names, labels[1])
    image = _heatmap(axes[2], np.asarray(after) - np.asarray(before), names, f'{labels[1]} - {labels[0]}')
    for ax in axes[1:]:
        ax.set_yticklabels([])
    fig.colorbar(image, ax=axes, fraction=0.02)
    fig.suptitle(title)
    fig.savefig(path, dpi=120, bbox_inches='tight')
    plt.close(fig)
