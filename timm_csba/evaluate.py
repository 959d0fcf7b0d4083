"""`python -m timm_csba.evaluate`: score any trained model on a dataset split, as train.py scores its test split.

    python -m timm_csba.evaluate csba_squeeze.elpv --dataset elpv --split test
    python -m timm_csba.evaluate local-dir:hub/csba_squeeze_sum.elpv --split validation --tta d4
    python -m timm_csba.evaluate runs/elpv/best --out checks/elpv_best

MODEL is a timm name with published weights, `hf-hub:ORG/NAME`, `local-dir:FOLDER` or a folder in timm's Hub
format. The split is rebuilt from the dataset flags train.py takes (the same fixed, seeded split), preprocessed
with the model's own eval transform, and the result is written as train.py writes it: OUT/<split>_metrics.json
(accuracy, balanced accuracy, macro-F1, per-class precision/recall/F1, confusion matrix),
OUT/<split>_predictions.csv (label, prediction and class probabilities per image, in split order) and
OUT/confusion_matrix.png, so anyone can check a model card's numbers image by image.

Test-time augmentation (--tta) averages the softmax over flips (`flip`: identity and horizontal flip) or the
eight symmetries of the square (`d4`: four 90-degree rotations, each also flipped), which suits cells that have
no preferred orientation.
"""
import argparse
import json
import re
import sys
from pathlib import Path
from typing import Optional, Sequence

from .extras import missing_extra

try:  # the [train] extra; started without it, the command says so in one line
    from .cli_args import positive_int
    from .data.builders import build_dataset_from_args
    from .data.errors import DatasetError
    from .data.splits import SPLITS
    from .dataset_flags import add_dataset_arguments
    from .evaluation import split_probabilities
    from .files import OutputPathError, atomic_path, check_output_path, write_json
    from .inference import TTA, InferenceError, load_model
    from .metrics import classification_metrics, save_confusion_matrix, save_predictions
except ModuleNotFoundError as e:
    sys.exit(missing_extra(e, 'python -m timm_csba.evaluate'))


def _default_out(model: str, args: argparse.Namespace) -> Path:
    slug = re.sub(r'[^A-Za-z0-9._-]+', '_', model.strip('/')).strip('_')
    suffix = '' if args.tta == 'none' else f'-{args.tta}'
    return Path('evaluations') / f'{slug}-{args.dataset}-{args.split}{suffix}'


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog='python -m timm_csba.evaluate', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('model', help='csba_squeeze.elpv, hf-hub:ORG/NAME, local-dir:DIR or DIR')
    add_dataset_arguments(parser)
    parser.add_argument('--split', default='test', choices=SPLITS, help='split to score')
    parser.add_argument('--tta', default='none', choices=TTA, help='test-time augmentation (averaged softmax)')
    parser.add_argument('--batch-size', type=positive_int, default=64, help='images per forward pass')
    parser.add_argument('--out', help='output folder (default: evaluations/<model>-<dataset>-<split>)')
    args = parser.parse_args(argv)
    try:
        out = check_output_path(args.out or _default_out(args.model, args), '--out', folder=True)
        split = build_dataset_from_args(args)[args.split]  # first: a bad dataset name fails before Hub retries
        model = load_model(args.model)
        names = split.features['label'].names
        if model.num_classes != len(names):
            raise InferenceError(f'{args.model} predicts {model.num_classes} classes, {args.dataset} has {len(names)} '
                               f'({", ".join(names)}); pass the dataset the model was trained on.')
        labels, probabilities = split_probabilities(model, split, tta=args.tta, batch_size=args.batch_size)
        metrics = classification_metrics(labels, probabilities.argmax(-1), names)
    except (InferenceError, DatasetError, OutputPathError) as e:
        sys.exit(f'error: {e}')
    metrics.update(split=args.split, model=args.model, dataset=args.dataset, split_seed=args.split_seed,
                   tta=args.tta)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / f'{args.split}_metrics.json', metrics)
    # log-probabilities are logits of the same softmax, so the CSV is train.py's test_predictions.csv
    save_predictions(out / f'{args.split}_predictions.csv', labels, probabilities.log(), names)
    with atomic_path(out / 'confusion_matrix.png') as png:
        save_confusion_matrix(metrics, str(png), title=f'{args.model} on {args.dataset} {args.split}: accuracy '
                              f'{metrics["accuracy"]:.3f}, macro-F1 {metrics["macro_f1"]:.3f}')
    print(json.dumps({k: metrics[k] for k in ('num_samples', 'accuracy', 'balanced_accuracy', 'macro_f1')}))
    print(f'wrote {out / f"{args.split}_metrics.json"}, {out / f"{args.split}_predictions.csv"} and '
          f'{out / "confusion_matrix.png"}')


if __name__ == '__main__':
    main()
