"""PIL -> tensor transforms from timm's `create_transform`, in one or three channels (core install: no `datasets`;
timm_csba.data.hf_splits applies them to an HF split on the fly, timm_csba.tensor_input is ELPV's in-memory path)."""
import inspect
import os
from typing import Any, Callable, Dict

import torch
from PIL import Image as PILImage
from timm.data import create_transform, resolve_data_config
from torchvision import transforms

from .errors import DatasetError


# create_transform arguments that come from the model's data config, not from the augmentation options
_SET_BY_BUILD_TRANSFORMS = {'input_size', 'is_training', 'interpolation', 'mean', 'std', 'crop_pct', 'crop_mode'}


def check_augment_options(aug: Dict[str, Any]) -> None:
    """Raise DatasetError naming any option that is neither rot90 nor one of timm's `create_transform`."""
    timm_options = set(inspect.signature(create_transform).parameters) - _SET_BY_BUILD_TRANSFORMS
    unknown = sorted(set(aug) - timm_options - {'rot90'})
    if unknown:
        raise DatasetError(f'unknown augmentation option(s) {", ".join(unknown)}; the options are rot90 and those of '
                           f'timm\'s create_transform: {", ".join(sorted(timm_options))}.')


def build_transforms(model_or_data_config: Any, is_training: bool, **aug: Any) -> Callable:
    """Return a PIL -> tensor transform from timm's `create_transform` for a model or a timm data config.

    The channel count comes from the model's `in_chans` (or the config's input_size): images are converted to
    grayscale replicated to RGB for in_chans=1 and the first channel is kept after timm's pipeline, so every
    augmentation sees an ordinary RGB image. `aug` goes to `create_transform` (e.g. auto_augment='rand-m9-mstd0.5',
    hflip=0.5, vflip=0.5, scale=(0.8, 1.0), color_jitter=0.2).
    """
    if isinstance(model_or_data_config, torch.nn.Module):
        config = resolve_data_config(model=model_or_data_config)
        in_chans = getattr(model_or_data_config, 'in_chans', config['input_size'][0])
    else:
        config = dict(model_or_data_config)
        in_chans = config['input_size'][0]
    check_augment_options(aug)
    rot90 = aug.pop('rot90', False) and is_training
    mean, std = tuple(config['mean']), tuple(config['std'])
    if len(mean) == 1:
        mean, std = mean * 3, std * 3
    timm_transform = create_transform(
        input_size=(3, *config['input_size'][1:]),
        is_training=is_training,
        interpolation=config.get('interpolation', 'bilinear'),
        mean=mean,
        std=std,
        crop_pct=config.get('crop_pct', 1.0),
        crop_mode=config.get('crop_mode', 'center'),
        **aug,
    )
    if in_chans not in (1, 3):
        raise DatasetError(f'build_transforms supports in_chans 1 or 3, got {in_chans}.')
    steps = [_ToGrayRGB() if in_chans == 1 else _ToRGB()]
    if rot90:
        steps.append(transforms.RandomChoice([_Rotate(k * 90) for k in range(4)]))
    steps.append(timm_transform)
    if in_chans == 1:
        steps.append(_FirstChannel())
    return transforms.Compose(steps)


class _Rotate:
    def __init__(self, degrees: int):
        self.degrees = degrees

    def __call__(self, image: PILImage.Image) -> PILImage.Image:
        return image.rotate(self.degrees) if self.degrees else image


class _ToRGB:
    def __call__(self, image: PILImage.Image) -> PILImage.Image:
        return image.convert('RGB')


class _ToGrayRGB:
    def __call__(self, image: PILImage.Image) -> PILImage.Image:
        return image.convert('L').convert('RGB')


class _FirstChannel:
    def __call__(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor[:1]


def default_num_workers() -> int:
    """Return a DataLoader worker count for this machine: half the usable cores (at least 1, at most 8).

    Decoding and augmenting a cell costs far less than a train step on it, so the other half is left to the
    training threads (measured in benchmarks/data_throughput.py).
    """
    return max(1, min(len(os.sched_getaffinity(0)) // 2, 8))
