"""A study's grid of train.py runs (recipe x arm x seed), run, resumed and recorded: the runner every study shares
(studies/elpv/run.py, studies/fmnist_lt/run.py define theirs).

Every run is `train.py --config <recipe's config> <recipe's flags> <arm's flags> --seed S` into
<runs>/<recipe>/<arm>.s<S>, then `python -m timm_csba.diagnose --compare init --params backbone layerwise` of its
best checkpoint on the train split into the run's diagnostics/ (conflict after training and at initialisation,
backbone and per stage, in one gradient pass each). Re-running skips finished runs, resumes killed ones from their
last checkpoint (train.py --resume) and diagnoses trained ones that lack diagnostics, so a grid can be killed at any
time and continued in a later session. The run folders hold weights and stay out of git; each finished run's small
files (what the aggregator reads, no weights) are copied to <records>/<recipe>/<arm>.s<S>, which is committed, so
the study outlives the session that ran it.
"""
import argparse
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from timm_csba.cli_args import non_negative_int, positive_int
from timm_csba.files import atomic_dir
from timm_csba.hub.export import study_run_dir
from timm_csba.runs import saved_epochs

ROOT = Path(__file__).resolve().parents[1]
# what an aggregator reads of a run (about 190 KB for ELPV); the weights stay in the run folder
RECORD_FILES = ('args.yaml', 'metrics.jsonl', 'test_metrics.json', 'test_predictions.csv', 'provenance.json',
                'diagnostics/diagnostics.json')


@dataclass(frozen=True)
class Grid:
    """A study: where its runs and records go, its arms (arm -> train.py flags), its recipes (recipe -> (config,
    train.py flags), every flag that sets the recipe explicit so that each run's recorded command stays exact
    whatever the config file says later) and its default seeds, which `arm_seeds` overrides for the arms a study
    runs at fewer (or more) seeds."""
    runs: Path
    records: Path
    arms: Dict[str, List[str]]
    recipes: Dict[str, Tuple[str, List[str]]]
    seeds: Tuple[int, ...]
    arm_seeds: Dict[str, Tuple[int, ...]] = field(default_factory=dict)

    def seeds_of(self, arm: str) -> Tuple[int, ...]:
        return self.arm_seeds.get(arm, self.seeds)


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


def train_command(grid: Grid, recipe: str, arm: str, seed: int, run: Path, threads: int) -> List[str]:
    config, flags = grid.recipes[recipe]
    train = [sys.executable, 'train.py', '--threads', str(threads)]
    if state_of(run) == 'killed':
        return [*train, '--resume', _from_root(run)]  # the run's own args.yaml: the same recipe, arm and seed
    return [*train, '--config', config, *flags, *grid.arms[arm], '--seed', str(seed), '--output-dir',
            _from_root(run), '--overwrite']  # --overwrite: a folder left by a run that died before its first checkpoint


def diagnose_command(run: Path, seed: int, max_batches: int = 0) -> List[str]:
    # the initialisation compared with is drawn with the run's training seed, one per seed as the runs are
    return [sys.executable, '-m', 'timm_csba.diagnose', '--model-dir', _from_root(run / 'best'), '--compare', 'init',
            '--init-seed', str(seed), '--params', 'backbone', 'layerwise', '--split', 'train', '--num-workers', '0',
            *(['--max-batches', str(max_batches)] if max_batches else []), '--out', _from_root(run / 'diagnostics')]


def steps(grid: Grid, recipe: str, arm: str, seed: int, runs: Path, threads: int,
          max_batches: int = 0) -> List[List[str]]:
    """The commands that bring one run to 'done' from where it stands."""
    run = study_run_dir(runs, recipe, arm, seed)
    state = state_of(run)
    if state == 'done':
        return []
    commands = [] if state == 'trained' else [train_command(grid, recipe, arm, seed, run, threads)]
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


def run_grid(grid: Grid, recipe: str, arms: Sequence[str], seeds: Optional[Sequence[int]], runs: Path,
             parallel: int = 2, threads: int = 1, max_batches: int = 0, dry_run: bool = False,
             records: Optional[Path] = None) -> Dict[str, str]:
    """Bring every (arm, seed) run of the recipe to 'done', `parallel` at a time, and record each done run under
    `records` (None: keep no records); return {run name: outcome}. `seeds` None: each arm's own (`Grid.seeds_of`)."""
    seeds_of = {arm: tuple(seeds) if seeds is not None else grid.seeds_of(arm) for arm in arms}
    jobs = {}
    for seed in sorted({s for arm_seeds in seeds_of.values() for s in arm_seeds}):
        # seed-major: a grid cut short still has whole seeds of every arm to compare
        for arm in (a for a in arms if seed in seeds_of[a]):
            run = study_run_dir(runs, recipe, arm, seed)
            if records is not None and is_recorded(run, records) and state_of(run) != 'done':
                # finished on another machine: its folder is gone (runs/ does not outlive one), its records are all
                # the aggregator reads
                jobs[run.name] = (run, [])
                continue
            jobs[run.name] = (run, steps(grid, recipe, arm, seed, runs, threads, max_batches))
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


def _seeds(seeds: Sequence[int]) -> str:
    return ' '.join(map(str, seeds))


def main(grid: Grid, description: str, default_recipe: str, argv=None) -> int:
    """The command line of a study's run.py."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--recipe', default=default_recipe, choices=grid.recipes,
                        help='the training recipe of every run')
    parser.add_argument('--arms', nargs='+', default=list(grid.arms), choices=grid.arms, help='the arms to run')
    parser.add_argument('--seeds', nargs='+', type=int,
                        help=f'training seeds of every arm (default: {_seeds(grid.seeds)}' + ''.join(
                            f'; {arm}: {_seeds(seeds)}' for arm, seeds in grid.arm_seeds.items()) + ')')
    parser.add_argument('--parallel', type=positive_int, default=2, help='runs side by side')
    parser.add_argument('--threads', type=positive_int, default=1, help='CPU threads per run')
    parser.add_argument('--diagnose-batches', type=non_negative_int, default=0,
                        help='single-class batches per diagnosis (0: the whole train split)')
    parser.add_argument('--runs', type=Path, default=grid.runs, help='where the run folders go')
    parser.add_argument('--records', type=Path, default=None,
                        help='where each done run\'s small files are copied for the aggregator (default: '
                             f'{_from_root(grid.records)}, committed; for the smoke recipe RUNS/records, not '
                             'committed)')
    parser.add_argument('--dry-run', action='store_true', help='print what each unfinished run would run')
    args = parser.parse_args(argv)
    if args.records is None:  # a smoke grid checks the machinery; its records must not land among the study's
        args.records = args.runs / 'records' if args.recipe == 'smoke' else grid.records
    outcomes = run_grid(grid, args.recipe, args.arms, args.seeds, args.runs, args.parallel, args.threads,
                        args.diagnose_batches, args.dry_run, args.records)
    return int(any(o.startswith('failed') for o in outcomes.values()))
