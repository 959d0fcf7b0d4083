"""Issue 13: how should a run's epoch be chosen? Judged on validation alone.

    python studies/elpv_recipe/selection.py runs/elpv_levers/RUN [RUN ...]   # runs that wrote val_predictions.npz

train.py keeps the epoch whose validation macro-F1 is the best of all epochs, scored on the same cells that chose
it, so that score is optimistic: with 264 validation cells (11 of the 2/3 grade) and 150 epochs, part of the best
score is the luck of those cells. Here every rule chooses on one random half of the validation cells (stratified
by grade) and is scored on the other half, over many such splits: what each rule's choice is worth on cells it
did not see. The test split is not read.

Rules: `best` (train.py's: the single best epoch), `trailing_K` (the epoch that ends the best mean of K
consecutive epochs' scores: a choice that a lucky epoch cannot make alone), `min_loss` (the epoch of the lowest
cross-entropy on the choosing half: a score that every cell moves a little, rather than one that a few cells of
the rarest grade move a lot), `last` (the final epoch: no choice).
"""
import argparse
import sys
from pathlib import Path
from typing import Dict, Iterator, Mapping, Tuple

import numpy as np
from scipy.special import log_softmax

from timm_csba.stats import macro_f1

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from studies.elpv_recipe.predictions import parse_runs  # noqa: E402

# rule -> how many consecutive epochs its score averages; the score is macro-F1, for 'min_loss' the negated
# cross-entropy ('last' chooses nothing)
WINDOWS = {'best': 1, 'trailing_5': 5, 'trailing_10': 10, 'min_loss': 1}
RULES = (*WINDOWS, 'last')


def half_masks(labels: np.ndarray, splits: int, seed: int = 0) -> Iterator[np.ndarray]:
    """Boolean masks of the choosing half: half of each class's cells (rounded down), drawn `splits` times."""
    rng = np.random.default_rng(seed)
    for _ in range(splits):
        mask = np.zeros(len(labels), dtype=bool)
        for c in np.unique(labels):
            cells = rng.permutation(np.flatnonzero(labels == c))
            mask[cells[:len(cells) // 2]] = True
        yield mask


def cross_entropy(labels: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """Mean cross-entropy per epoch of [epochs, cells, classes] logits."""
    log_probs = log_softmax(logits, axis=-1)
    return -np.take_along_axis(log_probs, labels[None, :, None], axis=-1).mean(axis=(1, 2))


def choose(scores: np.ndarray, rule: str) -> int:
    """Index of the epoch a rule picks from the per-epoch scores (higher is better: for 'min_loss', the negated
    loss); ties go to the earliest, as in train.py."""
    if rule == 'last':
        return len(scores) - 1
    window = min(WINDOWS[rule], len(scores))
    means = np.convolve(scores, np.ones(window) / window, mode='valid')  # means[i]: epochs i .. i + window - 1
    return int(np.argmax(means)) + window - 1


def judge(data: Mapping[str, np.ndarray], splits: int = 200, seed: int = 0) -> Dict[str, Tuple[float, float]]:
    """Per rule, mean and std over splits of the unseen half's macro-F1 at the chosen epoch; under 'all cells',
    the best epoch's score on every validation cell (what train.py reports). `data`: a loaded
    val_predictions.npz."""
    labels, logits = data['labels'], data['logits'].astype(np.float32)
    predictions, classes = logits.argmax(-1), logits.shape[-1]  # [epochs, cells]
    outcomes = {rule: [] for rule in RULES}
    for mask in half_masks(labels, splits, seed):
        choosing = macro_f1(labels[mask], predictions[:, mask], classes)
        unseen = macro_f1(labels[~mask], predictions[:, ~mask], classes)
        negated_loss = -cross_entropy(labels[mask], logits[:, mask])
        for rule in RULES:
            outcomes[rule].append(unseen[choose(negated_loss if rule == 'min_loss' else choosing, rule)])
    result = {rule: (float(np.mean(v)), float(np.std(v))) for rule, v in outcomes.items()}
    result['all cells'] = (float(macro_f1(labels, predictions, classes).max()), 0.0)
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--splits', type=int, default=200, help='random half splits of the validation cells')
    parser.add_argument('--seed', type=int, default=0, help='seed of the splits')
    args = parse_runs(parser, argv)
    print('| run | epochs | best epoch, scored on all cells (optimistic) | ' +
          ' | '.join(f'{rule}: unseen half' for rule in RULES) + ' |')
    print('|---|---|---|' + '---|' * len(RULES))
    for run in args.runs:
        data = np.load(run / 'val_predictions.npz')
        result = judge(data, args.splits, args.seed)
        print(f'| {run.name} | {len(data["epochs"])} | {result["all cells"][0]:.3f} | ' +
              ' | '.join(f'{result[rule][0]:.3f} ± {result[rule][1]:.3f}' for rule in RULES) + ' |')


if __name__ == '__main__':
    main()
