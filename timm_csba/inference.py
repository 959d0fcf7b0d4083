"""Inference with a trained model: load it with its weights, decode image files, preprocess with the model's own
eval transform, and class probabilities, optionally averaged over test-time augmentation views.

Core install only (torch, timm, pillow, huggingface-hub, safetensors): `python -m timm_csba.predict` is a thin CLI
over this module, and scoring a whole dataset split (timm_csba.evaluation) builds on it.
"""
import difflib
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import timm
import torch
from PIL import Image

from .data.images import UndecodableImage, decode_image
from .data.transforms import build_transforms
from .onnx_model import OnnxModel, OnnxModelError, is_onnx_path
from .pretrained import load_pretrained

__all__ = ['TTA', 'IMAGE_SUFFIXES', 'InferenceError', 'load_model', 'model_source', 'find_images', 'load_image',
           'label_names', 'tta_probabilities', 'predict_images']

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')
# test-time augmentation: no extra views, identity + horizontal flip, or the 8 symmetries of the square
TTA = ('none', 'flip', 'd4')


class InferenceError(ValueError):
    """A model or an image that cannot be used for inference; the message names the fix."""


def load_model(name: str) -> torch.nn.Module:
    """A timm model with its trained weights, from a registry name, `hf-hub:`/`local-dir:` or a folder; or an
    exported model.onnx, run by ONNX Runtime (timm_csba.onnx_model)."""
    if is_onnx_path(name):
        try:
            return OnnxModel(name)
        except OnnxModelError as e:
            raise InferenceError(str(e)) from None
    name = model_source(name)
    if ':' not in name and not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(pretrained=True), n=3)
        raise InferenceError(f'unknown model {name!r}' + (f'; did you mean {", ".join(close)}?' if close else
                                                        '; see timm.list_models(pretrained=True)'))
    try:
        return load_pretrained(name).eval()
    except (RuntimeError, ValueError, OSError) as e:
        raise InferenceError(f'cannot load {name}: {e}') from None


def model_source(name: str) -> str:
    """`name` as timm loads it: a folder becomes `local-dir:FOLDER`; anything else is kept."""
    return f'local-dir:{name}' if ':' not in name and Path(name).is_dir() else name


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


def load_image(path: Path, contrast: str = 'none') -> Image.Image:
    """Decode an image fully, in 8 bits: 12-16-bit images by the bit depth they were recorded at, float images
    stretched from their minimum to their maximum (timm_csba.data.images.to_8bit), then `contrast`."""
    try:
        return decode_image(path, contrast)
    except UndecodableImage as e:
        raise InferenceError(f'cannot decode image {path}: {e.reason}. Remove or replace the file.') from None


def tta_probabilities(model: torch.nn.Module, x: torch.Tensor, tta: str = 'none') -> torch.Tensor:
    """Softmax probabilities of a batch, averaged over the views of `tta` (see TTA)."""
    if tta not in TTA:
        raise ValueError(f'unknown test-time augmentation {tta!r}; use one of {", ".join(TTA)}.')
    rotations = range(4) if tta == 'd4' else range(1)
    flips = (False, True) if tta in ('flip', 'd4') else (False,)
    views = [torch.rot90(x.flip(-1) if flip else x, k, dims=(-2, -1)) for k in rotations for flip in flips]
    return torch.stack([model(view).float().softmax(-1) for view in views]).mean(0)


class _Images(torch.utils.data.Dataset):
    """(index, model input or None, the reason it cannot be read or None) per image path."""

    def __init__(self, paths: Sequence[Path], transform, contrast: str):
        self.paths, self.transform, self.contrast = paths, transform, contrast

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Tuple[int, Optional[torch.Tensor], Optional[str]]:
        try:
            return index, self.transform(load_image(self.paths[index], self.contrast)), None
        except InferenceError as e:
            return index, None, str(e)


def _readable_batch(items: Sequence[Tuple[int, Optional[torch.Tensor], Optional[str]]]):
    """(indices of the readable images, their batch or None, {index: reason} of the others)."""
    readable = [(i, x) for i, x, _ in items if x is not None]
    batch = torch.stack([x for _, x in readable]) if readable else None
    return [i for i, _ in readable], batch, {i: error for i, x, error in items if x is None}


def label_names(model: torch.nn.Module) -> List[str]:
    """The class names of the model's weights (their config's label_names), else class_0, class_1, ..."""
    names = (getattr(model, 'pretrained_cfg', None) or {}).get('label_names')
    if names and len(names) == model.num_classes:
        return list(names)
    return [f'class_{i}' for i in range(model.num_classes)]


def predict_images(model: torch.nn.Module, paths: Sequence[Path], top_k: int = 3, batch_size: int = 32,
                   num_workers: int = 0, device: Optional[torch.device] = None, tta: str = 'none',
                   contrast: str = 'none', skip_unreadable: bool = False) -> List[Dict[str, Any]]:
    """Return one row per image, in the order of `paths`: path, top-1 label and probability, and the top-k (label,
    probability) list; with `tta`, the probabilities are the mean over the augmented views. An image that cannot
    be decoded raises InferenceError, or with `skip_unreadable` gets a row {'path', 'error'} and the rest go on."""
    device = device or torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    model = model.to(device).eval()
    names = label_names(model)
    top_k = min(top_k, len(names))
    images = _Images(paths, build_transforms(model, is_training=False), contrast)
    loader = torch.utils.data.DataLoader(images, batch_size=batch_size, num_workers=num_workers,
                                         collate_fn=_readable_batch)
    rows = {}
    with torch.inference_mode():
        for indices, batch, errors in loader:
            if errors and not skip_unreadable:
                raise InferenceError(next(iter(errors.values())))
            rows.update({i: {'path': str(paths[i]), 'error': error} for i, error in errors.items()})
            if batch is None:
                continue
            values, classes = tta_probabilities(model, batch.to(device), tta).topk(top_k, dim=-1)
            for i, p, c in zip(indices, values.tolist(), classes.tolist()):
                rows[i] = {'path': str(paths[i]), 'label': names[c[0]], 'probability': p[0],
                           'top_k': [{'label': names[k], 'probability': v} for k, v in zip(c, p)]}
    return [rows[i] for i in range(len(paths))]
