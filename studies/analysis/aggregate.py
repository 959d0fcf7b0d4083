"""Aggregate a study: its runs' rows to results.csv, the figures to plots/<recipe>/ and REPORT.md, beside the
study's own aggregate.py, which gives its `Study` and calls `main` here."""
import argparse
from pathlib import Path
from typing import Sequence

import pandas as pd

from studies.analysis.plots import plot
from studies.analysis.report import report
from studies.analysis.rows import collect
from studies.analysis.study import Study
from timm_csba.cli_args import positive_int
from timm_csba.files import write_text


def aggregate(study: Study, runs: Path, recipes: Sequence[str], out: Path, resamples: int = 2000) -> pd.DataFrame:
    rows, undiagnosed = collect(runs, recipes, study)
    if not rows:
        raise SystemExit(f'error: no finished, diagnosed runs under {runs} for {", ".join(recipes)}; run '
                         f'{study.run_script} first.')
    table = pd.DataFrame(rows)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / 'results.csv', table.to_csv(index=False))
    for recipe, group in table.groupby('recipe', sort=False):
        plot(group, out / 'plots' / recipe, study)  # one recipe's runs per figure: arms compare within a recipe
    write_text(out / 'REPORT.md', report(table, runs, undiagnosed, study, resamples))
    return table


def main(study: Study, doc: str, recipes: Sequence[str], argv=None) -> None:
    here = study.grid.records.parent
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--recipe', nargs='+', default=list(recipes), help='recipes to read, in the report\'s order')
    parser.add_argument('--runs', type=Path, default=study.grid.records,
                        help='the runner\'s records (default) or run folders, as <recipe>/<arm>.s<seed>')
    parser.add_argument('--out', type=Path, default=here, help='where results.csv, REPORT.md and plots/ go')
    parser.add_argument('--resamples', type=positive_int, default=2000, help='bootstrap resamples of the test images')
    args = parser.parse_args(argv)
    table = aggregate(study, args.runs, args.recipe, args.out, args.resamples)
    print(f'{len(table)} runs -> {args.out / "results.csv"}, {args.out / "REPORT.md"}')
