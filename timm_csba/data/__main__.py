"""`python -m timm_csba.data stats NAME [options]`: per-class counts per split, the imbalance ratio and a bar chart."""
import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..extras import missing_extra

try:  # the [train] extra; started without it, the command says so in one line
    from .builders import DATASETS, build_dataset
    from .errors import DatasetError
    from .imbalance import class_counts, imbalance_ratio
    from .splits import SPLITS
except ModuleNotFoundError as e:
    sys.exit(missing_extra(e, 'python -m timm_csba.data'))


def _parse_option(text: str) -> tuple:
    key, _, value = text.partition('=')
    for cast in (int, float):
        try:
            return key, cast(value)
        except ValueError:
            pass
    return key, value


def _stats(args: argparse.Namespace) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    options = dict(_parse_option(o) for o in args.option)
    dataset = build_dataset(args.name, data_dir=args.data_dir, hub_id=args.hub_id, seed=args.seed, **options)
    names = dataset['train'].features['label'].names
    counts = {split: class_counts(dataset[split]) for split in SPLITS}
    width = max(len(n) for n in names + ['class'])
    print(f'{"class":{width}s} ' + ' '.join(f'{s:>10s}' for s in SPLITS))
    for name in names:
        print(f'{name:{width}s} ' + ' '.join(f'{counts[s][name]:10d}' for s in SPLITS))
    print(f'{"total":{width}s} ' + ' '.join(f'{len(dataset[s]):10d}' for s in SPLITS))
    print(f'imbalance ratio (train, max/min): {imbalance_ratio(dataset["train"]):.2f}')

    fig, ax = plt.subplots(figsize=(max(6, len(names) * 0.9), 4))
    x = np.arange(len(names))
    for i, split in enumerate(SPLITS):
        ax.bar(x + (i - 1) * 0.27, [counts[split][n] for n in names], width=0.27, label=split)
    ax.set_xticks(x, names, rotation=30, ha='right')
    ax.set_ylabel('images')
    ax.set_title(f'{args.name}: class distribution (seed {args.seed})')
    ax.legend()
    fig.tight_layout()
    out = Path(args.out or f'{args.name}_classes.png')
    fig.savefig(out, dpi=120)
    print(f'wrote {out}')


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog='python -m timm_csba.data', description='Dataset tools.')
    commands = parser.add_subparsers(dest='command', required=True)
    stats = commands.add_parser('stats', help='per-class counts per split, imbalance ratio, bar chart PNG')
    stats.add_argument('name', choices=DATASETS, help='dataset name')
    stats.add_argument('--data-dir', help='local folder (imagefolder / parquet / save_to_disk / cifar batches)')
    stats.add_argument('--hub-id', help='Hugging Face Hub dataset id')
    stats.add_argument('--seed', type=int, default=0, help='split seed')
    stats.add_argument('--option', '-o', action='append', default=[], metavar='KEY=VALUE',
                       help='builder option, e.g. -o labels=binary -o imbalance_ratio=50')
    stats.add_argument('--out', help='PNG path (default: NAME_classes.png)')
    args = parser.parse_args(argv)
    try:
        _stats(args)
    except DatasetError as e:
        parser.exit(2, f'error: {e}\n')


if __name__ == '__main__':
    main()
