"""The run folders that the recipe study's validation-only scripts (selection.py, ensemble.py) read: each must hold
the val_predictions.npz that train.py writes (every epoch's validation logits and the labels)."""
import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence


def parse_runs(parser: argparse.ArgumentParser, argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """`parser`'s arguments plus the run folders, parsed; one line and exit if a run holds no val_predictions.npz."""
    parser.add_argument('runs', nargs='+', type=Path, help='run folders holding val_predictions.npz')
    args = parser.parse_args(argv)
    missing = [str(run) for run in args.runs if not (run / 'val_predictions.npz').exists()]
    if missing:
        sys.exit(f'error: no val_predictions.npz in {", ".join(missing)}; runs trained before train.py wrote it '
                 f'lack it: train them again with the current train.py.')
    return args
