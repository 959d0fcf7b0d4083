"""Inference with a trained model: load it with its weights, decode image files, preprocess with the model's own
eval transform, and class probabilities, optionally averaged over test-time augmentation views.

Core install only (torch, timm, pillow, huggingface-hub, safetensors): `python -m timm_csba.predict` is a thin CLI
over this module, and scoring a whole dataset split (timm_csba.evaluation) builds on it.
"""
import difflib
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import timm
import torch
from PIL import Image

from .data.transforms import build_transforms
from .pretrained import load_pretrained

__all__ = ['TTA', 'IMAGE_SUFFIXES', 'InferenceError', 'load_model', 'find_images', 'load_image', 'label_names',
           'tta_probabilities', 'predict_images']

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')
# test-time augmentation: no extra views, identity + horizontal flip, or the 8 symmetries of the square
TTA = ('none', 'flip', 'd4')


class InferenceError(ValueError):
    """A model or an image that cannot be used for inference; the message names the fix."""


def load_model(name: str) -> torch.nn.Module:
    """A timm model with its trained weights, from a registry name, `hf-hub:`/`local-dir:` or a folder."""
    if Path(name).is_dir():
        name = f'local-dir:{name}'
    elif ':' not in name and not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(pretrained=True), n=3)
        raise InferenceError(f'unknown model {name!r}' + (f'; did you mean {", ".join(close)}?' if close else
                                                        '; see timm.list_models(pretrained=True)'))
    try:
        return load_pretrained(name).eval()
    except (RuntimeError, ValueError, OSError) as e:
        raise InferenceError(f'cannot load {name}: {e}') from None


def find_images(inputs: Sequence[str]) -> List[Path]:
    """Files as given, and every image under each folder (recursive, sorted)."""
    paths = []
    for item in map(Path, inputs):
        if item.is_dir():
            paths.extend(sorted(p for p in item.rglob('*') if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()))
        elif item.is_file():
            paths.append(item)
        else:
            raise InferenceError(f'{item} does not exist.')
    if not paths:
        raise InferenceError(f'no images ({", ".join(IMAGE_SUFFIXES)}) in {", ".join(inputs)}.')
    return paths


def load_image(path: Path) -> Image.Image:
    """Decode an image fully. 16-bit grayscale maps its range onto 8 bits (v / 257, so an 8-bit image saved as
    16 bits comes back unchanged); 32-bit integer and float images are stretched from their min to their max."""
    try:
        with Image.open(path) as opened:
            opened.load()
            image = opened.copy()
    except (OSError, ValueError, SyntaxError) as e:
        raise InferenceError(f'cannot decode image {path}: {e}. Remove or replace the file.') from None
    if image.mode in ('I;16', 'I;16B', 'I;16L'):
        pixels = np.asarray(image, dtype=np.float64) / 257
    elif image.mode in ('I', 'F'):
        pixels = np.asarray(image, dtype=np.float64)
        low, high = pixels.min(), pixels.max()
        pixels = (pixels - low) / (high - low) * 255 if high > low else np.zeros_like(pixels)
    else:
        return image
    return Image.fromarray(pixels.round().astype(np.uint8), mode='L')


def tta_probabilities(model: torch.nn.Module, x: torch.Tensor, tta: str = 'none') -> torch.Tensor:
    """Softmax probabilities of a batch, averaged over the views of `tta` (see TTA)."""
    if tta not in TTA:
        raise ValueError(f'unknown test-time augmentation {tta!r}; use one of {", ".join(TTA)}.')
    rotations = range(4) if tta == 'd4' else range(1)
    flips = (False, True) if tta in ('flip', 'd4') else (False,)
    views = [torch.rot90(x.flip(-1) if flip else x, k, dims=(-2, -1)) for k in rotations for flip in flips]
    return torch.stack([model(view).float().softmax(-1) for view in views]).mean(0)


class _Images(torch.utils.data.Dataset):
    def __init__(self, paths: Sequence[Path], transform):
        self.paths, self.transform = paths, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.transform(load_image(self.paths[index]))


def label_names(model: torch.nn.Module) -> List[str]:
    """The class names of the model's weights (their config's label_names), else class_0, class_1, ..."""
    names = (getattr(model, 'pretrained_cfg', None) or {}).get('label_names')
    if names and len(names) == model.num_classes:
        return list(names)
    return [f'class_{i}' for i in range(model.num_classes)]


def predict_images(model: torch.nn.Module, paths: Sequence[Path], top_k: int = 3, batch_size: int = 32,
            num_workers: int = 0, device: Optional[torch.device] = None, tta: str = 'none') -> List[Dict[str, Any]]:
    """Return one row per image: path, top-1 label and probability, and the top-k (label, probability) list;
    with `tta`, the probabilities are the mean over the augmented views."""
    device = device or torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    model = model.to(device).eval()
    names = label_names(model)
    top_k = min(top_k, len(names))
    loader = torch.utils.data.DataLoader(_Images(paths, build_transforms(model, is_training=False)),
                                         batch_size=batch_size, num_workers=num_workers)
    rows, done = [], 0
    with torch.inference_mode():
        for batch in loader:
            probs = tta_probabilities(model, batch.to(device), tta)
            values, indices = probs.topk(top_k, dim=-1)
            for p, i in zip(values.tolist(), indices.tolist()):
                rows.append({'path': str(paths[done]), 'label': names[i[0]], 'probability': p[0],
                             'top_k': [{'label': names[c], 'probability': v} for c, v in zip(i, p)]})
                done += 1
    return rows
