"""Hugging Face Hub: stage a training run as a Hub repo, publish it, and seed the HF cache for offline use.

`python -m timm_csba.hub export | update-study | push | seed-cache` does each step from the command line.

`load_pretrained(name)` (timm_csba.pretrained, re-exported here) is `timm.create_model(name, pretrained=True)` as
the package's CLIs load weights: the cached file checked against its checksum and Hub failures in one line.

A staged folder is exactly what is uploaded: model.safetensors and config.json in timm's format (so
`timm.create_model('hf-hub:ORG/NAME')` and `'local-dir:FOLDER'` load it), the model card README.md, and the
run's record: train_args.yaml, provenance.json, test_metrics.json, seeds.json, metrics.jsonl,
confusion_matrix.png and diagnostics/, and study.json when the run belongs to a study (`--study`). `push`
uploads the folder with huggingface_hub (timm's own `push_to_hf_hub` re-saves a live model and writes its own
card, so it fits models, not staged folders).

    export.py    timm's Hub format (save_pretrained); a finished run -> a staged folder; the card's study row
    staged.py    what a staged folder must hold, checked as pretrained=True will read it
    publish.py   push: a Hub model repo made exactly the staged folder
    cache.py     seed_cache: staged folders into the HF cache, as a download writes them
    __main__.py  the command line
"""
from ..lazy import lazy_exports

# public name -> the module that defines it; they load on first use, so that `python -m timm_csba.hub` without the
# [train] extra can say so in one line (export needs `datasets`)
_EXPORTS = {
    'save_pretrained': '.export', 'export_run': '.export', 'update_study': '.export',
    'validate_staged': '.staged', 'push': '.publish', 'seed_cache': '.cache',
    'load_pretrained': '..pretrained', 'pretrained_num_classes': '..pretrained', 'source_config': '..pretrained',
    'check_cached_weights': '..pretrained', 'registry_repo_id': '..pretrained', 'HubError': '..pretrained',
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
