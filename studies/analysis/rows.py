"""A study's table: one row per finished, diagnosed run (test metrics, group F1, conflict at init and after
training, branch gradient shares, attention overlap), read from run folders or the runner's records."""
import json
import math
from pathlib import Path
from typing import Any, Dict, Sequence

import numpy as np
import pandas as pd
import yaml

from studies.analysis.study import Study
from timm_csba.diagnostics import RunDiagnostics
from timm_csba.hub.export import study_run_dir, study_run_of

# the parameter sets the diagnostics measure conflict on: the backbone as a whole, each stage, the head
SETS = ('backbone', 'stem', 'stages.0', 'stages.1', 'stages.2', 'stages.3', 'head')
# rows of runs whose folders were gone before the runner kept records, one file per recipe's folder
ROWS_WITHOUT_RECORDS = 'rows_without_records.csv'


def _mean_off_diagonal(matrix: np.ndarray) -> float:
    """Mean over classes of the off-diagonal entries of each class's [B, B] matrix (NaN without two branches)."""
    values = [m[i, j] for m in matrix for i in range(len(m)) for j in range(len(m)) if i != j]
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else math.nan


def run_row(run: Path, study: Study) -> Dict[str, Any]:
    """The CSV row of one finished, diagnosed run."""
    args = yaml.safe_load((run / 'args.yaml').read_text())
    test = json.loads((run / 'test_metrics.json').read_text())
    history = [json.loads(line) for line in (run / 'metrics.jsonl').read_text().splitlines()]
    report = RunDiagnostics.from_json(json.loads((run / 'diagnostics' / 'diagnostics.json').read_text()))
    trained, init = report.diagnostics, report.compare
    names = trained.class_names
    if tuple(names) != tuple(study.classes) or list(test['per_class']) != list(study.classes):
        raise SystemExit(f'error: {run} has the classes {", ".join(names)}, not the study\'s '
                         f'({", ".join(study.classes)}); is it a run of another study?')
    recipe, arm = study_run_of(run)
    row: Dict[str, Any] = {
        'recipe': recipe, 'arm': arm, 'architecture': args['model'],
        'loss': args['loss'], 'seed': args['seed'], 'epochs': len(history), 'best_epoch': test['best_epoch'],
        'train_hours': sum(r.get('epoch_time_s', 0) for r in history) / 3600,
        'accuracy': test['accuracy'], 'balanced_accuracy': test['balanced_accuracy'], 'macro_f1': test['macro_f1'],
        **{f'f1_{n}': test['per_class'][n]['f1'] for n in names},
        **{f'f1_{group}': float(np.mean([test['per_class'][n]['f1'] for n in members]))
           for group, members in study.groups.items()},
    }
    for name in SETS:
        for kind in ('cosine', 'magnitude'):
            for when, diagnostics in (('init', init), ('trained', trained)):
                stats = diagnostics.parameter_sets.get(name) if diagnostics is not None else None
                row[f'{name}_{kind}_{when}'] = stats.summary[kind].mean_off_diagonal if stats else math.nan
    for when, diagnostics in (('init', init), ('trained', trained)):
        stats = diagnostics.parameter_sets['backbone']
        row[f'backbone_cosine_negpairs_{when}'] = stats.summary['cosine'].mean_most_negative_pairs
        # a class's mean cosine with the other classes: what the Spearman against its F1 pools
        for n, value in zip(names, stats.row_mean_cosine()):
            row[f'conflict_{n}_{when}'] = value
    shares = trained.branches.grad_shares.numpy() if trained.branches is not None else None
    for b in range(3):
        row[f'branch{b}_grad_share'] = float(np.nanmean(shares[b])) if shares is not None else math.nan
    row['attention_jaccard'] = _mean_off_diagonal(trained.attention.jaccard.numpy()) if trained.attention else math.nan
    return row


def collect(runs: Path, recipes: Sequence[str], study: Study) -> tuple:
    """(rows of the diagnosed runs, names of finished runs without diagnostics) under runs/<recipe>/, with the
    rows of runs/<recipe>/rows_without_records.csv for the runs that have no folder there; in the grid's arm
    order, then by seed."""
    rows, undiagnosed = [], []
    for recipe in recipes:
        folders = sorted(p for p in (runs / recipe).glob('*.s*') if p.is_dir() and not p.name.startswith('.'))
        for run in folders:
            if not (run / 'test_metrics.json').exists():
                continue
            if not (run / 'diagnostics' / 'diagnostics.json').exists():
                undiagnosed.append(f'{recipe}/{run.name}')
                continue
            rows.append(run_row(run, study))
        kept = runs / recipe / ROWS_WITHOUT_RECORDS
        if kept.exists():
            names = {run.name for run in folders}
            for row in pd.read_csv(kept).to_dict('records'):
                if row['recipe'] != recipe:
                    raise SystemExit(f'error: {kept} holds a row of recipe {row["recipe"]!r}; move it to '
                                     f'{runs / row["recipe"] / ROWS_WITHOUT_RECORDS}.')
                if study_run_dir(runs, recipe, row['arm'], row['seed']).name not in names:
                    rows.append(row)
    order = {recipe: i for i, recipe in enumerate(recipes)}
    arms = {arm: i for i, arm in enumerate(study.grid.arms)}
    rows.sort(key=lambda r: (order[r['recipe']], arms.get(r['arm'], len(arms)), r['arm'], r['seed']))
    return rows, undiagnosed
