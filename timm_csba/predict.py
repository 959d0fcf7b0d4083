"""`python -m timm_csba.predict`: classify image files with a timm model; top-k class names and probabilities.

    python -m timm_csba.predict --model csba_squeeze.elpv cell0001.png cells/            # table on stdout
    python -m timm_csba.predict --model local-dir:hub/csba_squeeze.elpv cells/ --output predictions.csv
    python -m timm_csba.predict --model runs/elpv/best cells/ --top-k 2 --format json

--model is a timm name with published weights (`csba_squeeze.elpv`), `hf-hub:ORG/NAME`, `local-dir:FOLDER` or a
folder in timm's Hub format (a train.py run's best/, a staged hub/ folder), or a model.onnx written by
`python -m timm_csba.export`, which ONNX Runtime runs with the preprocessing.json beside it. Folders given as inputs
are searched recursively for images, and every readable one is graded: the ones that cannot be decoded are listed
at the end (exit status 1). Images are preprocessed exactly as the model's pretrained config says (timm's eval transform);
grayscale, palette and colour images are converted to what the model takes (in_chans 1 or 3), and 12-16-bit images
map onto 8 bits by the bit depth they were recorded at (`--contrast percentile` also stretches an exposure far from
ELPV's).
"""
import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from .cam import CamError, cam_overlays, has_maps
from .cli_args import non_negative_int, positive_int
from .data.images import CONTRASTS
from .files import OutputPathError, atomic_path, check_output_path
from .inference import TTA, InferenceError, find_images, load_image, load_model, predict_images


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


def _write_cams(model, paths: Sequence[Path], cam_dir: Path, args: argparse.Namespace) -> None:
    images = [load_image(path, args.contrast) for path in paths]
    cam_dir.mkdir(parents=True, exist_ok=True)
    for path, overlay in zip(paths, cam_overlays(model, images, args.batch_size)):
        with atomic_path(cam_dir / f'{path.stem}_cam.png') as tmp:
            overlay.save(tmp, format='PNG')
    print(f'wrote {len(paths)} heat map(s) to {cam_dir}', file=sys.stderr)


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog='python -m timm_csba.predict', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('images', nargs='+', help='image files and/or folders')
    parser.add_argument('--model', required=True, help='csba_squeeze.elpv, hf-hub:ORG/NAME, local-dir:DIR, DIR, or '
                        'an exported model.onnx run by ONNX Runtime (the [onnx] extra)')
    parser.add_argument('--top-k', type=positive_int, default=3, help='classes per image, most probable first')
    parser.add_argument('--batch-size', type=positive_int, default=32, help='images per forward pass')
    parser.add_argument('--num-workers', type=non_negative_int, default=0, help='DataLoader workers decoding images')
    parser.add_argument('--tta', default='none', choices=TTA, help='test-time augmentation: average the softmax over '
                        'flips (flip) or the 8 rotations and flips of the square (d4)')
    parser.add_argument('--contrast', default='none', choices=CONTRASTS, help='percentile: stretch each image\'s '
                        '1st..99th percentile to 0..255 (for exposures far from ELPV\'s); none: as recorded')
    parser.add_argument('--cam', metavar='DIR', help='also write DIR/<image>_cam.png: each image with the heat map of '
                        'where the model sees its predicted grade (exact for the csba heads linear before pooling, '
                        'Grad-CAM otherwise, which needs the [inspect] extra)')
    parser.add_argument('--output', help='write here instead of stdout (.json -> JSON, else CSV)')
    parser.add_argument('--format', choices=['csv', 'json'], help='output format (default: from --output, else csv)')
    args = parser.parse_args(argv)
    fmt = args.format or ('json' if args.output and args.output.endswith('.json') else 'csv')
    try:
        if args.output:
            check_output_path(args.output, '--output')
        cam_dir = check_output_path(args.cam, '--cam', folder=True) if args.cam else None
        model = load_model(args.model)
        if cam_dir is not None and not has_maps(model):
            raise InferenceError(f'--cam: {args.model} was exported without class maps (its head needs Grad-CAM, '
                                 f'which needs gradients); pass the PyTorch model to --model for heat maps')
        rows = predict_images(model, find_images(args.images), top_k=args.top_k, batch_size=args.batch_size,
                              num_workers=args.num_workers, tta=args.tta, contrast=args.contrast,
                              skip_unreadable=True)
    except (InferenceError, OutputPathError) as e:
        sys.exit(f'error: {e}')
    graded, unreadable = [r for r in rows if 'error' not in r], [r['error'] for r in rows if 'error' in r]
    if cam_dir is not None and graded:
        try:
            _write_cams(model, [Path(r['path']) for r in graded], cam_dir, args)
        except CamError as e:
            sys.exit(f'error: {e}')
    if graded and args.output:
        with atomic_path(args.output) as tmp, open(tmp, 'w', newline='') as f:
            _write(graded, fmt, f)
        print(f'wrote {len(graded)} predictions to {args.output}', file=sys.stderr)
    elif graded:
        _write(graded, fmt, sys.stdout)
    if unreadable:
        sys.exit(f'error: {len(unreadable)} of {len(rows)} image(s) could not be read; the others are graded:\n'
                 + '\n'.join(unreadable))


if __name__ == '__main__':
    main()
