"""`python -m timm_csba.inspect`: grade every cell of whole EL module images and show where each defect is.

    python -m timm_csba.inspect module.png --grid 6x10 --out inspection/
    python -m timm_csba.inspect modules/ --grid auto --model local-dir:runs/elpv/best --out inspection/
    python -m timm_csba.inspect module.tif --grid 6x10 --corners 102,80 1180,95 1170,760 95,745 --out inspection/

Each module is found in its image (it glows on a dark background) or taken from --corners (X,Y of the top-left,
top-right, bottom-right and bottom-left corners), put upright, and cut into its --grid of cells (auto: from the
dark gaps between cells). Every cell is graded by the model through its own eval transform, in batches. 12-16-bit
images map onto 8 bits by the bit depth they were recorded at. Written to --out:

    cells.csv                 module, row, col (from 1, at the top-left), grade and the probability of each grade
    MODULE_map.png            the upright module, each cell tinted by its grade, with a legend
    MODULE_cells/rRcC.png     for every cell graded above the first grade: the cell with its heat map (where the
                              model sees the defect: an exact class activation map for the csba heads that are
                              linear before pooling, Grad-CAM for any other model)

and a one-line summary per module (cells per grade). A folder is searched for module images; the ones that cannot
be read or hold no module are listed at the end (exit status 1), after the others are inspected.
"""
import argparse
import csv
import io
import sys
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from .cli_args import positive_int
from .data.images import CONTRASTS
from .extras import missing_extra
from .files import OutputPathError, atomic_dir, atomic_path, check_output_path
from .inference import InferenceError, find_images, label_names, load_image, load_model

try:  # the [inspect] extra; started without it, the command says so in one line
    from .cam import CamError, has_maps, overlay_heat
    from .inspection import ModuleReport, grade_map, inspect_module
    from .module import ModuleError, parse_grid
except ModuleNotFoundError as e:
    sys.exit(missing_extra(e, 'python -m timm_csba.inspect', 'inspect'))

DEFAULT_MODEL = 'csba_squeeze.elpv'


def _corners(texts: Optional[Sequence[str]]) -> Optional[np.ndarray]:
    if texts is None:
        return None
    try:
        corners = np.array([[float(v) for v in text.split(',')] for text in texts])
    except ValueError:
        corners = None
    if corners is None or corners.shape != (4, 2):
        raise ModuleError(f'--corners {" ".join(texts)}: give four X,Y points (top-left, top-right, bottom-right, '
                          f'bottom-left), e.g. --corners 102,80 1180,95 1170,760 95,745')
    return corners


def _write_module(report: ModuleReport, name: str, names: Sequence[str], out: Path) -> None:
    with atomic_path(out / f'{name}_map.png') as tmp:
        grade_map(report, names).save(tmp, format='PNG')
    if not report.heat:
        return
    with atomic_dir(out / f'{name}_cells') as tmp:
        for (r, c), grade in report.grades().items():
            if grade > 0:
                overlay_heat(report.cells[r, c], report.heat[r, c]).save(tmp / f'r{r + 1}c{c + 1}.png')


def _summary(name: str, report: ModuleReport, names: Sequence[str]) -> str:
    counts = np.bincount(list(report.grades().values()), minlength=len(names))
    return (f'{name}: {report.rows}x{report.cols} cells: '
            + ', '.join(f'{n} {k}' for n, k in zip(names, counts)))


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog='python -m timm_csba.inspect', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('images', nargs='+', help='module images and/or folders of them')
    parser.add_argument('--grid', default='auto', help='cells as ROWSxCOLS (6x10, 6x12, 12x12 half-cut ...), or '
                        'auto to count them from the gaps between cells')
    parser.add_argument('--corners', nargs=4, metavar='X,Y', help='the module\'s corners in the image: top-left, '
                        'top-right, bottom-right, bottom-left (default: found)')
    parser.add_argument('--model', default=DEFAULT_MODEL, help='a timm name with weights, hf-hub:ORG/NAME, '
                        'local-dir:DIR, DIR, or an exported model.onnx run by ONNX Runtime (the [onnx] extra; '
                        'default: the published csba_squeeze.elpv)')
    parser.add_argument('--contrast', default='none', choices=CONTRASTS, help='percentile: stretch each module\'s '
                        '1st..99th percentile to 0..255 before it is found (exposures far from ELPV\'s)')
    parser.add_argument('--batch-size', type=positive_int, default=64, help='cells per forward pass')
    parser.add_argument('--out', required=True, help='output folder')
    args = parser.parse_args(argv)
    try:
        grid, corners = parse_grid(args.grid), _corners(args.corners)
        out = check_output_path(args.out, '--out', folder=True)
        paths = find_images(args.images)
        model = load_model(args.model)
    except (ModuleError, OutputPathError, InferenceError) as e:
        sys.exit(f'error: {e}')
    names = label_names(model)
    heat_maps = has_maps(model)
    if not heat_maps:
        print(f'note: {args.model} was exported without class maps (its head needs Grad-CAM, which needs the '
              f'PyTorch model): cells are graded and mapped, without MODULE_cells/ heat maps', file=sys.stderr)
    rows: List[List] = []
    failed: List[str] = []
    for path in paths:
        try:
            report = inspect_module(model, load_image(path, args.contrast), grid, corners, args.batch_size,
                                    heat_maps)
        except (InferenceError, ModuleError, CamError) as e:
            failed.append(f'{path}: {e}')
            continue
        out.mkdir(parents=True, exist_ok=True)
        _write_module(report, path.stem, names, out)
        for (r, c), p in sorted(report.probabilities.items()):
            rows.append([path.stem, r + 1, c + 1, names[int(p.argmax())], *(f'{v:.6f}' for v in p)])
        print(_summary(path.stem, report, names))
    if rows:
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(['module', 'row', 'col', 'grade', *(f'p_{n}' for n in names)])
        writer.writerows(rows)
        with atomic_path(out / 'cells.csv') as tmp:
            tmp.write_text(text.getvalue())
        print(f'wrote {out / "cells.csv"} ({len(rows)} cells) and the maps of {len(paths) - len(failed)} module(s)')
    if failed:
        sys.exit(f'error: {len(failed)} of {len(paths)} image(s) not inspected:\n' + '\n'.join(failed))


if __name__ == '__main__':
    main()
