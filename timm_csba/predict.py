"""`python -m timm_csba.predict`: classify image files with a timm model; top-k class names and probabilities.

    python -m timm_csba.predict --model csba_squeeze.elpv cell0001.png cells/            # table on stdout
    python -m timm_csba.predict --model local-dir:hub/csba_squeeze.elpv cells/ --output predictions.csv
    python -m timm_csba.predict --model runs/elpv/best cells/ --top-k 2 --format json

--model is a timm name with published weights (`csba_squeeze.elpv`), `hf-hub:ORG/NAME`, `local-dir:FOLDER` or a
folder in timm's Hub format (a train.py run's best/, a staged hub/ folder). Folders given as inputs are searched
recursively for images. Images are preprocessed exactly as the model's pretrained config says (timm's eval
transform); grayscale, 16-bit, palette and colour images are converted to what the model takes (in_chans 1 or 3).
"""
import argparse
import csv
import difflib
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import timm
import torch
from PIL import Image

from .data import build_transforms
from .files import OutputPathError, atomic_path, check_output_path
from .hub import load_pretrained
from .runs import non_negative_int, positive_int

__all__ = ['TTA', 'PredictError', 'load_model', 'find_images', 'load_image', 'tta_probabilities', 'predict']

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')
# test-time augmentation: no extra views, identity + horizontal flip, or the 8 symmetries of the square
TTA = ('none', 'flip', 'd4')


class PredictError(ValueError):
    """Bad input to the predict CLI; the message names the fix."""


def load_model(name: str) -> torch.nn.Module:
    """A timm model with its trained weights, from a registry name, `hf-hub:`/`local-dir:` or a folder."""
    if Path(name).is_dir():
        name = f'local-dir:{name}'
    elif ':' not in name and not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(pretrained=True), n=3)
        raise PredictError(f'unknown model {name!r}' + (f'; did you mean {", ".join(close)}?' if close else
                                                        '; see timm.list_models(pretrained=True)'))
    try:
        return load_pretrained(name).eval()
    except (RuntimeError, ValueError, OSError) as e:
        raise PredictError(f'cannot load {name}: {e}') from None


def find_images(inputs: Sequence[str]) -> List[Path]:
    """Files as given, and every image under each folder (recursive, sorted)."""
    paths = []
    for item in map(Path, inputs):
        if item.is_dir():
            paths.extend(sorted(p for p in item.rglob('*') if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()))
        elif item.is_file():
            paths.append(item)
        else:
            raise PredictError(f'{item} does not exist.')
    if not paths:
        raise PredictError(f'no images ({", ".join(IMAGE_SUFFIXES)}) in {", ".join(inputs)}.')
    return paths


def load_image(path: Path) -> Image.Image:
    """Decode an image fully. 16-bit grayscale maps its range onto 8 bits (v / 257, so an 8-bit image saved as
    16 bits comes back unchanged); 32-bit integer and float images are stretched from their min to their max."""
    try:
        with Image.open(path) as opened:
            opened.load()
            image = opened.copy()
    except (OSError, ValueError, SyntaxError) as e:
        raise PredictError(f'cannot decode image {path}: {e}. Remove or replace the file.') from None
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
    names = (getattr(model, 'pretrained_cfg', None) or {}).get('label_names')
    return list(names) if names and len(names) == model.num_classes else [f'class_{i}' for i in range(model.num_classes)]


def predict(model: torch.nn.Module, paths: Sequence[Path], top_k: int = 3, batch_size: int = 32,
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


def _write(rows: List[Dict[str, Any]], fmt: str, stream) -> None:
    if fmt == 'json':
        json.dump(rows, stream, indent=2)
        stream.write('\n')
        return
    k = len(rows[0]['top_k'])
    writer = csv.writer(stream)
    writer.writerow(['path'] + [f'{field}_{r}' for r in range(1, k + 1) for field in ('label', 'probability')])
    for row in rows:
        writer.writerow([row['path']] + [x for t in row['top_k'] for x in (t['label'], f'{t["probability"]:.6f}')])


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog='python -m timm_csba.predict', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('images', nargs='+', help='image files and/or folders')
    parser.add_argument('--model', required=True, help='csba_squeeze.elpv, hf-hub:ORG/NAME, local-dir:DIR or DIR')
    parser.add_argument('--top-k', type=positive_int, default=3, help='classes per image, most probable first')
    parser.add_argument('--batch-size', type=positive_int, default=32, help='images per forward pass')
    parser.add_argument('--num-workers', type=non_negative_int, default=0, help='DataLoader workers decoding images')
    parser.add_argument('--tta', default='none', choices=TTA, help='test-time augmentation: average the softmax over '
                        'flips (flip) or the 8 rotations and flips of the square (d4)')
    parser.add_argument('--output', help='write here instead of stdout (.json -> JSON, else CSV)')
    parser.add_argument('--format', choices=['csv', 'json'], help='output format (default: from --output, else csv)')
    args = parser.parse_args(argv)
    fmt = args.format or ('json' if args.output and args.output.endswith('.json') else 'csv')
    try:
        if args.output:
            check_output_path(args.output, '--output')
        model = load_model(args.model)
        rows = predict(model, find_images(args.images), top_k=args.top_k, batch_size=args.batch_size,
                       num_workers=args.num_workers, tta=args.tta)
    except (PredictError, OutputPathError) as e:
        sys.exit(f'error: {e}')
    if args.output:
        with atomic_path(args.output) as tmp, open(tmp, 'w', newline='') as f:
            _write(rows, fmt, f)
        print(f'wrote {len(rows)} predictions to {args.output}', file=sys.stderr)
    else:
        _write(rows, fmt, sys.stdout)


if __name__ == '__main__':
    main()
