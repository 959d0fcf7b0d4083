"""Issue 14's study: does CSBA reduce gradient conflict, and does that lift the minority grades? The grid, run.

    python studies/elpv/run.py                                      # every arm x seeds 0-4, two runs side by side
    python studies/elpv/run.py --arms csba sum --seeds 0 1 2 --parallel 2 --threads 1
    python studies/elpv/run.py --recipe hub --arms csba sum --seeds 0 1 2        # the weights published before
    python studies/elpv/run.py --dry-run                            # what each run would do now
    python studies/elpv/aggregate.py                                # results.csv, REPORT.md and plots from the records

Every run is `train.py --config <recipe's config> <recipe's flags> <arm's flags> --seed S` into
runs/elpv_study/<recipe>/<arm>.s<S>, then `python -m timm_csba.diagnose --compare init --params backbone
layerwise` of its best checkpoint on the train split into the run's diagnostics/ (conflict after training and at
initialisation, backbone and per stage, in one gradient pass each). Re-running skips finished runs, resumes
killed ones from their last checkpoint (train.py --resume) and diagnoses trained ones that lack diagnostics, so
the grid can be killed at any time and continued in a later session. The run folders hold weights and stay out of
git; each finished run's small files (what the aggregator reads, no weights) are copied to
studies/elpv/records/<recipe>/<arm>.s<S>, which is committed, so the study outlives the session that ran it.
"""
import argparse
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from timm_csba.files import atomic_dir
from timm_csba.cli_args import non_negative_int, positive_int
from timm_csba.hub.export import study_run_dir
from timm_csba.runs import saved_epochs

ROOT = Path(__file__).resolve().parents[2]
RUNS = ROOT / 'runs' / 'elpv_study'
RECORDS = Path(__file__).resolve().parent / 'records'
# what the aggregator reads of a run (about 190 KB); the weights stay in the run folder and, for published seeds, hub/
RECORD_FILES = ('args.yaml', 'metrics.jsonl', 'test_metrics.json', 'test_predictions.csv', 'provenance.json',
                'diagnostics/diagnostics.json')

# arm -> train.py flags; sum is the paper's baseline, shared the capacity control for csba (the same gate
# parameters, one gate for all branches), sum_focal the loss-side alternative to an architectural fix
ARMS: Dict[str, List[str]] = {
    'sum': ['--model', 'csba_squeeze_sum'],
    'csba': ['--model', 'csba_squeeze'],
    'shared': ['--model', 'csba_squeeze_shared'],
    'gradnorm': ['--model', 'csba_squeeze_gradnorm'],
    'heads': ['--model', 'csba_squeeze_heads'],
    'sum_focal': ['--model', 'csba_squeeze_sum', '--loss', 'focal'],
}
# recipe -> (config, train.py flags), every flag that sets the recipe explicit so that each run's recorded command
# stays exact whatever the config file says later. 'hub96' is the recipe of the published weights
# (configs/elpv_hub.yaml: 150 epochs at 96 px, square-root sampling, EMA; a csba run at one thread, two side by
# side, took 33 min on the avx512 AMD EPYC, 72-75 on the Intel Xeon and 100 on the AVX2-only EPYC), so the
# study's runs at seeds 0-2 are also the published weights and their card's seeds. 'hub' is
# the recipe of the weights published before: the same compute spent on 90 epochs at 128 px, which scored 0.06-0.08
# lower in validation macro-F1 (studies/elpv_recipe/REPORT.md).
RECIPES: Dict[str, tuple] = {
    'hub96': ('configs/elpv_hub.yaml', ['--img-size', '96', '--epochs', '150']),
    'hub': ('configs/elpv_hub.yaml', ['--img-size', '128', '--epochs', '90']),
    'smoke': ('configs/smoke.yaml', ['--epochs', '2']),  # the tests' grid: seconds
}
SEEDS = (0, 1, 2, 3, 4)


def state_of(run: Path) -> str:
    """'done', 'trained' (needs diagnostics), 'killed' (resume from a checkpoint) or 'new'."""
    if (run / 'test_metrics.json').exists():
        return 'done' if (run / 'diagnostics' / 'diagnostics.json').exists() else 'trained'
    if saved_epochs(run):
        return 'killed'
    return 'new'


def record_dir(run: Path, records: Path) -> Path:
    return records / run.parent.name / run.name  # records/<recipe>/<arm>.s<seed>, the run folder's layout


def is_recorded(run: Path, records: Path) -> bool:
    return all((record_dir(run, records) / name).exists() for name in RECORD_FILES)


def record(run: Path, records: Path) -> Path:
    """Copy a done run's RECORD_FILES to records/<recipe>/<run>; the folder appears whole or not at all."""
    with atomic_dir(record_dir(run, records)) as tmp:
        for name in RECORD_FILES:
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(run / name, tmp / name)
    return record_dir(run, records)


def _from_root(path: Path) -> str:
    # commands run in the repository root and name its paths relatively, so the command a run records (and a
    # model card made from it quotes) is the one a fresh clone runs
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def train_command(recipe: str, arm: str, seed: int, run: Path, threads: int) -> List[str]:
    config, flags = RECIPES[recipe]
    train = [sys.executable, 'train.py', '--threads', str(threads)]
    if state_of(run) == 'killed':
        return [*train, '--resume', _from_root(run)]  # the run's own args.yaml: the same recipe, arm and seed
    return [*train, '--config', config, *flags, *ARMS[arm], '--seed', str(seed), '--output-dir', _from_root(run),
            '--overwrite']  # --overwrite: a folder left by a run that died before its first checkpoint


def diagnose_command(run: Path, seed: int, max_batches: int = 0) -> List[str]:
    # the initialisation compared with is drawn with the run's training seed, one per seed as the runs are
    return [sys.executable, '-m', 'timm_csba.diagnose', '--model-dir', _from_root(run / 'best'), '--compare', 'init',
            '--init-seed', str(seed), '--params', 'backbone', 'layerwise', '--split', 'train', '--num-workers', '0',
            *(['--max-batches', str(max_batches)] if max_batches else []), '--out', _from_root(run / 'diagnostics')]


def steps(recipe: str, arm: str, seed: int, runs: Path, threads: int, max_batches: int = 0) -> List[List[str]]:
    """The commands that bring one run to 'done' from where it stands."""
    run = study_run_dir(runs, recipe, arm, seed)
    state = state_of(run)
    if state == 'done':
        return []
    commands = [] if state == 'trained' else [train_command(recipe, arm, seed, run, threads)]
    return [*commands, diagnose_command(run, seed, max_batches)]


def _execute(run: Path, commands: Sequence[List[str]], threads: int) -> int:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))  # diagnose has no --threads of its own
    run.parent.mkdir(parents=True, exist_ok=True)
    with open(run.parent / f'{run.name}.log', 'a') as log:
        for command in commands:
            log.write(f'$ {" ".join(command)}\n')
            log.flush()
            code = subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env).returncode
            if code != 0:
                return code
    return 0


def run_grid(recipe: str, arms: Sequence[str], seeds: Sequence[int], runs: Path = RUNS, parallel: int = 2,
             threads: int = 1, max_batches: int = 0, dry_run: bool = False,
             records: Optional[Path] = RECORDS) -> Dict[str, str]:
    """Bring every (arm, seed) run of the recipe to 'done', `parallel` at a time, and record each done run under
    `records` (None: keep no records); return {run name: outcome}."""
    jobs = {}
    for seed in seeds:  # seed-major: a grid cut short still has whole seeds of every arm to compare
        for arm in arms:
            run = study_run_dir(runs, recipe, arm, seed)
            jobs[run.name] = (run, steps(recipe, arm, seed, runs, threads, max_batches))
    outcomes = {name: 'done, skipped' for name, (_, commands) in jobs.items() if not commands}
    todo = {name: job for name, job in jobs.items() if job[1]}
    if dry_run:
        for name, (run, commands) in todo.items():
            print(f'{name} ({state_of(run)}):\n' + ''.join(f'  {" ".join(c)}\n' for c in commands))
        unrecorded = [name for name in outcomes if records is not None and not is_recorded(jobs[name][0], records)]
        return {**outcomes, **{name: 'would record' for name in unrecorded}, **{name: 'would run' for name in todo}}
    for name in outcomes:  # done in an earlier pass that ended before recording it
        run = jobs[name][0]
        if records is not None and not is_recorded(run, records):
            print(f'{name}: recorded in {record(run, records)}', flush=True)
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        futures = {name: pool.submit(_execute, run, commands, threads) for name, (run, commands) in todo.items()}
        for name, future in futures.items():
            code = future.result()
            outcomes[name] = 'done' if code == 0 else f'failed (exit {code}; see {name}.log)'
            where = f', recorded in {record(jobs[name][0], records)}' if code == 0 and records is not None else ''
            print(f'{name}: {outcomes[name]}{where}', flush=True)
    return outcomes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--recipe', default='hub96', choices=RECIPES, help='the training recipe of every run')
    parser.add_argument('--arms', nargs='+', default=list(ARMS), choices=ARMS, help='architectures / losses')
    parser.add_argument('--seeds', nargs='+', type=int, default=list(SEEDS), help='training seeds')
    parser.add_argument('--parallel', type=positive_int, default=2, help='runs side by side')
    parser.add_argument('--threads', type=positive_int, default=1, help='CPU threads per run')
    parser.add_argument('--diagnose-batches', type=non_negative_int, default=0,
                        help='single-class batches per diagnosis (0: the whole train split)')
    parser.add_argument('--runs', type=Path, default=RUNS, help='where the run folders go')
    parser.add_argument('--records', type=Path, default=None,
                        help='where each done run\'s small files are copied for the aggregator (default: '
                             f'{RECORDS.relative_to(ROOT)}, committed; for the smoke recipe RUNS/records, not '
                             'committed)')
    parser.add_argument('--dry-run', action='store_true', help='print what each unfinished run would run')
    args = parser.parse_args(argv)
    if args.records is None:  # a smoke grid checks the machinery; its records must not land among the study's
        args.records = args.runs / 'records' if args.recipe == 'smoke' else RECORDS
    outcomes = run_grid(args.recipe, args.arms, args.seeds, args.runs, args.parallel, args.threads,
                        args.diagnose_batches, args.dry_run, args.records)
    return int(any(o.startswith('failed') for o in outcomes.values()))


if __name__ == '__main__':
    sys.exit(main())
