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
import json
import sys
from typing import Any, Dict, List, Optional, Sequence

from .cli_args import non_negative_int, positive_int
from .files import OutputPathError, atomic_path, check_output_path
from .inference import TTA, InferenceError, find_images, load_model, predict_images



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
        rows = predict_images(model, find_images(args.images), top_k=args.top_k, batch_size=args.batch_size,
                       num_workers=args.num_workers, tta=args.tta)
    except (InferenceError, OutputPathError) as e:
        sys.exit(f'error: {e}')
    if args.output:
        with atomic_path(args.output) as tmp, open(tmp, 'w', newline='') as f:
            _write(rows, fmt, f)
        print(f'wrote {len(rows)} predictions to {args.output}', file=sys.stderr)
    else:
        _write(rows, fmt, sys.stdout)


if __name__ == '__main__':
    main()
