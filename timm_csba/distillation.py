"""Distillation from a teacher ensemble: the teachers' class probabilities of each train image, the file that
carries them to train.py (plain arrays, no pickle) and the soft targets train.py --distill learns from.
`python -m timm_csba.distill` is the command line over this module; its docstring says why it is built this way."""
from pathlib import Path
from typing import Optional, Sequence, Tuple

import numpy as np
import torch

from .calibration import fold_logit_offsets
from .evaluation import split_probabilities
from .files import atomic_path
from .inference import InferenceError, load_model
from .pretrained import source_config

__all__ = ['DistillError', 'folded_logit_offsets', 'teacher_probabilities', 'save_teacher', 'read_teacher',
           'load_teacher', 'distill_targets']


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
            raise InferenceError(f'{name} predicts {model.num_classes} classes, the dataset has {len(classes)} '
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


def read_teacher(path: str) -> Tuple[np.ndarray, np.ndarray]:
    """(probabilities [N, C], labels [N]) of a teacher file, read without pickle; DistillError if it is none."""
    try:
        with np.load(path, allow_pickle=False) as f:
            return f['probabilities'], f['labels']
    except (OSError, ValueError, KeyError) as e:
        raise DistillError(f'--distill {path}: not a teacher file of python -m timm_csba.distill ({e}).') from None


def load_teacher(path: str, labels: Sequence[int], num_classes: int) -> torch.Tensor:
    """The teacher probabilities [N, C] of a file made for exactly this train split (same labels, in order)."""
    probabilities, teacher_labels = read_teacher(path)
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
