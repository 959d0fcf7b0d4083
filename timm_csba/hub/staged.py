"""What a staged Hub folder must hold, checked the way a user's `pretrained=True` will read it."""
import json
import os
from pathlib import Path
from typing import Dict, List, Tuple

import timm
from safetensors import SafetensorError, safe_open

from ..model_card import CARD_METRICS
from ..pretrained import HubError


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
    model = timm.create_model(config['architecture'], pretrained=False,
                              **{'num_classes': config['num_classes'], **config.get('model_args', {})})
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
