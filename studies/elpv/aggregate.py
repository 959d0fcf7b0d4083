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
rows equal the ones kept before. Writes results.csv (one row per run), REPORT.md and plots/*.png next to this file:
rows.py reads the runs into the table, comparisons.py computes the statistics, plots.py and report.py write them.
"""
import argparse
import sys
from pathlib import Path
from typing import Sequence

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from studies.elpv.plots import plot  # noqa: E402
from studies.elpv.report import report  # noqa: E402
from studies.elpv.rows import collect  # noqa: E402
from studies.elpv.run import RECORDS  # noqa: E402
from timm_csba.files import write_text  # noqa: E402
from timm_csba.cli_args import positive_int  # noqa: E402

HERE = Path(__file__).resolve().parent


def aggregate(runs: Path, recipes: Sequence[str], out: Path, resamples: int = 2000) -> pd.DataFrame:
    rows, undiagnosed = collect(runs, recipes)
    if not rows:
        raise SystemExit(f'error: no finished, diagnosed runs under {runs} for {", ".join(recipes)}; run '
                         f'studies/elpv/run.py first.')
    table = pd.DataFrame(rows)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / 'results.csv', table.to_csv(index=False))
    for recipe, group in table.groupby('recipe', sort=False):
        plot(group, out / 'plots' / recipe)  # one recipe's runs per figure: arms compare within a recipe
    write_text(out / 'REPORT.md', report(table, runs, undiagnosed, resamples))
    return table


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--recipe', nargs='+', default=['hub96', 'hub'], help='recipes to read, in the report\'s order')
    parser.add_argument('--runs', type=Path, default=RECORDS,
                        help='the runner\'s records (default) or run folders, as <recipe>/<arm>.s<seed>')
    parser.add_argument('--out', type=Path, default=HERE, help='where results.csv, REPORT.md and plots/ go')
    parser.add_argument('--resamples', type=positive_int, default=2000, help='bootstrap resamples of the test images')
    args = parser.parse_args(argv)
    table = aggregate(args.runs, args.recipe, args.out, args.resamples)
    print(f'{len(table)} runs -> {args.out / "results.csv"}, {args.out / "REPORT.md"}')


if __name__ == '__main__':
    main()
