"""Issue 49's accuracy targets for `inspect`, measured: on generated 6x10 modules of real ELPV test cells (rotated
within 5 degrees, perspective-warped, at 8, 12 and 16 bits; examples/el_modules.py), is every cell found, where are
the corners against the truth, and does each cell get the grade of the same cell cut with the true corners?

    python studies/inspect_agreement/measure.py                   # 40 modules, seeds 300-339: the REPORT's table
    python studies/inspect_agreement/measure.py --modules 20 --first-seed 500

Each module goes through `inspect_module` as `python -m timm_csba.inspect` runs it (--grid auto, the corners found);
the exact cut samples the same upright size with the module's true corners. Prints a markdown table.
"""
import argparse
import sys
from pathlib import Path
from typing import Dict, Tuple

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / 'examples'))
from el_modules import elpv_module  # noqa: E402
from timm_csba.cli_args import positive_int  # noqa: E402
from timm_csba.data.images import to_8bit  # noqa: E402
from timm_csba.data.transforms import build_transforms  # noqa: E402
from timm_csba.inference import load_model  # noqa: E402
from timm_csba.inspection import inspect_module  # noqa: E402
from timm_csba.module import cell_boxes, rectify, sample_cell  # noqa: E402


def exact_probabilities(model, image, corners, size, rows, cols) -> Dict[Tuple[int, int], np.ndarray]:
    """(row, col) -> class probabilities of each cell cut with `corners` at the upright `size`, as inspect cuts
    them (the tests' reference too)."""
    boxes = cell_boxes(rectify(image, corners, size), rows, cols)
    transform = build_transforms(model, is_training=False)
    cells = [sample_cell(image, corners, size, boxes[key], (192, 192)) for key in sorted(boxes)]
    with torch.no_grad():
        probabilities = model(torch.stack([transform(cell) for cell in cells])).softmax(1).numpy()
    return dict(zip(sorted(boxes), probabilities))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model', default=f'local-dir:{ROOT / "hub" / "csba_squeeze.elpv"}')
    parser.add_argument('--modules', type=positive_int, default=40)
    parser.add_argument('--first-seed', type=int, default=300)
    parser.add_argument('--rows', type=positive_int, default=6)
    parser.add_argument('--cols', type=positive_int, default=10)
    args = parser.parse_args(argv)
    model = load_model(args.model)
    found, agree, corner_errors, ties = 0, [], [], []
    for i in range(args.modules):
        bits = (8, 12, 16)[i % 3]
        module, _, _ = elpv_module(seed=args.first_seed + i, rows=args.rows, cols=args.cols, bits=bits)
        image = to_8bit(module.image)
        report = inspect_module(model, image, heat_maps=False)
        if (report.rows, report.cols) != (args.rows, args.cols):
            continue
        found += 1
        cell = np.linalg.norm(module.corners[1] - module.corners[0]) / args.cols
        corner_errors.append(np.linalg.norm(report.corners - module.corners, axis=1) / cell)
        exact = exact_probabilities(model, image.convert('L'), module.corners, report.rectified.size, args.rows,
                                    args.cols)
        grades = report.grades()
        for key, probabilities in exact.items():
            agree.append(grades[key] == probabilities.argmax())
            if not agree[-1]:
                top_two = np.sort(probabilities)[-2:]
                ties.append(top_two[1] - top_two[0])
    errors = np.concatenate(corner_errors) if corner_errors else np.array([np.nan])
    print(f'| modules ({args.rows}x{args.cols}, seeds {args.first_seed}-{args.first_seed + args.modules - 1}) | '
          f'grid and every cell found | cells graded as cut exactly | corner error, mean / max (of a cell) | '
          f'cells that differ: top-two gap when cut exactly, max |')
    print('|---|---|---|---|---|')
    print(f'| {args.modules} | {found} / {args.modules} | {np.mean(agree):.1%} ({sum(agree)} / {len(agree)}) | '
          f'{errors.mean():.2%} / {errors.max():.2%} | {max(ties, default=0):.3f} |')


if __name__ == '__main__':
    main()
