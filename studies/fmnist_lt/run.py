"""Issue 51's study: the paper's long-tail protocol on real images. Does CSBA's CIFAR-10-LT gain show on
Fashion-MNIST-LT (imbalance ratio 100), and does LDAM-DRW behave as published? The grid, run.

    python studies/fmnist_lt/run.py --arms sum sum_ldam_drw --seeds 0      # the LDAM-DRW check against plain CE
    python studies/fmnist_lt/run.py --arms csba sum shared --seeds 0 1 2 3 4
    python studies/fmnist_lt/run.py                       # the whole grid: CE arms at seeds 0-4, loss arms at 0-2
    python studies/fmnist_lt/run.py --dry-run                                # what each run would do now

The runner is studies/grid.py's: every run is train.py with the recipe's and the arm's flags into
runs/fmnist_lt_study/<recipe>/<arm>.s<S>, then diagnosed (gradient conflict at initialisation and after
training); re-running skips, resumes and diagnoses what is left; each finished run's small files are copied to
records/<recipe>/<arm>.s<S> beside this file, which is committed. Needs the IDX files: apt-get install
dataset-fashion-mnist.
"""
import sys
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from studies import grid as study_grid  # noqa: E402
from studies.grid import Grid  # noqa: E402

RUNS = ROOT / 'runs' / 'fmnist_lt_study'
RECORDS = Path(__file__).resolve().parent / 'records'

# arm -> train.py flags: the paper's question (csba against the summed baseline and the shared-gate capacity
# control, plain CE), and the losses on the baseline and on csba: LDAM-DRW as Cao et al. publish it (a cosine
# classifier scaled by 30, margins up to 0.5 in cosine units, effective-number re-weighting from epoch 160) and the
# logit-adjusted (balanced softmax) loss
ARMS: Dict[str, List[str]] = {
    'sum': ['--model', 'csba_squeeze_sum'],
    'csba': ['--model', 'csba_squeeze'],
    'shared': ['--model', 'csba_squeeze_shared'],
    'sum_ldam_drw': ['--model', 'csba_squeeze_sum', '--loss', 'ldam', '--drw-epoch', '160', '--cosine-scale', '30'],
    'csba_ldam_drw': ['--model', 'csba_squeeze', '--loss', 'ldam', '--drw-epoch', '160', '--cosine-scale', '30'],
    'sum_logit_adjusted': ['--model', 'csba_squeeze_sum', '--loss', 'logit_adjusted'],
}
# 'protocol': CIFAR-10-LT's (configs/fashion_mnist_lt.yaml: SGD 0.1, batch 128, 5 warm-up epochs, x0.01 at 160 and
# 180, 200 epochs, 32 px; the checkpoint with the best validation balanced accuracy), every flag that sets it explicit
RECIPES = {
    'protocol': ('configs/fashion_mnist_lt.yaml', ['--img-size', '32', '--epochs', '200', '--lr', '0.1',
                                                   '--decay-milestones', '160', '180',
                                                   '--monitor', 'balanced_accuracy']),
    'smoke': ('configs/fashion_mnist_lt.yaml', ['--epochs', '3', '--limit-train', '512', '--limit-eval', '256',
                                                '--decay-milestones', '1', '2', '--warmup-epochs', '0']),
}
SEEDS = (0, 1, 2, 3, 4)
# the paper's question needs the CE arms at five seeds; the losses are checked against published gains at three
LOSS_ARM_SEEDS = {arm: (0, 1, 2) for arm in ('sum_ldam_drw', 'csba_ldam_drw', 'sum_logit_adjusted')}
GRID = Grid(RUNS, RECORDS, ARMS, RECIPES, SEEDS, LOSS_ARM_SEEDS)

if __name__ == '__main__':
    sys.exit(study_grid.main(GRID, __doc__, 'protocol'))
