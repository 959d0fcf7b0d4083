"""A study's figures, one recipe's runs per figure: test F1 by arm, conflict at init and after training, and
conflict against F1."""
from pathlib import Path
from typing import List

import numpy as np
import pandas as pd

from studies.analysis.study import Study

# (title, file) of the figures each recipe gets in plots/<recipe>/
PLOTS = (('F1 by arm', 'f1_by_arm.png'), ('conflict', 'conflict_init_vs_trained.png'),
         ('conflict vs F1', 'conflict_vs_f1.png'))


def plot(table: pd.DataFrame, out: Path, study: Study) -> List[str]:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    out.mkdir(parents=True, exist_ok=True)
    arms = [arm for arm in study.grid.arms if arm in set(table.arm)]
    written = []

    fig, axes = plt.subplots(1, len(study.shown), figsize=(4 * len(study.shown), 3.5), sharey=True)
    for ax, column in zip(np.atleast_1d(axes), study.shown):
        for i, arm in enumerate(arms):
            values = table[table.arm == arm][column]
            ax.scatter([i] * len(values), values, alpha=0.6)
            ax.hlines(values.mean(), i - 0.3, i + 0.3, color='k')
        ax.set_xticks(range(len(arms)), arms, rotation=45)
        ax.set_title(f'test {study.label(column)}')
    fig.tight_layout()
    fig.savefig(out / 'f1_by_arm.png', dpi=110)
    plt.close(fig)
    written.append('f1_by_arm.png')

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for ax, kind in zip(axes, ('cosine', 'magnitude')):
        width = 0.4
        for j, when in enumerate(('init', 'trained')):
            means = [table[table.arm == arm][f'backbone_{kind}_{when}'].mean() for arm in arms]
            stds = [table[table.arm == arm][f'backbone_{kind}_{when}'].std() for arm in arms]
            ax.bar(np.arange(len(arms)) + (j - 0.5) * width, means, width, yerr=stds, label=when)
        ax.axhline(0, color='k', lw=0.5)
        ax.set_xticks(range(len(arms)), arms, rotation=45)
        ax.set_title(f'backbone {kind} conflict (mean off-diagonal)')
        ax.legend()
    fig.tight_layout()
    fig.savefig(out / 'conflict_init_vs_trained.png', dpi=110)
    plt.close(fig)
    written.append('conflict_init_vs_trained.png')

    fig, ax = plt.subplots(figsize=(5, 4))
    for name in study.classes:
        ax.scatter(table[f'conflict_{name}_trained'], table[f'f1_{name}'], label=name, alpha=0.7)
    ax.set_xlabel(f"{study.class_word}'s mean backbone cosine with the other {study.class_words} (trained)")
    ax.set_ylabel(f'test F1 of the {study.class_word}')
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / 'conflict_vs_f1.png', dpi=110)
    plt.close(fig)
    written.append('conflict_vs_f1.png')
    return written
