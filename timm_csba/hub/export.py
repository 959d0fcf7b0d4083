"""Write timm's Hub format, and stage a finished train.py run as a Hub repo folder with its model card.

`save_pretrained` writes a model as train.py's best/ holds it (model.safetensors and timm's config.json);
`export_run` copies a run's best checkpoint and record into a staged folder, with the other seeds' mean and std
and, for a study's run, its architecture's row of the study; `update_study` requotes that row later.
"""
import argparse
import csv
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

import torch
import yaml
from safetensors.torch import load_file, save_file
# private, with no public twin: writes config.json exactly as timm's push_to_hf_hub does (pyproject bounds timm above)
from timm.models._hub import save_config_for_hf

from ..data.builders import build_run_dataset
from ..data.errors import DatasetError
from ..evaluation import evaluate_split
from ..files import atomic_dir, write_json
from ..model_card import CARD_METRICS, study_columns, model_card
from ..pretrained import HubError, load_pretrained
from ..stats import mean_std
from .staged import validate_staged

# files a finished train.py run must hold to be exported, and where each lands in the staged folder
RUN_FILES = {
    'best/model.safetensors': 'model.safetensors',
    'best/config.json': 'config.json',
    'args.yaml': 'train_args.yaml',
    'provenance.json': 'provenance.json',
    'test_metrics.json': 'test_metrics.json',
    'metrics.jsonl': 'metrics.jsonl',
    'confusion_matrix.png': 'confusion_matrix.png',
}
# settings that may differ between the seeds of one recipe; anything else must match
SEED_FREE_KEYS = {'seed', 'output_dir', 'config'}
# how export may store the weights: float16 halves the download and is checked to keep the run's test scores
WEIGHTS_DTYPES = {'float32': torch.float32, 'float16': torch.float16}


def save_pretrained(
        model: torch.nn.Module,
        directory: os.PathLike,
        label_names: Sequence[str],
        data_config: Dict[str, Any],
        model_args: Optional[Dict[str, Any]] = None,
        extra_config: Optional[Dict[str, Any]] = None,
) -> Path:
    """Write `model` to `directory` in timm's Hub format, atomically (a complete folder or the previous one).

    `data_config` is the preprocessing the weights were trained with (input_size, mean, std, interpolation,
    crop_pct); it becomes the pretrained_cfg that `timm.data.resolve_data_config` returns for the export.
    `extra_config` adds top-level config.json keys (e.g. the logit offsets folded into the weights).
    """
    # descriptions of the classes, where they are the ones the model's pretrained cfg describes (timm's
    # top-level config.json field); another dataset's classes get none rather than ELPV's
    cfg = getattr(model, 'pretrained_cfg', None) or {}
    same_classes = tuple(cfg.get('label_names') or ()) == tuple(label_names)
    descriptions = dict(cfg['label_descriptions']) if same_classes and cfg.get('label_descriptions') else None
    with atomic_dir(directory) as tmp:
        # contiguous copies: a channels_last model's conv weights are strided, which safetensors refuses
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp / 'model.safetensors'))
        save_config_for_hf(
            model,
            str(tmp / 'config.json'),
            model_config=dict(label_names=list(label_names), label_descriptions=descriptions,
                              pretrained_cfg=dict(label_names=list(label_names), label_descriptions=descriptions),
                              **(extra_config or {})),
            model_args=model_args,
            data_config=data_config,
        )
        drop_repeated_num_classes(tmp / 'config.json')
        if not same_classes:
            forget_source_dataset(tmp / 'config.json')
    return Path(directory)


# the fields of an architecture's default pretrained cfg that describe the dataset its published weights learnt
SOURCE_DATASET_FIELDS = ('tag', 'license', 'origin_url')


def forget_source_dataset(config_path: Path) -> None:
    """Remove SOURCE_DATASET_FIELDS from a saved config.json's pretrained_cfg: weights trained on other classes
    (a Fashion-MNIST run of csba_squeeze) are not the ELPV weights, and their folder must not claim ELPV's tag,
    licence and origin."""
    config = json.loads(config_path.read_text())
    cfg = config.get('pretrained_cfg', {})
    if any(field in cfg for field in SOURCE_DATASET_FIELDS):
        config['pretrained_cfg'] = {k: v for k, v in cfg.items() if k not in SOURCE_DATASET_FIELDS}
        write_json(config_path, config)


def drop_repeated_num_classes(config_path: Path) -> None:
    """Remove `num_classes` from a timm config.json's model_args, where timm records it beside the top-level
    num_classes: timm builds the head from the top-level one either way, and transformers' TimmWrapper passes
    num_classes=num_labels and then **model_args, so a repeated key fails every
    AutoModelForImageClassification.from_pretrained and pipeline('image-classification') of the folder."""
    config = json.loads(config_path.read_text())
    if 'num_classes' in config.get('model_args', {}):
        del config['model_args']['num_classes']
        write_json(config_path, config)


# what another seed needs for the card's mean and std: a finished run, or its record (studies/elpv/records/...)
SEED_FILES = ('args.yaml', 'test_metrics.json')


def _check_run(run: Path, files: Sequence[str] = tuple(RUN_FILES), what: str = 'a finished train.py run',
               fix: str = 'Export the run directory of a completed `accelerate launch train.py` (runs/<name>).'
               ) -> Dict[str, Any]:
    """The run's args, once `files` are there: RUN_FILES for the exported run, SEED_FILES for another seed."""
    missing = [name for name in files if not (run / name).exists()]
    if missing:
        raise HubError(f'{run} is not {what}: it lacks {", ".join(missing)}. {fix}')
    return yaml.safe_load((run / 'args.yaml').read_text())


def _seed_summary(runs: Sequence[Path], label_names: Sequence[str]) -> Dict[str, Any]:
    """Test metrics of every seed of one recipe, with mean and sample std (None for a single seed)."""
    per_seed = []
    for run in runs:
        test = json.loads((run / 'test_metrics.json').read_text())
        per_seed.append({'seed': test['seed'], 'run': run.name, **{k: test[k] for k, _, _ in CARD_METRICS},
                         **{f'f1_{n}': test['per_class'][n]['f1'] for n in label_names}})
    keys = [k for k in per_seed[0] if k not in ('seed', 'run')]
    return {'num_seeds': len(per_seed), 'seeds': per_seed, 'summary': _spread(per_seed, keys)}


def _spread(records: Sequence[Dict[str, Any]], keys: Sequence[str]) -> Dict[str, Dict[str, Optional[float]]]:
    """Mean and sample std of each key over the records: seeds.json's and study.json's summaries, which the card
    prints as mean ± std. JSON has no NaN, so a std of a single record is None."""
    spread = {}
    for k in keys:
        mean, std = mean_std([float(r[k]) for r in records])
        spread[k] = {'mean': mean, 'std': None if math.isnan(std) else std}
    return spread


# A study (studies/<name>/) trains each run in <runs>/<recipe>/<arm>.s<seed> and aggregates them into a results.csv
# of one row per run: recipe, arm, seed and the run's metrics. `--study` quotes the run's (recipe, arm) rows.
def study_run_dir(runs: Path, recipe: str, arm: str, seed: int) -> Path:
    """Where a study trains one run: <runs>/<recipe>/<arm>.s<seed>."""
    return runs / recipe / f'{arm}.s{seed}'


def study_run_of(run: Path) -> Tuple[str, str]:
    """(recipe, arm) of a study run folder, the inverse of `study_run_dir` (its seed is in its args.yaml)."""
    return run.parent.name, run.name.rsplit('.s', 1)[0]


def _study_summary(results_csv: Path, recipe: str, arm: str, seed: int, label_names: Sequence[str]) -> Dict[str, Any]:
    """The (recipe, arm) rows of a study's results.csv, summarised for the card: mean and sample std over the
    arm's seeds, which must include `seed` (the staged run's), of the columns the card quotes."""
    if not results_csv.is_file():
        raise HubError(f'--study {results_csv} does not exist. Pass the results.csv that the study\'s aggregate '
                       f'step writes (studies/<name>/aggregate.py), or drop --study.')
    with results_csv.open(newline='') as f:
        rows = [r for r in csv.DictReader(f) if r.get('recipe') == recipe and r.get('arm') == arm]
    if not any(int(r['seed']) == seed for r in rows):
        raise HubError(f'{results_csv} has no row for {study_run_dir(Path(), recipe, arm, seed).as_posix()} '
                       f'(recipe {recipe}, arm {arm}, seed {seed}). Rerun the study\'s aggregate step '
                       f'(studies/<name>/aggregate.py) once the run is diagnosed, or drop --study.')
    keys = study_columns(label_names)
    missing = [k for k in keys if k not in rows[0]]
    if missing:
        raise HubError(f'{results_csv} lacks the columns {", ".join(missing)} that the card quotes; rerun the '
                       f'study\'s aggregate step (studies/<name>/aggregate.py) to rewrite it.')
    return {'results': results_csv.as_posix(), 'report': results_csv.with_name('REPORT.md').as_posix(),
            'recipe': recipe, 'arm': arm, 'seeds': sorted(int(r['seed']) for r in rows),
            'summary': _spread(rows, keys)}


def _copy_weights_as(source: Path, dest: Path, dtype: torch.dtype) -> None:
    tensors = load_file(str(source))
    save_file({k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()}, str(dest),
              metadata={'format': 'pt'})


def _check_scores_unchanged(folder: Path, train_args: Dict[str, Any], weights_dtype: str) -> None:
    """Score the staged weights on the run's test split: the card quotes the run's test_metrics.json, so weights
    stored at a lower precision must give the run's confusion matrix exactly."""
    try:
        test = build_run_dataset(argparse.Namespace(**train_args), splits=('test',))[0]['test']
    except DatasetError as e:
        raise HubError(f'cannot rebuild the run\'s test split to check the weights ({e}).') from None
    found = evaluate_split(load_pretrained(f'local-dir:{folder}'), test)['confusion_matrix']
    want = json.loads((folder / 'test_metrics.json').read_text())['confusion_matrix']
    if found != want:
        raise HubError(f'the weights in {weights_dtype} change the run\'s test predictions (confusion matrix '
                       f'{found}, the run\'s {want}); export them with --weights-dtype float32.')


def export_run(run_dir: os.PathLike, to: os.PathLike, seed_runs: Sequence[os.PathLike] = (),
               diagnostics_dir: Optional[os.PathLike] = None, study: Optional[os.PathLike] = None,
               weights_dtype: str = 'float32') -> Path:
    """Stage the run's best checkpoint as a Hub repo in `to` (atomically), with its model card.

    `seed_runs` are the same recipe with other seeds, as run folders or the study's records of them (only their
    args.yaml and test_metrics.json are read): their test metrics give the card's mean and std; the weights are
    those of `run_dir`. Diagnostics come from `diagnostics_dir` (default RUN/diagnostics, as
    written by `python -m timm_csba.diagnose --model-dir RUN/best --compare init --out RUN/diagnostics`).
    `study` is a study's results.csv holding the run (studies/elpv/results.csv): the card then quotes the
    architecture's row of that study (study.json) and names its report.
    `weights_dtype` float16 stores the weights at half the size (they load into timm's float32 model as usual),
    once they are checked to give the run's test confusion matrix exactly.
    """
    run, to = Path(run_dir), Path(to)
    args = _check_run(run)
    runs = [run] + [Path(r) for r in seed_runs if Path(r).resolve() != run.resolve()]
    for other in runs[1:]:
        other_args = _check_run(other, SEED_FILES, 'a finished run of another seed', 'Pass run directories of '
                                'completed train.py runs, or their study records, to --seeds.')
        differs = sorted(k for k in set(args) | set(other_args)
                         if k not in SEED_FREE_KEYS and args.get(k) != other_args.get(k))
        if differs:
            raise HubError(f'{other} is not another seed of {run}: {", ".join(differs)} differ. Pass only runs '
                           f'of the same recipe to --seeds.')
    diagnostics = Path(diagnostics_dir) if diagnostics_dir else run / 'diagnostics'
    if not (diagnostics / 'diagnostics.json').exists():
        raise HubError(f'{diagnostics} holds no diagnostics.json. Run `python -m timm_csba.diagnose --model-dir '
                       f'{run / "best"} --compare init --out {run / "diagnostics"}` first, or pass --diagnostics.')

    with atomic_dir(to) as tmp:
        for source, name in RUN_FILES.items():
            if name == 'model.safetensors' and weights_dtype != 'float32':
                _copy_weights_as(run / source, tmp / name, WEIGHTS_DTYPES[weights_dtype])
            else:
                shutil.copyfile(run / source, tmp / name)
        drop_repeated_num_classes(tmp / 'config.json')  # a run saved before save_pretrained dropped it
        if weights_dtype != 'float32':
            _check_scores_unchanged(tmp, args, weights_dtype)
        (tmp / 'diagnostics').mkdir()
        for path in sorted(diagnostics.iterdir()):
            if path.suffix in ('.json', '.png'):
                shutil.copyfile(path, tmp / 'diagnostics' / path.name)
        config = json.loads((tmp / 'config.json').read_text())
        seeds = _seed_summary(runs, config['label_names'])
        (tmp / 'seeds.json').write_text(json.dumps(seeds, indent=2) + '\n')
        if study is not None:
            row = _study_summary(Path(study), *study_run_of(run), args['seed'], config['label_names'])
            (tmp / 'study.json').write_text(json.dumps(row, indent=2) + '\n')
        (tmp / 'README.md').write_text(model_card(tmp, repo_name=to.name))
        validate_staged(tmp)
    return to


def update_study(folder: os.PathLike, study: os.PathLike) -> Path:
    """Requote a staged folder's study row (study.json and the card) from the study's results.csv as it is now,
    e.g. after seeds 3 and 4 joined; the weights and every other file stay as exported, and the seed-0 run folder
    is not needed. The folder is replaced whole or not at all."""
    folder = Path(folder)
    if not (folder / 'study.json').is_file():
        raise HubError(f'{folder} quotes no study (no study.json). Export its run with `python -m timm_csba.hub '
                       f'export RUN --to {folder} --study RESULTS_CSV` instead.')
    quoted = json.loads((folder / 'study.json').read_text())
    seed = yaml.safe_load((folder / 'train_args.yaml').read_text())['seed']
    label_names = json.loads((folder / 'config.json').read_text())['label_names']
    row = _study_summary(Path(study), quoted['recipe'], quoted['arm'], seed, label_names)
    with atomic_dir(folder) as tmp:
        shutil.copytree(folder, tmp, dirs_exist_ok=True)
        (tmp / 'study.json').write_text(json.dumps(row, indent=2) + '\n')
        (tmp / 'README.md').write_text(model_card(tmp, repo_name=folder.name))
        validate_staged(tmp)
    return folder
