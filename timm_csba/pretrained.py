"""Load published weights: `timm.create_model(pretrained=True)` with the cached file checked against its checksum,
the ways a load fails as one line each, and the Hub repo a registered tag is published to.

This is the core install's loader (torch, timm, huggingface-hub, safetensors): predict and the Hub code build on it.
"""
import contextlib
import os
from pathlib import Path
from typing import Any, Dict, Optional

import timm
import torch
from huggingface_hub import try_to_load_from_cache
from huggingface_hub.errors import LocalEntryNotFoundError, RepositoryNotFoundError
from safetensors import SafetensorError
from timm.models import get_pretrained_cfg_value, parse_model_name
# private, with no public twin: download_from_hf fetches one file of a repo as timm's own loader does (revision and
# cache handling included), load_cfg_from_json reads timm's config.json; pyproject bounds timm above for them
from timm.models._hub import download_from_hf, load_cfg_from_json

from .files import file_sha256
from .models import use_cosine_classifier
from .models.csba_squeeze import HF_HUB_ORG


class HubError(ValueError):
    """Weights or a staged Hub folder that cannot be loaded, exported, published or cached; the message names the
    fix."""


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
    fails (offline without a cached copy, no such repo or folder, an unreadable file) as one-line HubErrors.

    Weights trained with a normalised classifier on a model that has no argument for it (train.py --cosine-scale
    on any timm model but csba_*, whose model_args carry it) get it back from their config.json's cosine_scale."""
    repo = _hub_repo(name, **kwargs)
    checked = repo is not None and check_cached_weights(repo)
    with _source_errors(name, repo, where=kwargs.get('pretrained_cfg_overlay', {}).get('file')):
        model = timm.create_model(name, pretrained=True, **kwargs)
    if repo is not None and not checked:
        check_cached_weights(repo)  # just downloaded
    cosine_scale = (source_config(name) or {}).get('cosine_scale')
    if cosine_scale and model.num_classes and getattr(model, 'cosine_scale', None) is None:
        use_cosine_classifier(model, cosine_scale, zero_bias=False)
    return model


def model_architecture(name: str) -> str:
    """The timm architecture `name` builds: a registry name without its tag, or the config.json's architecture of
    an hf-hub: or local-dir: source."""
    config = source_config(name)
    return config['architecture'] if config else timm.models.split_model_name_tag(name)[0]


def source_config(name: str) -> Optional[Dict[str, Any]]:
    """The whole config.json of an hf-hub: or local-dir: source, read without the weights (it keeps top-level keys
    such as folded logit offsets, which timm's cfg readers drop); None for a registry name."""
    source, model_id = parse_model_name(name)
    if source is None:
        return None
    with _source_errors(name, _hub_repo(name)):
        path = download_from_hf(model_id, 'config.json') if source == 'hf-hub' else Path(model_id) / 'config.json'
        return load_cfg_from_json(path)


def pretrained_num_classes(name: str) -> Optional[int]:
    """The class count of the weights `load_pretrained(name)` loads: the registry's pretrained cfg of a timm name,
    or the config.json of an hf-hub: or local-dir: source."""
    config = source_config(name)
    if config is None:
        return get_pretrained_cfg_value(name, 'num_classes')
    # timm's own precedence (_parse_model_cfg): a top-level num_classes overrides the pretrained cfg's
    return config.get('num_classes', config.get('pretrained_cfg', {}).get('num_classes'))


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
