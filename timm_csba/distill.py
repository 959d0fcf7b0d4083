"""`python -m timm_csba.distill`: a teacher ensemble's class probabilities on the train split, for train.py --distill.

    python -m timm_csba.distill runs/a/best runs/b/best runs/c/best --dataset elpv --out teachers/elpv.npz
    accelerate launch train.py --config configs/elpv_hub.yaml --distill teachers/elpv.npz --distill-weight 0.5

A seed ensemble of the ELPV recipe scores higher on validation than any of its members
(studies/elpv_recipe/REPORT.md, "Seed ensembles"), but a timm user loads one model. Distillation (Hinton et al.,
2015) trains one model on the ensemble's probabilities: train.py's `--distill FILE --distill-weight w` trains on
the soft target (1 - w) * one-hot(label) + w * p_teacher(image), which for the cross-entropy is the distillation
loss at temperature 1.

The teachers see each train image once, un-augmented, through their own eval transform (a model trained at 160
px sees 160 px), averaged over --tta views. The recipe's augmentations (flips, 90-degree rotations, mild crops)
leave a cell's grade unchanged, so one target per image serves every augmented view of it. Logit offsets that a
run fitted on validation and folded into its weights (train.py --logit-offsets fit) are taken out first: the
targets must carry nothing fitted on the split that selects the student. The file stores the split's labels
beside the probabilities, so train.py refuses a file made for another dataset, split seed or --limit-train.
"""
import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence, Tuple

import numpy as np
import torch

from .calibration import fold_logit_offsets
from .data import DatasetError, add_dataset_arguments, build_run_dataset
from .evaluate import split_probabilities
from .files import OutputPathError, atomic_path, check_output_path
from .hub import source_config
from .predict import TTA, PredictError, load_model
from .runs import positive_int

__all__ = ['DistillError', 'teacher_probabilities', 'save_teacher', 'load_teacher', 'distill_targets']


class DistillError(ValueError):
    """A teacher file that does not fit the run, in one line that names the fix."""


def folded_logit_offsets(name: str) -> Optional[Sequence[float]]:
    """The logit offsets train.py --logit-offsets fit folded into a model's weights (its config.json), or None
    (a registry tag: published weights carry no offsets)."""
    config = source_config(f'local-dir:{name}' if Path(name).is_dir() else name)
    return None if config is None else config.get('logit_offsets')


def teacher_probabilities(names: Sequence[str], split, tta: str = 'none',
                          batch_size: int = 64) -> Tuple[torch.Tensor, torch.Tensor]:
    """(labels [N], mean class probabilities [N, C]) of the models `names` on a split, in split order."""
    classes, total = split.features['label'].names, None
    for name in names:
        model = load_model(name)
        if model.num_classes != len(classes):
            raise PredictError(f'{name} predicts {model.num_classes} classes, the dataset has {len(classes)} '
                               f'({", ".join(classes)}); pass the dataset the teachers were trained on.')
        offsets = folded_logit_offsets(name)
        if offsets is not None:
            fold_logit_offsets(model, -np.asarray(offsets))
        labels, probabilities = split_probabilities(model, split, tta=tta, batch_size=batch_size)
        total = probabilities if total is None else total + probabilities
    return labels, total / len(names)


def save_teacher(path: Path, labels: torch.Tensor, probabilities: torch.Tensor, teachers: Sequence[str]) -> None:
    """An .npz of plain arrays (loadable without pickle), written whole or not at all."""
    with atomic_path(path) as tmp, open(tmp, 'wb') as f:
        np.savez(f, probabilities=probabilities.numpy().astype(np.float32), labels=labels.numpy().astype(np.int64),
                 teachers=np.array(list(teachers), dtype=str))


def load_teacher(path: str, labels: Sequence[int], num_classes: int) -> torch.Tensor:
    """The teacher probabilities [N, C] of a file made for exactly this train split (same labels, in order)."""
    try:
        with np.load(path, allow_pickle=False) as f:
            probabilities, teacher_labels = f['probabilities'], f['labels']
    except (OSError, ValueError, KeyError) as e:
        raise DistillError(f'--distill {path}: not a teacher file of python -m timm_csba.distill ({e}).') from None
    labels = np.asarray(labels)
    if probabilities.shape != (len(labels), num_classes) or not np.array_equal(teacher_labels, labels):
        raise DistillError(
            f'--distill {path} holds probabilities of shape {tuple(probabilities.shape)} of another train split '
            f'(this run\'s needs {(len(labels), num_classes)}); make it with the run\'s dataset flags: '
            'python -m timm_csba.distill MODEL ... --dataset ... --out FILE.')
    return torch.from_numpy(probabilities)


def distill_targets(labels: torch.Tensor, teacher: torch.Tensor, weight: float) -> torch.Tensor:
    """Soft targets (1 - weight) * one-hot(labels) + weight * teacher, rows of [N, C] that sum to 1."""
    one_hot = torch.nn.functional.one_hot(labels, teacher.shape[1]).to(teacher.dtype)
    return (1 - weight) * one_hot + weight * teacher


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog='python -m timm_csba.distill', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('models', nargs='+', help='teachers: timm names, hf-hub:ORG/NAME, local-dir:DIR or DIR')
    add_dataset_arguments(parser)
    # the student's train split exactly: the same cut and the same skipped images as its train.py run
    parser.add_argument('--limit-train', type=positive_int, help='as train.py --limit-train')
    parser.add_argument('--skip-corrupt', action='store_true', help='as train.py --skip-corrupt')
    parser.set_defaults(limit_eval=None)
    parser.add_argument('--tta', default='none', choices=TTA, help='views averaged per teacher')
    parser.add_argument('--batch-size', type=positive_int, default=64, help='images per forward pass')
    parser.add_argument('--out', required=True, help='the teacher file to write (.npz)')
    args = parser.parse_args(argv)
    try:
        check_output_path(args.out, '--out')
        split = build_run_dataset(args, splits=('train',))[0]['train']
        names = split.features['label'].names
        labels, probabilities = teacher_probabilities(args.models, split, args.tta, args.batch_size)
    except (PredictError, DatasetError, OutputPathError, OSError) as e:
        sys.exit(f'error: {e}')
    save_teacher(Path(args.out), labels, probabilities, args.models)
    accuracy = (probabilities.argmax(1) == labels).float().mean().item()
    print(f'wrote {args.out}: {len(labels)} train images x {len(names)} classes from {len(args.models)} '
          f'teacher(s); their mean train accuracy {accuracy:.3f}')


if __name__ == '__main__':
    main()
