"""Hugging Face Hub: stage a training run as a Hub repo, publish it, and seed the HF cache for offline use.

    python -m timm_csba.hub export runs/elpv_study/hub96/csba.s0 --to hub/csba_squeeze.elpv \\
        --seeds runs/elpv_study/hub96/csba.s1 runs/elpv_study/hub96/csba.s2 --study studies/elpv/results.csv
    python -m timm_csba.hub update-study hub/csba_squeeze.elpv    # the card's study row after more seeds joined
    python -m timm_csba.hub push hub/csba_squeeze.elpv --repo-id timm-csba/csba_squeeze.elpv --dry-run
    python -m timm_csba.hub seed-cache hub/        # then HF_HUB_OFFLINE=1 timm.create_model(..., pretrained=True)

`load_pretrained(name)` is `timm.create_model(name, pretrained=True)` as the package's CLIs load weights: the
cached file checked against its checksum and Hub failures in one line.

A staged folder is exactly what is uploaded: model.safetensors and config.json in timm's format (so
`timm.create_model('hf-hub:ORG/NAME')` and `'local-dir:FOLDER'` load it), the model card README.md, and the
run's record: train_args.yaml, provenance.json, test_metrics.json, seeds.json, metrics.jsonl,
confusion_matrix.png and diagnostics/, and study.json when the run belongs to a study (`--study`). `push`
uploads the folder with huggingface_hub (timm's own `push_to_hf_hub` re-saves a live model and writes its own
card, so it fits models, not staged folders).
"""
import argparse
import contextlib
import csv
import hashlib
import json
import os
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import timm
import torch
import yaml
from huggingface_hub import try_to_load_from_cache
from huggingface_hub.errors import LocalEntryNotFoundError, RepositoryNotFoundError
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from timm.models import get_pretrained_cfg_value, load_model_config_from_hf, parse_model_name
from timm.models._hub import load_model_config_from_path, save_config_for_hf

from .data import DatasetError, build_run_dataset
from .files import atomic_dir, file_sha256
from .model_card import CARD_METRICS, model_card
from .models.csba_squeeze import HF_HUB_ORG
from .runs import study_run_dir, study_run_of

__all__ = ['save_pretrained', 'export_run', 'validate_staged', 'registry_repo_id', 'push', 'seed_cache',
           'load_pretrained', 'pretrained_num_classes', 'check_cached_weights', 'HubError']

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
# the Hub stores these through LFS, whose cache blobs are named by the file's sha256 (text files: git blob sha1)
LFS_SUFFIXES = ('.safetensors', '.png', '.bin', '.pt', '.pth')


class HubError(ValueError):
    """A run or staged folder that cannot be exported, published or cached; the message names the fix."""


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
    return Path(directory)


# ---------------------------------------------------------------------------------------------------------
# export: a finished run -> a staged Hub folder


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
    """Mean and sample std (None for a single record) of each key over the records: seeds.json's and study.json's
    summaries, which the card prints as mean ± std."""
    return {k: {'mean': statistics.fmean(float(r[k]) for r in records),
                'std': statistics.stdev(float(r[k]) for r in records) if len(records) > 1 else None} for k in keys}


def _study_summary(results_csv: Path, recipe: str, arm: str, seed: int, label_names: Sequence[str]) -> Dict[str, Any]:
    """The (recipe, arm) row in a study's results.csv, as the study's report gives it: mean and sample std over the
    arm's seeds, which must include `seed` (the staged run's). Rows are named as studies/elpv/aggregate.py names
    them: recipe = the run folder's parent, arm = its name without `.s<seed>`."""
    if not results_csv.is_file():
        raise HubError(f'--study {results_csv} does not exist. Pass the results.csv that `python '
                       f'studies/elpv/aggregate.py` writes, or drop --study.')
    with results_csv.open(newline='') as f:
        rows = [r for r in csv.DictReader(f) if r.get('recipe') == recipe and r.get('arm') == arm]
    if not any(int(r['seed']) == seed for r in rows):
        raise HubError(f'{results_csv} has no row for {study_run_dir(Path(), recipe, arm, seed).as_posix()} '
                       f'(recipe {recipe}, arm {arm}, seed {seed}). Rerun `python studies/elpv/aggregate.py` once '
                       f'the run is diagnosed, or drop --study.')
    keys = ['accuracy', 'balanced_accuracy', 'macro_f1', *(f'f1_{n}' for n in label_names),
            'backbone_cosine_init', 'backbone_cosine_trained']
    missing = [k for k in keys if k not in rows[0]]
    if missing:
        raise HubError(f'{results_csv} lacks the columns {", ".join(missing)}; rerun `python '
                       f'studies/elpv/aggregate.py` to rewrite it.')
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
    from .evaluate import evaluate_split  # here, not at the top: evaluate -> predict -> hub
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


# ---------------------------------------------------------------------------------------------------------
# validate and publish


def _card_metrics(card) -> Dict[str, float]:
    return {r.metric_type: r.metric_value for r in (card.data.eval_results or [])}


def validate_staged(folder: os.PathLike) -> List[Tuple[str, int]]:
    """Check a staged folder the way a user's `pretrained=True` will see it; return (path, bytes) of its files.

    The weights must be readable safetensors whose names and shapes are those of the architecture in
    config.json; the card's front matter must parse, name library `timm` and the config's licence, and carry
    exactly the metrics of test_metrics.json.
    """
    from huggingface_hub import ModelCard
    folder = Path(folder)
    for name in ('model.safetensors', 'config.json', 'README.md', 'test_metrics.json'):
        if not (folder / name).exists():
            raise HubError(f'{folder} lacks {name}; stage it with `python -m timm_csba.hub export RUN --to {folder}`.')
    config = json.loads((folder / 'config.json').read_text())
    if not timm.is_model(config.get('architecture', '')):
        raise HubError(f'{folder}/config.json names architecture {config.get("architecture")!r}, which timm does '
                       f'not know (import timm_csba registers csba_*).')
    if config['num_classes'] != len(config.get('label_names', [])):
        raise HubError(f'{folder}/config.json: num_classes {config["num_classes"]} but '
                       f'{len(config.get("label_names", []))} label_names.')
    model = timm.create_model(config['architecture'], pretrained=False, **config.get('model_args', {}))
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    try:
        with safe_open(str(folder / 'model.safetensors'), framework='pt') as f:
            found = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError) as e:
        raise HubError(f'{folder}/model.safetensors is not a readable safetensors file ({e}); export it again.') \
            from None
    if found != expected:
        diff = sorted(set(found.items()) ^ set(expected.items()))[:5]
        raise HubError(f'{folder}/model.safetensors does not match {config["architecture"]} from config.json '
                       f'(first differences: {diff}).')
    card = ModelCard.load(folder / 'README.md')
    test = json.loads((folder / 'test_metrics.json').read_text())
    license = config.get('pretrained_cfg', {}).get('license')
    if card.data.library_name != 'timm' or card.data.license != license:
        raise HubError(f'{folder}/README.md front matter: library_name {card.data.library_name!r} (want timm), '
                       f'license {card.data.license!r} (config.json says {license!r}).')
    want = {metric_type: test[key] for key, metric_type, _ in CARD_METRICS}
    if _card_metrics(card) != want:
        raise HubError(f'{folder}/README.md reports {_card_metrics(card)} but test_metrics.json has {want}; '
                       f'export the run again.')
    return [(str(p.relative_to(folder)), p.stat().st_size) for p in sorted(folder.rglob('*')) if p.is_file()]


def registry_repo_id(folder: os.PathLike) -> Optional[str]:
    """The Hub repo of the registered tag a staged folder is named for (`<arch>.<tag>`), if the registry has it:
    its hf_hub_id, or for a tag without weights yet (no hf_hub_id) the repo it will be published to."""
    name = Path(folder).name
    if not timm.is_model(name):
        return None
    try:
        cfg = timm.models.get_pretrained_cfg(name)
    except (RuntimeError, AttributeError):  # an architecture without this tag
        return None
    if cfg is None or cfg.tag != name.partition('.')[2]:
        return None
    return cfg.hf_hub_id or f'{HF_HUB_ORG}/{name}'


def _network_errors() -> Tuple[type, ...]:
    """Connection-level exception types of whichever HTTP client this huggingface_hub version uses."""
    errors = [OSError]  # requests' ConnectionError is one
    for module in ('httpx2', 'httpx', 'requests'):
        try:
            client = __import__(module)
        except ImportError:
            continue
        errors.append(getattr(client, 'TransportError', None) or getattr(client, 'RequestException'))
    return tuple(errors)


def push(
        folder: os.PathLike,
        repo_id: str,
        private: Optional[bool] = None,
        revision: Optional[str] = None,
        create_pr: bool = False,
        dry_run: bool = False,
        token: Optional[str] = None,
) -> Tuple[List[Tuple[str, int]], Any]:
    """Validate `folder`, then make model repo `repo_id` exactly the folder; return (files, CommitInfo or None).

    private=None keeps an existing repo's visibility and gives a new one the namespace's default; True/False
    also changes an existing repo (create_repo ignores `private` when the repo exists). Remote files that are
    not in the folder are deleted in the same commit. `revision` is a branch (created from main if missing);
    `create_pr` opens a pull request instead of committing. Token: HF_TOKEN or `hf auth login`.
    """
    files = validate_staged(folder)
    if dry_run:
        return files, None
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError, RepositoryNotFoundError
    from . import __version__
    api = HfApi(token=token, library_name='timm_csba', library_version=__version__)
    try:
        api.create_repo(repo_id, repo_type='model', private=private, exist_ok=True)
        if private is not None:
            api.update_repo_settings(repo_id, private=private, repo_type='model')
        if revision and not create_pr:
            api.create_branch(repo_id, branch=revision, repo_type='model', exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo_id, folder_path=str(folder), repo_type='model', revision=revision, create_pr=create_pr,
            delete_patterns='*',  # the repo becomes exactly the staged folder (.gitattributes is kept)
            commit_message=f'Upload {Path(folder).name} from timm_csba')
    except LocalTokenNotFoundError:
        raise HubError('no Hugging Face token: run `hf auth login` or set HF_TOKEN to a token with write '
                       'access.') from None
    except RepositoryNotFoundError:
        raise HubError(f'the Hub has no repo {repo_id} you can see: check --repo-id, and that your token belongs '
                       f'to the namespace {repo_id.split("/")[0]} or is granted it.') from None
    except HfHubHTTPError as e:
        status = e.response.status_code if e.response is not None else None
        if status == 401:
            raise HubError('the Hub refused the token (401): it is invalid or expired; run `hf auth login` again '
                           'or set HF_TOKEN.') from None
        if status == 403:
            raise HubError(f'the token cannot write to {repo_id} (403): use a token with write access to the '
                           f'namespace {repo_id.split("/")[0]}.') from None
        if status == 404:
            raise HubError(f'{repo_id}: not found (404): check --repo-id and --revision.') from None
        raise HubError(f'the Hub answered {status}: {e}') from None
    except _network_errors() as e:
        raise HubError(f'cannot reach the Hub ({type(e).__name__}: {e}): check the network or HF_ENDPOINT, then '
                       f'push again; nothing was changed if no commit was printed.') from None
    return files, commit


# ---------------------------------------------------------------------------------------------------------
# load published weights: the cached file checked, Hub failures in one line


def _hub_repo(name: str, **kwargs) -> Optional[str]:
    """The Hub repo `timm.create_model(name, pretrained=True, **kwargs)` loads weights from, if any."""
    if name.startswith('hf-hub:'):
        return name[len('hf-hub:'):]
    if ':' in name or not timm.is_model(name) or kwargs.get('pretrained_cfg') or kwargs.get('pretrained_cfg_overlay'):
        return None  # local-dir:, a non-timm name, or weights the caller points at
    return timm.models.get_pretrained_cfg(name).hf_hub_id


def _cached_weights(repo: str) -> Optional[Path]:
    repo_id, _, revision = repo.partition('@')  # timm's 'org/name@revision' form
    path = try_to_load_from_cache(repo_id, 'model.safetensors', revision=revision or None)
    return Path(path) if isinstance(path, str) else None


def check_cached_weights(repo: str) -> bool:
    """Raise when the cached model.safetensors of `repo` differs from what the Hub served (its blob is named by
    its sha256: timm loads a cached file as is, changed or cut short). Returns whether a cached file was checked."""
    path = _cached_weights(repo)
    if path is None:
        return False
    blob = Path(os.path.realpath(path))
    if len(blob.name) == 64 and file_sha256(blob) != blob.name:  # a hand-made cache has nothing to compare with
        raise HubError(f'the cached weights of {repo} ({path}) do not match their checksum: the file was changed or '
                       f'cut short after download. Delete {path.parents[2]} and load again.')
    return True


@contextlib.contextmanager
def _source_errors(name: str, repo: Optional[str], where: Optional[str] = None):
    """The ways reading a model from the Hub or a folder fails, each as one HubError line that names the fix."""
    try:
        yield
    except SafetensorError as e:
        raise HubError(f'the pretrained weights of {name} ({where or repo or name}) are not a readable safetensors '
                       f'file ({e}): the file is truncated or corrupt. Delete it (for a Hub download, its folder in '
                       f'the HF cache) and load again.') from None
    except LocalEntryNotFoundError:
        raise HubError(f'the weights of {name} ({repo}) are not in the Hugging Face cache and the Hub cannot be '
                       f'reached (HF_HUB_OFFLINE=1 or no network). Download them once online, or seed the cache '
                       f'from staged folders: python -m timm_csba.hub seed-cache hub/') from None
    except RepositoryNotFoundError:
        raise HubError(f'the Hub has no repo {repo} (not published yet, or private without a token). From a '
                       f'timm_csba checkout, python -m timm_csba.hub seed-cache hub/ puts the staged weights in the '
                       f'local cache.') from None
    except FileNotFoundError as e:
        raise HubError(f'{name}: {e}. A local-dir: source is a folder with config.json and model.safetensors (a '
                       f'run\'s best/, or a folder staged by python -m timm_csba.hub export).') from None


def load_pretrained(name: str, **kwargs) -> torch.nn.Module:
    """`timm.create_model(name, pretrained=True, **kwargs)` with the cached weights checked and the ways a load
    fails (offline without a cached copy, no such repo or folder, an unreadable file) as one-line HubErrors."""
    repo = _hub_repo(name, **kwargs)
    checked = repo is not None and check_cached_weights(repo)
    with _source_errors(name, repo, where=kwargs.get('pretrained_cfg_overlay', {}).get('file')):
        model = timm.create_model(name, pretrained=True, **kwargs)
    if repo is not None and not checked:
        check_cached_weights(repo)  # just downloaded
    return model


def pretrained_num_classes(name: str) -> Optional[int]:
    """The class count of the weights `load_pretrained(name)` loads: the registry's pretrained cfg of a timm name,
    or the config.json of an hf-hub: or local-dir: source (read without the weights)."""
    source, model_id = parse_model_name(name)
    if source is None:
        return get_pretrained_cfg_value(name, 'num_classes')
    with _source_errors(name, _hub_repo(name)):
        read_config = load_model_config_from_hf if source == 'hf-hub' else load_model_config_from_path
        return read_config(model_id)[0].get('num_classes')


# ---------------------------------------------------------------------------------------------------------
# seed the HF cache: pretrained=True offline, exactly as after a download


def _etag(path: Path) -> str:
    if path.suffix in LFS_SUFFIXES:
        return file_sha256(path)
    data = path.read_bytes()
    return hashlib.sha1(b'blob %d\0' % len(data) + data).hexdigest()  # git's blob id, the Hub's etag


def staged_folders(paths: Sequence[os.PathLike]) -> List[Path]:
    """Staged repos among `paths`: each a folder with config.json, or a folder of such folders (hub/)."""
    found = []
    for path in map(Path, paths):
        if (path / 'config.json').exists():
            found.append(path)
        else:
            found.extend(sorted(p.parent for p in path.glob('*/config.json') if not p.parent.name.startswith('.')))
    if not found:
        raise HubError(f'no staged Hub folders (with config.json) in {", ".join(map(str, paths))}.')
    return found


def seed_cache(paths: Sequence[os.PathLike], org: str = HF_HUB_ORG,
               cache_dir: Optional[os.PathLike] = None) -> List[str]:
    """Write each staged folder into the HF cache as repo `org/<folder name>` at `main`; return the repo ids.

    The layout is the one huggingface_hub writes (blobs named by etag, snapshots/<commit>/ linking to them,
    refs/main), so `hf_hub_download` and timm's `pretrained=True` find the files with HF_HUB_OFFLINE=1.
    """
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name
    cache = Path(cache_dir or constants.HF_HUB_CACHE)
    repo_ids = []
    for folder in staged_folders(paths):
        validate_staged(folder)
        repo_id = f'{org}/{folder.name}'
        storage = cache / repo_folder_name(repo_id=repo_id, repo_type='model')
        files = sorted(p for p in folder.rglob('*') if p.is_file())
        etags = {p: _etag(p) for p in files}
        # a stable stand-in for the Hub's commit id: the same files give the same snapshot
        commit = hashlib.sha1(''.join(f'{p.relative_to(folder)}:{etags[p]}\n' for p in files).encode()).hexdigest()
        snapshot = storage / 'snapshots' / commit
        for path in files:
            blob = storage / 'blobs' / etags[path]
            if not blob.exists():
                blob.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, blob.with_suffix('.incomplete'))
                os.replace(blob.with_suffix('.incomplete'), blob)
            link = snapshot / path.relative_to(folder)
            link.parent.mkdir(parents=True, exist_ok=True)
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(os.path.relpath(blob, link.parent))
        (storage / 'refs').mkdir(parents=True, exist_ok=True)
        (storage / 'refs' / 'main').write_text(commit)
        repo_ids.append(repo_id)
    return repo_ids


# ---------------------------------------------------------------------------------------------------------
# command line


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog='python -m timm_csba.hub', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest='command', required=True)
    p = commands.add_parser('export', help='stage a finished train.py run as a Hub repo folder')
    p.add_argument('run_dir', help='the run directory (runs/<name>)')
    p.add_argument('--to', required=True, help='the staged folder, hub/<arch>.<tag>')
    p.add_argument('--seeds', nargs='*', default=[],
                   help='other-seed runs of the same recipe, or their study records (for mean and std)')
    p.add_argument('--diagnostics', help='diagnostics folder (default: RUN/diagnostics)')
    p.add_argument('--study', help='a study\'s results.csv that holds the run (studies/elpv/results.csv): the card '
                                   'quotes the architecture\'s row')
    p.add_argument('--weights-dtype', default='float32', choices=sorted(WEIGHTS_DTYPES),
                   help='store the weights in this dtype; float16 halves the file, after checking that the run\'s '
                        'test predictions do not change')
    p = commands.add_parser('update-study', help='requote staged folders\' study row from the current results.csv')
    p.add_argument('folders', nargs='+', help='staged folders exported with --study, hub/<arch>.<tag>')
    p.add_argument('--study', default='studies/elpv/results.csv', help='the study\'s results.csv')
    p = commands.add_parser('push', help='upload a staged folder to the Hub')
    p.add_argument('folder', help='the staged folder, hub/<arch>.<tag>')
    p.add_argument('--repo-id', help='ORG/NAME (default: the hf_hub_id timm\'s registry gives the folder\'s tag)')
    p.add_argument('--other-repo-id', action='store_true',
                   help='push to a --repo-id that is not the registry\'s (pretrained=True will not find it there)')
    visibility = p.add_mutually_exclusive_group()
    visibility.add_argument('--private', dest='private', action='store_true', default=None,
                            help='make the repo private, also if it exists (default: keep it; new: the namespace\'s '
                                 'default)')
    visibility.add_argument('--public', dest='private', action='store_false', help='make the repo public')
    p.add_argument('--revision', help='branch to commit to (created from main if missing)')
    p.add_argument('--create-pr', action='store_true', help='open a pull request instead of committing')
    p.add_argument('--dry-run', action='store_true', help='validate and list what would be uploaded; upload nothing')
    p = commands.add_parser('seed-cache', help='put staged folders into the local HF cache (for HF_HUB_OFFLINE=1)')
    p.add_argument('paths', nargs='+', help='staged folders, or hub/ for all of them')
    p.add_argument('--org', default=HF_HUB_ORG, help='the Hub namespace the models are published under')
    p.add_argument('--cache-dir', help='HF hub cache (default: $HF_HUB_CACHE, ~/.cache/huggingface/hub)')
    args = parser.parse_args(argv)
    try:
        if args.command == 'export':
            folder = export_run(args.run_dir, args.to, args.seeds, args.diagnostics, args.study,
                                args.weights_dtype)
            print(f'staged {folder}')
        elif args.command == 'update-study':
            for folder in args.folders:
                seeds = json.loads((update_study(folder, args.study) / 'study.json').read_text())['seeds']
                print(f'{folder}: the card quotes seeds {", ".join(map(str, seeds))} of {args.study}')
        elif args.command == 'push':
            registered = registry_repo_id(args.folder)
            repo_id = args.repo_id or registered or f'{HF_HUB_ORG}/{Path(args.folder).name}'
            if registered and repo_id != registered and not args.other_repo_id:
                raise HubError(f'--repo-id {repo_id} is not where timm looks for {Path(args.folder).name} '
                               f'({registered}); drop --repo-id, or pass --other-repo-id to push there anyway.')
            files, commit = push(args.folder, repo_id, private=args.private, revision=args.revision,
                                 create_pr=args.create_pr, dry_run=args.dry_run)
            verb = 'would upload' if args.dry_run else 'uploaded'
            print(f'{verb} {len(files)} files to https://huggingface.co/{repo_id}:')
            print('\n'.join(f'  {size:>10,d}  {name}' for name, size in files))
            if commit is not None:
                print(f'commit {commit.oid}: {commit.pr_url or commit.commit_url}')
        else:
            for repo_id in seed_cache(args.paths, org=args.org, cache_dir=args.cache_dir):
                print(f'cached {repo_id}')
    except HubError as e:
        sys.exit(f'error: {e}')


if __name__ == '__main__':
    main()
