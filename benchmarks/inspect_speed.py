"""What inspecting a whole module costs against grading its cells alone, measured side by side in one run.

    python benchmarks/inspect_speed.py --model local-dir:hub/csba_squeeze.elpv --threads 2

Inspecting a 60-cell module (finding it, putting it upright, cutting its cells, grading them with a heat map each)
should cost at most twice grading its 60 cells as one batch alone (their model inputs ready). Both are timed
round-robin on one generated module from real ELPV test cells (examples/el_modules.py); the script prints the
medians and their ratio.
"""
import argparse
import sys
from pathlib import Path

import torch

from speed import interleaved_medians
from timm_csba.cli_args import positive_int
from timm_csba.data.images import to_8bit
from timm_csba.data.transforms import build_transforms
from timm_csba.inference import load_model
from timm_csba.inspection import inspect_module

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'examples'))
from el_modules import elpv_module  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model', default='local-dir:hub/csba_squeeze.elpv', help='the grading model')
    parser.add_argument('--threads', type=positive_int, default=torch.get_num_threads(), help='torch CPU threads')
    parser.add_argument('--rounds', type=positive_int, default=5, help='timed round-robin rounds (median)')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    module, _, _ = elpv_module(seed=0)
    image = to_8bit(module.image)
    report = inspect_module(model, image)
    transform = build_transforms(model, is_training=False)
    batch = torch.stack([transform(report.cells[key]) for key in sorted(report.cells)])

    def grade_alone():
        with torch.inference_mode():
            model(batch).softmax(1)

    def inspect_whole():
        inspect_module(model, image)

    seconds = interleaved_medians({'grade': grade_alone, 'inspect': inspect_whole}, warmup=1, rounds=args.rounds)
    print(f'threads={args.threads} model={args.model} cells={len(batch)} module={image.size} '
          f'torch={torch.__version__}')
    print(f'grading the {len(batch)} cells as one batch: {seconds["grade"]:.3f} s')
    print(f'inspecting the module (find, upright, cut, grade, heat maps): {seconds["inspect"]:.3f} s')
    print(f'inspect / grade: {seconds["inspect"] / seconds["grade"]:.2f}x (goal: at most 2x)')


if __name__ == '__main__':
    main()
