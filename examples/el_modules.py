"""EL modules built from real ELPV test cells, their geometry and grades known: the example module the README, the
tests and the demo use, and as many more as the tests and the benchmark ask for.

    python examples/el_modules.py     # rewrites examples/module_6x10.png and examples/module_6x10.json

Cells are drawn (seeded) from ELPV's test split (split seed 0), tiled rows x cols with dark gaps on a dark
background, rotated by up to 5 degrees and perspective-warped (timm_csba.module.compose_module).
"""
import functools
import json
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

from timm_csba.data import build_dataset
from timm_csba.files import atomic_path
from timm_csba.module import ComposedModule, compose_module

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE / 'module_6x10'


@functools.lru_cache(maxsize=1)
def _elpv_test():
    return build_dataset('elpv')['test']


def elpv_module(seed: int, rows: int = 6, cols: int = 10, bits: int = 8,
                cell_px: int = 96) -> Tuple[ComposedModule, List[int], List[int]]:
    """(the module, each cell's ELPV grade row by row, each cell's index in the test split)."""
    test = _elpv_test()
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(test), rows * cols, replace=False).tolist()
    cells = [test[i]['image'] for i in picks]
    module = compose_module(cells, rows, cols, rng, cell_px=cell_px, bits=bits)
    return module, [test[i]['label'] for i in picks], picks


def truth(module: ComposedModule, grades: List[int], picks: List[int]) -> Dict:
    return {'grid': [module.rows, module.cols], 'bits': module.bits, 'corners': module.corners.round(3).tolist(),
            'grades': grades, 'elpv_test_indices': picks}


def main() -> None:
    module, grades, picks = elpv_module(seed=0)
    with atomic_path(EXAMPLE.with_suffix('.png')) as tmp:
        module.image.save(tmp, format='PNG', optimize=True)
    with atomic_path(EXAMPLE.with_suffix('.json')) as tmp:
        tmp.write_text(json.dumps(truth(module, grades, picks), indent=1) + '\n')
    print(f'wrote {EXAMPLE}.png ({EXAMPLE.with_suffix(".png").stat().st_size // 1024} KB) and its truth')


if __name__ == '__main__':
    sys.exit(main())
