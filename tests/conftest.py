"""Fixtures shared by the test files, and the reports tests leave on the config (e.g. the timm suite's counts).

`smoke_run` is the one train.py run the train, hub and diagnostics tests share (session-scoped): the smoke preset
for 4 epochs with conflict summaries every 2, seed 0, then `python -m timm_csba.diagnose --compare init --params
backbone layerwise` into its diagnostics/. `second_seed_smoke_run` is the same recipe at seed 1, for what needs two seeds (the Hub card's std).
"""
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

ROOT = Path(__file__).resolve().parents[1]
SMOKE = str(ROOT / 'configs' / 'smoke.yaml')


def _smoke_train_command(run: Path, seed: int = 0) -> List[str]:
    return [sys.executable, str(ROOT / 'train.py'), '--config', SMOKE, '--epochs', '4', '--diagnose-every', '2',
            '--diagnose-batches', '4', '--seed', str(seed), '--output-dir', str(run)]


def _check(*command) -> None:
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        raise AssertionError(result.stderr[-3000:])


def _diagnosed_smoke_run(run: Path, seed: int) -> Path:
    _check(*_smoke_train_command(run, seed))
    _check(sys.executable, '-m', 'timm_csba.diagnose', '--model-dir', str(run / 'best'), '--compare', 'init',
           '--params', 'backbone', 'layerwise', '--max-batches', '2',
            '--batch-size', '8', '--num-workers', '0', '--out', str(run / 'diagnostics'))
    return run


@pytest.fixture(scope='session')
def smoke_train_command():
    """`smoke_train_command(run_dir)`: the shared run's train.py command for another folder (same weights)."""
    return _smoke_train_command


@pytest.fixture(scope='session')
def smoke_run(tmp_path_factory) -> Path:
    return _diagnosed_smoke_run(tmp_path_factory.mktemp('runs') / 'smoke.s0', seed=0)


@pytest.fixture(scope='session')
def second_seed_smoke_run(tmp_path_factory) -> Path:
    return _diagnosed_smoke_run(tmp_path_factory.mktemp('runs') / 'smoke.s1', seed=1)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    for title, text in getattr(config, 'csba_reports', []):
        terminalreporter.write_sep('=', title)
        terminalreporter.write_line(text)
