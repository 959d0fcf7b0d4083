"""Issue 13: how much of a single run's validation error is the luck of its seed? Judged on validation alone.

    python studies/elpv_recipe/ensemble.py runs/elpv_levers/RUN runs/elpv_study/hub96/RUN ...   # with val_predictions.npz

Runs of one recipe that differ only in seed (or in an architecture variant) err on partly different cells. If
averaging their predicted probabilities scores well above any one of them, the recipe's error is partly variance,
which more data per run cannot show but an ensemble, or a student distilled from one, can remove; if the average
scores like its members, the error is shared and only more information per cell helps. Every run is scored at
its last epoch, which no validation score chose, so the comparison holds no selection on the cells it is scored
on. For k = 1 .. n, every k-subset of the runs (or `--subsets` random ones) is averaged; the table gives the mean
and std of their macro-F1, accuracy and per-grade F1. The test split is not read.
"""
import argparse
import itertools
import sys
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
from scipy.special import softmax

from timm_csba.stats import per_class_f1

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from studies.elpv_recipe.predictions import parse_runs  # noqa: E402


def last_epoch_probabilities(runs: Sequence[Path]) -> Tuple[np.ndarray, np.ndarray]:
    """[runs, cells, classes] softmax probabilities of each run's last epoch, and the validation labels, which
    every run must share (the same split)."""
    probabilities, labels = [], None
    for run in runs:
        data = np.load(run / 'val_predictions.npz')
        if labels is not None and not np.array_equal(labels, data['labels']):
            sys.exit(f'error: {run} was validated on other cells than {runs[0]}; ensemble runs of one split seed.')
        labels = data['labels']
        probabilities.append(softmax(data['logits'][-1].astype(np.float64), axis=-1))
    return np.stack(probabilities), labels


def subsets(n: int, k: int, limit: int, rng: np.random.Generator) -> List[tuple]:
    """Every k-subset of range(n) when there are at most `limit`, else `limit` distinct random ones."""
    combinations = list(itertools.combinations(range(n), k))
    if len(combinations) <= limit:
        return combinations
    return [combinations[i] for i in rng.choice(len(combinations), size=limit, replace=False)]


def ensemble_scores(probabilities: np.ndarray, labels: np.ndarray, limit: int = 200, seed: int = 0
                    ) -> Dict[int, Dict[str, np.ndarray]]:
    """Per ensemble size k: the macro-F1, accuracy and per-class F1 of each k-subset's mean probabilities."""
    rng, classes = np.random.default_rng(seed), probabilities.shape[-1]
    scores = {}
    for k in range(1, len(probabilities) + 1):
        chosen = subsets(len(probabilities), k, limit, rng)
        predictions = np.stack([probabilities[list(s)].mean(0).argmax(-1) for s in chosen])  # [subsets, cells]
        per_class = per_class_f1(labels, predictions, classes)  # [subsets, classes]
        scores[k] = {'macro_f1': per_class.mean(1), 'accuracy': (predictions == labels).mean(1),
                     'per_class_f1': per_class}
    return scores


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--subsets', type=int, default=200, help='most subsets averaged per ensemble size')
    parser.add_argument('--seed', type=int, default=0, help='seed of the drawn subsets')
    args = parse_runs(parser, argv)
    probabilities, labels = last_epoch_probabilities(args.runs)
    print('| runs averaged | subsets | val macro-F1 | val acc | val F1 per grade |')
    print('|---|---|---|---|---|')
    for k, s in ensemble_scores(probabilities, labels, args.subsets, args.seed).items():
        grades = ' / '.join(f'{f:.2f}' for f in s['per_class_f1'].mean(0))
        print(f'| {k} | {len(s["accuracy"])} | {s["macro_f1"].mean():.3f} ± {s["macro_f1"].std():.3f} | '
              f'{s["accuracy"].mean():.3f} | {grades} |')


if __name__ == '__main__':
    main()
