"""An input path that costs no CPU core: images decoded once into a uint8 cache, augmented as whole batches.

The PIL path (`attach_transform`) decodes, augments and normalises every image in DataLoader workers, which on
a 2-core machine take a core from training. Here each image goes through the eval transform once (timm's
prefetcher form: resized and cropped to the training size, uint8, not normalised), the result is kept by the
HF datasets cache (keyed by the split's fingerprint and the size), and a training batch is augmented where
the model runs, with one `grid_sample` for crop, flips and 90-degree rotations. This is timm's own split of
the work (uint8 collate, normalisation in `PrefetchLoader`) taken one step further.

    pixels = cached_pixels(dataset['train'], data_config)          # {'pixel_values': uint8 N x C x H x W, 'label'}
    augment = BatchAugment(data_config, hflip=0.5, rot90=True, scale=(0.85, 1.0))
    x = augment(batch['pixel_values'])                              # float, augmented, normalised

Evaluation inputs equal the PIL path's exactly (the same resize, then the same normalisation). Training
augmentation follows timm's `create_transform` defaults and options with two differences: crops are taken
from the cached image at the training size (upsampled by at most 1/sqrt(min scale)), and an out-of-range
crop is clamped into the image instead of re-drawn up to 10 times.
"""
import math
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

import datasets
import numpy as np
import torch
import torch.nn.functional as F
from datasets import Array3D, ClassLabel, Features

from .data.errors import DatasetError
from .data.images import decode_image
from .data.transforms import build_transforms

__all__ = ['TENSOR_AUGMENTS', 'tensor_augment_problem', 'cached_pixels', 'PixelDataset', 'collate_pixels',
           'BatchAugment', 'normalize']

# create_transform options BatchAugment implements; any other option needs the PIL path
TENSOR_AUGMENTS = ('hflip', 'vflip', 'rot90', 'scale', 'ratio', 'color_jitter')


def tensor_augment_problem(augment: Dict[str, Any]) -> Optional[str]:
    """Why the tensor pipeline cannot apply the augmentation options `augment` (None when it can): an option it
    does not implement, or a per-factor colour jitter tuple. Either needs the PIL input pipeline."""
    pil_only = sorted(set(augment) - set(TENSOR_AUGMENTS))
    if pil_only:
        return (f'--augment {", ".join(pil_only)} needs --input-pipeline pil; the tensor pipeline does '
                f'{", ".join(TENSOR_AUGMENTS)}')
    if isinstance(augment.get('color_jitter'), (list, tuple)):
        return 'color_jitter as a tuple needs the PIL input path; pass one float, or --input-pipeline pil.'
    return None


def cached_pixels(
        split: datasets.Dataset,
        data_config: Dict[str, Any],
        cache_dir: Optional[str] = None,
) -> 'PixelDataset':
    """Return the split decoded and resized to the data config's size as one uint8 tensor, built once.

    The decoded split is an Arrow file in the HF datasets cache named by the split's fingerprint (its images,
    labels and selection) and the input size, so every later run with the same data and size memory-maps it.
    """
    in_chans, height, width = data_config['input_size']
    resize = build_transforms(data_config, is_training=False, use_prefetcher=True)  # uint8 CHW, not normalised
    cache = Path(cache_dir or datasets.config.HF_DATASETS_CACHE) / 'timm_csba_pixels'
    cache.mkdir(parents=True, exist_ok=True)
    # what the cached pixels depend on: the images (the split's fingerprint) and how they are resized and cropped
    resize_args = [data_config.get(key, default) for key, default in
                   (('interpolation', 'bilinear'), ('crop_pct', 1.0), ('crop_mode', 'center'))]
    key = '_'.join([split._fingerprint, f'{in_chans}x{height}x{width}', *map(str, resize_args)])

    def decode(batch: Dict[str, list]) -> Dict[str, list]:
        return {'pixels': [np.asarray(resize(decode_image(value))) for value in batch['image']]}

    raw = split.cast_column('image', datasets.Image(decode=False))
    features = Features({'pixels': Array3D((in_chans, height, width), 'uint8'), 'label': split.features['label']})
    decoded = raw.map(decode, batched=True, batch_size=64, remove_columns=[c for c in raw.column_names if c != 'label'],
                      features=features, cache_file_name=str(cache / f'{key}.arrow'), desc=f'decoding to {height}px')
    # the numpy and torch formats widen integers to int64 unless told the dtype: 8x the memory
    pixels = torch.from_numpy(decoded.with_format('numpy', dtype=np.uint8)[:]['pixels'])
    labels = torch.as_tensor(decoded['label'][:], dtype=torch.long)
    return PixelDataset(pixels, labels, split.features['label'])


class PixelDataset(torch.utils.data.Dataset):
    """Decoded images and labels as tensors; a batch is one indexing op, so no worker is needed."""

    def __init__(self, pixels: torch.Tensor, labels: torch.Tensor, label_feature: Optional[ClassLabel] = None):
        self.pixels, self.labels, self.label_feature = pixels, labels, label_feature

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> Dict[str, torch.Tensor]:
        # the index, so that a batch can carry per-image targets (train.py --distill)
        return {'pixel_values': self.pixels[index], 'label': self.labels[index], 'index': torch.as_tensor(index)}

    def __getitems__(self, indices: Sequence[int]) -> list:
        # DataLoader's batched fetch: one gather instead of len(indices) item lookups
        index = torch.as_tensor(indices)
        return [{'pixel_values': self.pixels[index], 'label': self.labels[index], 'index': index}]


def collate_pixels(items: list) -> Dict[str, torch.Tensor]:
    """Collate for PixelDataset.__getitems__, which already returns the whole batch."""
    return items[0]


def normalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 (or [0, 255] float) NCHW -> float normalised as timm's ToTensor + Normalize do."""
    mean = torch.tensor(mean, device=x.device).view(1, -1, 1, 1) * 255
    std = torch.tensor(std, device=x.device).view(1, -1, 1, 1) * 255
    return (x.float() - mean) / std


class BatchAugment:
    """Random resized crop, flips, 90-degree rotations and colour jitter on a uint8 batch, then normalisation.

    Options and defaults are those of timm's `create_transform(is_training=True)`: scale (0.08, 1), ratio
    (3/4, 4/3), hflip 0.5, vflip 0, color_jitter 0.4 (brightness, contrast and saturation factors in
    [1 - j, 1 + j], applied in random order); rot90 is ours (a uniformly drawn multiple of 90 degrees). Draws
    come from a generator seeded per (seed, epoch, process) with `set_epoch`, so a resumed epoch sees the same
    augmentations as the original run.
    """

    def __init__(
            self,
            data_config: Dict[str, Any],
            hflip: float = 0.5,
            vflip: float = 0.,
            rot90: bool = False,
            scale: Tuple[float, float] = (0.08, 1.0),
            ratio: Tuple[float, float] = (3. / 4., 4. / 3.),
            color_jitter: Optional[float] = 0.4,
            seed: int = 0,
            rank: int = 0,
    ):
        problem = tensor_augment_problem(dict(color_jitter=color_jitter))
        if problem:
            raise DatasetError(problem)
        self.mean, self.std = tuple(data_config['mean']), tuple(data_config['std'])
        self.interpolation = 'bilinear' if data_config.get('interpolation', 'bilinear') != 'bicubic' else 'bicubic'
        self.hflip, self.vflip, self.rot90 = hflip, vflip, rot90
        self.scale, self.log_ratio = tuple(scale), (math.log(ratio[0]), math.log(ratio[1]))
        self.color_jitter = color_jitter or 0.
        self.seed, self.rank = seed, rank
        self.generator: Optional[torch.Generator] = None
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.generator = None  # made on the batch's device at the next call

    def _rand(self, n: int, device: torch.device) -> torch.Tensor:
        if self.generator is None or self.generator.device != device:
            self.generator = torch.Generator(device=device)
            self.generator.manual_seed(hash((self.seed, self.epoch, self.rank)) & (2 ** 63 - 1))
        return torch.rand(n, generator=self.generator, device=device)

    def _affine(self, n: int, device: torch.device) -> torch.Tensor:
        """Per-image 2x3 matrices from output to input coordinates in [-1, 1]: crop, then flips and rotation."""
        area = self.scale[0] + (self.scale[1] - self.scale[0]) * self._rand(n, device)
        ratio = torch.exp(self.log_ratio[0] + (self.log_ratio[1] - self.log_ratio[0]) * self._rand(n, device))
        # crop width and height as fractions of the image side, clamped into the image
        w, h = torch.sqrt(area * ratio).clamp(max=1.), torch.sqrt(area / ratio).clamp(max=1.)
        cx = (2 * self._rand(n, device) - 1) * (1 - w)
        cy = (2 * self._rand(n, device) - 1) * (1 - h)
        sx = torch.where(self._rand(n, device) < self.hflip, -1., 1.)
        sy = torch.where(self._rand(n, device) < self.vflip, -1., 1.)
        quarter_turns = (self._rand(n, device) * 4).floor() if self.rot90 else torch.zeros(n, device=device)
        angle = quarter_turns * (math.pi / 2)
        cos, sin = torch.cos(angle).round(), torch.sin(angle).round()  # exact 0 / +-1
        # input = crop(rotate(flip(output)))
        theta = torch.zeros(n, 2, 3, device=device)
        theta[:, 0, 0], theta[:, 0, 1] = w * cos * sx, -w * sin * sy
        theta[:, 1, 0], theta[:, 1, 1] = h * sin * sx, h * cos * sy
        theta[:, 0, 2], theta[:, 1, 2] = cx, cy
        return theta

    def _jitter(self, x: torch.Tensor) -> torch.Tensor:
        """Brightness, contrast and saturation in random order, on [0, 1] images, as torchvision's ColorJitter."""
        n, j = x.shape[0], self.color_jitter
        factors = {name: (1 - j + 2 * j * self._rand(n, x.device)).view(-1, 1, 1, 1)
                   for name in ('brightness', 'contrast', 'saturation')}
        order = torch.argsort(self._rand(3 * n, x.device).view(n, 3), dim=1)
        for position in range(3):
            for op_index, name in enumerate(factors):
                chosen = (order[:, position] == op_index).view(-1, 1, 1, 1)
                x = torch.where(chosen, self._blend(x, name, factors[name]), x)
        return x

    @staticmethod
    def _blend(x: torch.Tensor, name: str, factor: torch.Tensor) -> torch.Tensor:
        gray = x if x.shape[1] == 1 else (0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
        if name == 'brightness':
            other = torch.zeros_like(x)
        elif name == 'contrast':
            other = gray.mean(dim=(1, 2, 3), keepdim=True).expand_as(x)
        else:
            other = gray.expand_as(x)
        return (factor * x + (1 - factor) * other).clamp(0, 1)

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels.float() / 255
        theta = self._affine(x.shape[0], x.device)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode=self.interpolation, padding_mode='border', align_corners=False)
        if self.color_jitter:
            x = self._jitter(x)
        return normalize(x * 255, self.mean, self.std)
