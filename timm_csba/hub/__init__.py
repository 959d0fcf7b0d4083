"""Hugging Face Hub: stage a training run as a Hub repo, publish it, and seed the HF cache for offline use.

`python -m timm_csba.hub export | update-study | push | seed-cache` does each step from the command line.

`load_pretrained(name)` is `timm.create_model(name, pretrained=True)` as the package's CLIs load weights: the
cached file checked against its checksum and Hub failures in one line.

A staged folder is exactly what is uploaded: model.safetensors and config.json in timm's format (so
`timm.create_model('hf-hub:ORG/NAME')` and `'local-dir:FOLDER'` load it), the model card README.md, and the
run's record: train_args.yaml, provenance.json, test_metrics.json, seeds.json, metrics.jsonl,
confusion_matrix.png and diagnostics/, and study.json when the run belongs to a study (`--study`). `push`
uploads the folder with huggingface_hub (timm's own `push_to_hf_hub` re-saves a live model and writes its own
card, so it fits models, not staged folders).

    export.py    timm's Hub format (save_pretrained); a finished run -> a staged folder; the card's study row
    staged.py    what a staged folder must hold, checked as pretrained=True will read it
    publish.py   push: a Hub model repo made exactly the staged folder
    loading.py   load_pretrained: create_model(pretrained=True), the cached file checked, failures in one line
    cache.py     seed_cache: staged folders into the HF cache, as a download writes them
    __main__.py  the command line
"""
from .cache import seed_cache
from .errors import HubError
from .export import export_run, save_pretrained, update_study
from .loading import check_cached_weights, load_pretrained, pretrained_num_classes, source_config
from .publish import push, registry_repo_id
from .staged import validate_staged

__all__ = ['save_pretrained', 'export_run', 'update_study', 'validate_staged', 'registry_repo_id', 'push',
           'seed_cache', 'load_pretrained', 'pretrained_num_classes', 'source_config', 'check_cached_weights',
           'HubError']
