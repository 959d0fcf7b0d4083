"""Issue 51's study, read: one CSV row per finished run, the statistics, the plots and REPORT.md.

    python studies/fmnist_lt/aggregate.py                         # records/protocol/* -> results.csv, REPORT.md
    python studies/fmnist_lt/aggregate.py --runs runs/fmnist_lt_study   # the run folders themselves

Reads each finished, diagnosed run's records (studies/fmnist_lt/run.py keeps them in git) with studies/analysis,
the aggregation every study shares: per-arm means on the balanced 10,000-image test split (accuracy, which is the
balanced accuracy there, macro-F1, per-class F1 and head / medium / tail F1), paired tests over seeds, a test-image
bootstrap of the macro-F1 and balanced-accuracy differences, and gradient conflict at initialisation and after
training against F1. The questions are answered in conclusion.py; notes.md, the study's written account (how the
runs were made, the LDAM-DRW check and what it found), closes the generated REPORT.md.
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from studies.analysis import aggregate as shared  # noqa: E402
from studies.analysis.prior_shift import prior_shift_section  # noqa: E402
from studies.analysis.study import Study  # noqa: E402
from studies.fmnist_lt.conclusion import CLASSES, GROUPS, conclusion  # noqa: E402
from studies.fmnist_lt.run import GRID  # noqa: E402

STUDY = Study(
    grid=GRID, script='studies/fmnist_lt/aggregate.py', run_script='studies/fmnist_lt/run.py',
    title='Fashion-MNIST-LT study: CSBA against its controls, LDAM-DRW against CE',
    intro='Test split: Fashion-MNIST\'s balanced 10,000-image test split, so accuracy is balanced accuracy.',
    classes=CLASSES, class_word='class', groups=GROUPS,
    # the paper's question first, its capacity control, then the losses against the same architecture with CE
    comparisons=(('csba', 'sum'), ('csba', 'shared'), ('shared', 'sum'), ('sum_ldam_drw', 'sum'),
                 ('csba_ldam_drw', 'csba'), ('sum_logit_adjusted', 'sum'), ('csba_ldam_drw', 'sum_ldam_drw')),
    focus=('balanced_accuracy', 'f1_head', 'f1_medium', 'f1_tail'), shown=('f1_head', 'f1_medium', 'f1_tail'),
    conclusion=conclusion, bootstrap_metrics=('macro_f1', 'balanced_accuracy'),
    notes=Path(__file__).resolve().parent / 'notes.md',
    # how much re-balancing CE's decisions could buy: the room LDAM-DRW and logit adjustment have here
    sections=(prior_shift_section,))

if __name__ == '__main__':
    shared.main(STUDY, __doc__, ['protocol'])
