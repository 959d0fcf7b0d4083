"""Issue 14's study, read: one CSV row per finished run, the statistics, the plots and REPORT.md.

    python studies/elpv/aggregate.py                              # studies/elpv/records/<recipe>/* -> studies/elpv/
    python studies/elpv/aggregate.py --runs runs/elpv_study       # the run folders themselves (this session's)
    python studies/elpv/aggregate.py --out /tmp/study             # a report elsewhere, results.csv left as it is

Reads each finished run's args.yaml, test_metrics.json, test_predictions.csv, metrics.jsonl and
diagnostics/diagnostics.json (a run without diagnostics is left out and listed), by default from the records the
runner keeps in git. Runs finished before records were kept survive only as their rows in
records/<recipe>/rows_without_records.csv: their rows join the table and the tests over seeds, and the bootstrap
over test images, which needs predictions, resamples the seeds that kept them and names the runs left out. The
seed-0 runs among them whose weights are published were recorded afterwards from their hub/ folder (the run's
args.yaml, metrics, test metrics, provenance and diagnostics), with test_predictions.csv from `python -m
timm_csba.evaluate local-dir:hub/<arch>.elpv --split test`, which gives the run's confusion matrix exactly; their
rows equal the ones kept before. Writes results.csv (one row per run), REPORT.md and plots/*.png next to this file
with studies/analysis (the aggregation every study shares); the questions are answered in conclusion.py.
"""
import sys
from pathlib import Path
from typing import Sequence

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from studies.analysis import aggregate as shared  # noqa: E402
from studies.analysis.study import Study  # noqa: E402
from studies.elpv.conclusion import GRADES, MINORITY, conclusion  # noqa: E402
from studies.elpv.run import GRID  # noqa: E402

STUDY = Study(
    grid=GRID, script='studies/elpv/aggregate.py', run_script='studies/elpv/run.py',
    title='ELPV study: gradient conflict and the minority grades',
    intro='Test split: split seed 0, 525 cells.',
    classes=GRADES, class_word='grade',
    # the comparisons the referee asked for: CSBA against the summed baseline and against its capacity control;
    # then the other fixes against the baseline, and the architectural fix against the loss-side one
    comparisons=(('csba', 'sum'), ('csba', 'shared'), ('shared', 'sum'), ('gradnorm', 'sum'), ('heads', 'sum'),
                 ('sum_focal', 'sum'), ('csba', 'sum_focal')),
    focus=tuple(f'f1_{g}' for g in MINORITY), shown=tuple(f'f1_{g}' for g in GRADES), conclusion=conclusion)


def aggregate(runs: Path, recipes: Sequence[str], out: Path, resamples: int = 2000) -> pd.DataFrame:
    return shared.aggregate(STUDY, runs, recipes, out, resamples)


if __name__ == '__main__':
    shared.main(STUDY, __doc__, ['hub96', 'hub'])
