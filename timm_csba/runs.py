"""A train.py run on disk: its resolved config, its directory, what produced it, and its checkpoints.

    RUN/args.yaml          the resolved config: defaults < YAML preset < command line (`resolve_config`)
    RUN/provenance.json    command, git commit, package versions, device (`provenance`)
    RUN/checkpoints/       accelerate states epoch_NNNN: the last N and the best (`save_checkpoint`)

train.py keeps the story (data, model, loop); the bookkeeping around it lives here.
"""
import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import List, Mapping, Optional, Sequence

import torch
import yaml

from .cli_args import NUMBER_TYPES, yaml_mapping
from .files import replace_dir, write_yaml
from .runtime import LAUNCHER_PRECISION_ENV, launcher_precision

__all__ = [
    'RunError', 'IDENTITY_KEYS', 'resolve_config', 'run_dir_of', 'check_run_dir', 'prepare_run_dir', 'provenance',
    'launch_command', 'saved_epochs', 'latest_checkpoint', 'TrainState', 'save_checkpoint',
]

# what makes a run the run it is: a resume that changes one of these is refused
IDENTITY_KEYS = ('model', 'dataset', 'data_dir', 'hub_id', 'dataset_options', 'split_seed', 'in_chans')
# flags that steer one invocation and are not part of the run's config
NOT_SAVED = ('resume', 'overwrite')


class RunError(ValueError):
    """A config, run directory or checkpoint that cannot be used; the message names the fix."""


def _read_preset(config_path: str) -> dict:
    try:
        preset = yaml.safe_load(Path(config_path).read_text()) or {}
    except FileNotFoundError:
        raise RunError(f'config {config_path} does not exist; pass --config with a YAML preset such as '
                       f'configs/elpv.yaml') from None
    except yaml.YAMLError as e:
        raise RunError(f'config {config_path} is not valid YAML ({" ".join(str(e).split())}); fix the file') from None
    if not isinstance(preset, dict):
        raise RunError(f'config {config_path} holds a {type(preset).__name__}, not a mapping of flag names to values')
    return preset


def _check_preset_values(parser: argparse.ArgumentParser, args: argparse.Namespace, config_path: str) -> None:
    """argparse checks types and choices on the command line only, not on defaults a YAML preset set."""
    # argparse has no public list of a parser's actions; _actions has been stable since Python 3.2
    for action in parser._actions:
        value = getattr(args, action.dest, None)
        if value is None:
            continue
        if action.choices is not None and value not in action.choices:
            raise RunError(f'{config_path}: {action.dest}: {value!r} is not one of '
                           f'{", ".join(map(str, action.choices))}')
        if action.type is yaml_mapping and not isinstance(value, dict):
            raise RunError(f'{config_path}: {action.dest}: {value!r} is not a mapping of option names to values')
        if action.type in NUMBER_TYPES:
            for item in value if isinstance(value, list) else [value]:
                try:  # through str, as from the command line: a YAML 2.5 or true is not an integer
                    action.type(str(item))
                except (ValueError, argparse.ArgumentTypeError) as e:
                    raise RunError(f'{config_path}: {action.dest}: {e}') from None


def resolve_config(parser: argparse.ArgumentParser, argv: Sequence[str],
                   default_config: str = 'configs/elpv.yaml') -> argparse.Namespace:
    """Defaults < YAML config < command line. Unknown YAML keys and values of the wrong type or range, or outside
    a flag's choices, are errors."""
    known, _ = parser.parse_known_args(argv)
    if known.resume and not (run_dir_of(Path(known.resume)) / 'args.yaml').is_file():
        raise RunError(f'--resume {known.resume}: not a train.py run directory or one of its checkpoints (no '
                       f'args.yaml); pass runs/<name> or runs/<name>/checkpoints/epoch_NNNN')
    config_path = known.config
    if config_path is None and known.resume:
        config_path = str(run_dir_of(Path(known.resume)) / 'args.yaml')
    config_path = config_path or default_config
    preset = _read_preset(config_path)
    valid = {a.dest for a in parser._actions} - {'help', *NOT_SAVED}
    unknown = sorted(set(preset) - valid)
    if unknown:
        raise RunError(f'{config_path} has unknown key(s) {", ".join(unknown)}; valid keys: {", ".join(sorted(valid))}')
    parser.set_defaults(**preset)
    args = parser.parse_args(argv)
    _check_preset_values(parser, args, config_path)
    # a run resumed from its own args.yaml keeps the name of the preset it was started from (its card cites it)
    resumed_from_own_args = known.config is None and known.resume
    args.config = (preset.get('config') or config_path) if resumed_from_own_args else config_path
    if args.resume and known.output_dir is None:  # a resumed run stays where it is now, wherever it was started
        args.output_dir = str(run_dir_of(Path(args.resume)))
    elif args.output_dir is None:
        args.output_dir = f'runs/{Path(config_path).stem}'
    return args


def run_dir_of(path: Path) -> Path:
    """The run directory of a run directory or of one of its checkpoints."""
    return path.parent.parent if path.parent.name == 'checkpoints' else path


def _cannot_make(out_dir: Path, reason: str) -> RunError:
    return RunError(f'cannot make the run directory {out_dir} ({reason}); pass --output-dir a folder you can write')


def check_run_dir(args: argparse.Namespace, out_dir: Path) -> None:
    """Refuse, before any work, a run directory that cannot be this run's: another run without --resume or
    --overwrite, a resume with a different identity, or a file where the folder must go."""
    if args.resume is None and (out_dir / 'args.yaml').exists() and not args.overwrite and saved_epochs(out_dir):
        raise RunError(f'{out_dir} holds another run; pass --resume {out_dir} to continue it, --overwrite to '
                       f'replace it, or another --output-dir')
    if args.resume is not None:
        saved = yaml.safe_load((run_dir_of(Path(args.resume)) / 'args.yaml').read_text())
        changed = [k for k in IDENTITY_KEYS if saved.get(k) != getattr(args, k)]
        if changed:
            raise RunError('--resume of a run with a different ' + ', '.join(
                f'{k} ({saved.get(k)!r} there, {getattr(args, k)!r} here)' for k in changed))
    existing = next(p for p in (out_dir.absolute(), *out_dir.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise _cannot_make(out_dir, 'File exists' if existing == out_dir.absolute() else f'{existing} is a file')


def prepare_run_dir(args: argparse.Namespace, out_dir: Path) -> None:
    """Make `out_dir` the run's directory (main process only, after `check_run_dir`) and write args.yaml; a run
    that ended before its first checkpoint (bad input, killed early) holds nothing to keep and is replaced."""
    if args.resume is None and (out_dir / 'args.yaml').exists():
        shutil.rmtree(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # a place this user cannot write
        raise _cannot_make(out_dir, e.strerror) from None
    write_yaml(out_dir / 'args.yaml', {k: v for k, v in vars(args).items() if k not in NOT_SAVED})


def provenance(accelerator, source_dir: Path) -> dict:
    """What produced this run, for the model card: command, git commit of `source_dir`, versions, hardware."""
    try:
        commit = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=source_dir, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = bool(subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'], cwd=source_dir,
                                    capture_output=True, text=True, check=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (e.g. an unpacked sdist)
        commit, dirty = None, None
    return {
        'command': ' '.join([launch_command(accelerator.num_processes, accelerator.device.type), *sys.argv[1:]]),
        'git_commit': commit, 'git_dirty': dirty,
        'num_processes': accelerator.num_processes, 'mixed_precision': accelerator.mixed_precision,
        'threads_per_process': torch.get_num_threads(),
        'device': torch.cuda.get_device_name() if torch.cuda.is_available() else platform.processor() or 'cpu',
        'python': platform.python_version(),
        'packages': {name: _installed_version(name) for name in (
            'torch', 'torchvision', 'timm', 'accelerate', 'datasets', 'safetensors', 'timm_csba')},
        'started': time.strftime('%Y-%m-%dT%H:%M:%S%z'),
    }


def launch_command(num_processes: int, device_type: str, environ: Mapping[str, str] = os.environ) -> str:
    """How train.py was started, as a reader would type it again (the arguments that follow are sys.argv[1:])."""
    # `accelerate launch` leaves its mixed precision in the environment; torchrun and plain python do not
    if LAUNCHER_PRECISION_ENV not in environ:
        return f'torchrun --nproc_per_node {num_processes} train.py' if num_processes > 1 else 'python train.py'
    launcher = 'accelerate launch'
    if num_processes > 1:
        launcher = ('ACCELERATE_USE_CPU=true ' if device_type == 'cpu' else '') + \
            f'{launcher} --multi_gpu --num_processes {num_processes}'
    requested = launcher_precision(environ[LAUNCHER_PRECISION_ENV])
    if requested:
        launcher += f' --mixed_precision {requested}'
    return f'{launcher} train.py'


def _installed_version(name: str) -> Optional[str]:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:  # e.g. timm_csba used from a source tree on PYTHONPATH
        return None


def saved_epochs(run: Path) -> List[Path]:
    """The complete epoch checkpoints of a run directory, oldest first (a save in progress is not one yet)."""
    return sorted((Path(run) / 'checkpoints').glob('epoch_*'))


def latest_checkpoint(path: Path) -> Path:
    """The checkpoint to resume from: the newest epoch of a run directory, or a checkpoint folder itself."""
    if (path / 'checkpoints').is_dir():
        epochs = saved_epochs(path)
        if not epochs:
            raise RunError(f'{path} has no checkpoints to resume from')
        return epochs[-1]
    if not (path / 'model.safetensors').exists() and not list(path.glob('pytorch_model*')):
        raise RunError(f'{path} is neither a run directory nor a checkpoint folder')
    return path


class TrainState:
    """What besides weights, optimizer and RNGs a resume must restore: progress, early stopping, and every
    epoch's validation logits (`val_logits`: (epoch, float16 [N, C] tensor) pairs, written to
    val_predictions.npz)."""

    def __init__(self):
        self.epoch, self.updates, self.best, self.best_epoch, self.bad_epochs, self.history = 0, 0, -1.0, -1, 0, []
        self.val_logits = []

    def state_dict(self):
        return dict(vars(self))

    def load_state_dict(self, state):
        vars(self).update(state)


def save_checkpoint(accelerator, out_dir: Path, epoch: int, keep: Sequence[int]) -> None:
    """accelerate save_state into a temp folder, renamed when complete; then prune all epochs but `keep`.

    accelerate's own rotation (ProjectConfiguration(automatic_checkpoint_naming=True, total_limit=N)) deletes
    the oldest states whatever they hold, so it would delete the best epoch's; hence the rotation here.
    """
    ckpt_dir = out_dir / 'checkpoints'
    tmp = ckpt_dir / f'.tmp_epoch_{epoch:04d}'
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)  # left by a killed run
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        replace_dir(tmp, ckpt_dir / f'epoch_{epoch:04d}')
        kept = {f'epoch_{e:04d}' for e in keep}
        for old in ckpt_dir.glob('epoch_*'):
            if old.name not in kept:
                shutil.rmtree(old)
    accelerator.wait_for_everyone()
