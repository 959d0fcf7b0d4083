"""The model card (README.md) of a staged Hub folder, laid out as timm's own Hub cards are.

`model_card(folder, repo_name)` reads what export already put in the folder (config.json, test_metrics.json,
seeds.json, provenance.json, train_args.yaml, diagnostics/, study.json if any) and renders
`model_card_template.md` with `huggingface_hub.ModelCard.from_template`. The front matter carries the test
metrics as model-index results (macro-F1 marked as macro, the fixed split in dataset_args) and no `datasets:`
id, since ELPV is not a Hub dataset.
"""
import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import timm
import yaml

from .diagnostics import RunDiagnostics
from .models import count_gmacs
from .pretrained import registry_repo_id
from .stats import format_mean_std as _fmt

__all__ = ['CARD_METRICS', 'study_columns', 'model_card']

TEMPLATE = Path(__file__).with_name('model_card_template.md')
# (test_metrics.json key, model-index metric type, display name); METRIC_ARGS qualifies a type where needed
CARD_METRICS = (('accuracy', 'accuracy', 'Test accuracy'), ('macro_f1', 'f1', 'Test macro-F1'),
                ('balanced_accuracy', 'balanced_accuracy', 'Test balanced accuracy'))
METRIC_ARGS = {'f1': {'average': 'macro'}}
# ELPV 4-class reference points: a published lightweight CNN's accuracy, and our macro-F1 target
REFERENCE_ACCURACY, REFERENCE_MACRO_F1 = 0.835, 0.65

CSBA_TITLE = 'Class-Specific Branch Attention for Mitigating Gradient Interference under Class Imbalance'
CSBA_CITATION = """\
@misc{csba,
  title = {Class-Specific Branch Attention for Mitigating Gradient Interference under Class Imbalance},
  note  = {Manuscript; the architecture is sections 3-4}
}"""

TIMM_CITATION = """\
@misc{rw2019timm,
  author       = {Ross Wightman},
  title        = {PyTorch Image Models},
  year         = {2019},
  publisher    = {GitHub},
  journal      = {GitHub repository},
  doi          = {10.5281/zenodo.4414861},
  howpublished = {\\url{https://github.com/huggingface/pytorch-image-models}}
}"""

ELPV_CITATION = """\
@article{Deitsch2021,
  title   = {Segmentation of photovoltaic module cells in uncalibrated electroluminescence images},
  author  = {Deitsch, Sergiu and Buerhop-Lutz, Claudia and Sovetkin, Evgenii and Steland, Ansgar and
             Maier, Andreas and Gallwitz, Florian and Riess, Christian},
  journal = {Machine Vision and Applications}, volume = {32}, number = {4}, year = {2021},
  doi     = {10.1007/s00138-021-01191-9}
}
@inproceedings{Buerhop2018,
  title     = {A Benchmark for Visual Identification of Defective Solar Cells in Electroluminescence Imagery},
  author    = {Buerhop-Lutz, Claudia and Deitsch, Sergiu and Maier, Andreas and Gallwitz, Florian and
               Berger, Stephan and Doll, Bernd and Hauch, Jens and Camus, Christian and Brabec, Christoph J.},
  booktitle = {European PV Solar Energy Conference and Exhibition (EU PVSEC)}, year = {2018},
  doi       = {10.4229/35thEUPVSEC20182018-5CV.3.15}
}
@article{Deitsch2019,
  title   = {Automatic classification of defective photovoltaic module cells in electroluminescence images},
  author  = {Deitsch, Sergiu and Christlein, Vincent and Berger, Stephan and Buerhop-Lutz, Claudia and
             Maier, Andreas and Gallwitz, Florian and Riess, Christian},
  journal = {Solar Energy}, volume = {185}, pages = {455--468}, year = {2019},
  doi     = {10.1016/j.solener.2019.02.067}
}"""

ELPV_LICENCE = """\
The ELPV images are licensed [CC BY-NC-SA 4.0](https://creativecommons.org/licenses/by-nc-sa/4.0/); these
weights are trained on them and are released under the same licence. In practice: you may use, share and adapt
them **for non-commercial purposes only**, you must credit the ELPV authors (citation below) and this model, and
anything you distribute that is built from these weights (fine-tuned weights, say) must carry the same licence.
For commercial use, train on data you hold the rights to (`train.py --dataset pv_faults --data-dir ...`). This
is a summary, not legal advice."""


def _mean_std(stats: Dict[str, Optional[float]]) -> str:
    return _fmt(stats['mean'], stats['std'])


def study_columns(label_names: Sequence[str]) -> List[str]:
    """The columns of a study's results.csv that the card's study table quotes (mean ± std over the arm's seeds)."""
    return ['accuracy', 'balanced_accuracy', 'macro_f1', *(f'f1_{n}' for n in label_names),
            'backbone_cosine_init', 'backbone_cosine_trained']


def _study_table(study: Dict[str, Any], label_names) -> Dict[str, Any]:
    """Header and row of the card's study table, the columns of the study report's per-arm table."""
    s = study['summary']
    header = ['seeds', 'accuracy', 'macro-F1', *(f'F1 {n}' for n in label_names), 'backbone cosine init → trained']
    row = [str(len(study['seeds'])), _mean_std(s['accuracy']), _mean_std(s['macro_f1']),
           *(_mean_std(s[f'f1_{n}']) for n in label_names),
           f'{_mean_std(s["backbone_cosine_init"])} → {_mean_std(s["backbone_cosine_trained"])}']
    return {'study_header': header, 'study_row': row}


def _card_data(config: Dict[str, Any], test: Dict[str, Any], args: Dict[str, Any], repo_name: str):
    from huggingface_hub import EvalResult, ModelCardData
    split = {key: args[key] for key in ('split_seed', 'val_fraction', 'test_fraction')}
    results = [EvalResult(task_type='image-classification', task_name='Image Classification',
                          dataset_type='elpv', dataset_name='ELPV (4 defect-probability grades)',
                          dataset_split='test', dataset_args=split, metric_type=metric_type, metric_name=name,
                          metric_value=test[key], metric_args=METRIC_ARGS.get(metric_type))
               for key, metric_type, name in CARD_METRICS]
    return ModelCardData(
        library_name='timm', license=config['pretrained_cfg'].get('license'), pipeline_tag='image-classification',
        tags=['image-classification', 'timm', 'timm_csba', 'class-imbalance', 'photovoltaic', 'electroluminescence'],
        model_name=repo_name, eval_results=results,
    )


def _model_stats(config: Dict[str, Any]) -> Dict[str, Any]:
    """Parameters, GMACs, feature maps and pooled width of the architecture at the card's input size."""
    model = timm.create_model(config['architecture'], **{'num_classes': config['num_classes'],
                                                         **config.get('model_args', {})})
    input_size = tuple(config['pretrained_cfg']['input_size'])
    feature_info = ', '.join(f'{info["num_chs"]} ch at 1/{info["reduction"]}' for info in model.feature_info)
    return dict(params_m=f'{sum(p.numel() for p in model.parameters()) / 1e6:.2f}',
                gmacs=f'{count_gmacs(model, input_size):.2f}', feature_info=feature_info,
                num_features=model.num_features)


def _weights_dtype(path: Path) -> str:
    """The floating dtype the weights are stored in (safetensors names it F32, F16, BF16)."""
    from safetensors import safe_open
    with safe_open(str(path), framework='pt') as f:
        stored = {f.get_slice(k).get_dtype() for k in f.keys()}
    return next((name for code, name in (('F16', 'float16'), ('BF16', 'bfloat16')) if code in stored), 'float32')


def model_card(folder: os.PathLike, repo_name: str) -> str:
    """The README.md of a staged folder, from the files already in it (config, metrics, seeds, provenance)."""
    from huggingface_hub import ModelCard
    folder = Path(folder)
    config = json.loads((folder / 'config.json').read_text())
    test = json.loads((folder / 'test_metrics.json').read_text())
    seeds = json.loads((folder / 'seeds.json').read_text())
    prov = json.loads((folder / 'provenance.json').read_text())
    args = yaml.safe_load((folder / 'train_args.yaml').read_text())
    diag = RunDiagnostics.from_json(json.loads((folder / 'diagnostics' / 'diagnostics.json').read_text()))
    history = [json.loads(line) for line in (folder / 'metrics.jsonl').read_text().splitlines()]
    study = json.loads((folder / 'study.json').read_text()) if (folder / 'study.json').exists() else None
    arch, names, cfg = config['architecture'], config['label_names'], config['pretrained_cfg']
    summary, n = seeds['summary'], seeds['num_seeds']

    def seeds_cell(key):  # the table's last column, present only with more than one seed
        s = summary[key]
        return f' {_mean_std(s)} |' if n > 1 else ''

    per_class = test['per_class']
    backbone = diag.diagnostics.parameter_sets['backbone'].summary['cosine']
    conflict = (f'Mean off-diagonal cosine {_fmt(backbone.mean_off_diagonal)} (std '
                f'{_fmt(backbone.std_off_diagonal)}); mean of the {backbone.k} most negative majority–minority '
                f'pairs {_fmt(backbone.mean_most_negative_pairs)}')
    if diag.compare is not None and 'backbone' in diag.compare.parameter_sets:
        init = diag.compare.parameter_sets['backbone'].summary['cosine']
        conflict += f'; at initialisation {_fmt(init.mean_off_diagonal)} and {_fmt(init.mean_most_negative_pairs)}'
    # the card shows the backbone's conflict matrices, which its text describes, and links the other sets' ones
    pictures = sorted(folder.glob('diagnostics/*.png'))
    others = [p for p in pictures if p.name.startswith('gcm_') and not p.stem.endswith('_backbone')]
    val_pct, test_pct = round(100 * args['val_fraction']), round(100 * args['test_fraction'])
    in_chans, height, width = cfg['input_size']
    repo_id = registry_repo_id(folder) or registry_repo_id(repo_name) or repo_name
    try:  # the registry's cfg of the tag, for folders exported before config.json carried descriptions
        registry = timm.models.get_pretrained_cfg(repo_name)
    except RuntimeError:  # a tag the registry does not know
        registry = None
    descriptions = config.get('label_descriptions') or getattr(registry, 'label_descriptions', None) or {}
    return str(ModelCard.from_template(
        _card_data(config, test, args, repo_name), template_path=str(TEMPLATE),
        repo_name=repo_name, repo_id=repo_id, arch=arch,
        what=(timm.models.model_entrypoint(arch).__doc__ or '').strip().splitlines()[0],
        class_list=', '.join(f'`{n}`' for n in names), label_names=names, label_descriptions=descriptions,
        paper_name=cfg.get('paper_name') or getattr(registry, 'paper_name', None) or CSBA_TITLE,
        num_classes=len(names),
        in_chans=in_chans, height=height, width=width, **_model_stats(config),
        split_seed=args['split_seed'], seed=args['seed'], monitor=args['monitor'],
        split_percent=f'{100 - val_pct - test_pct}/{val_pct}/{test_pct}',
        seed_phrase=f'{n} seed{"s" if n > 1 else ""}', seed_list=', '.join(str(s['seed']) for s in seeds['seeds']),
        logit_offsets=config.get('logit_offsets'),
        weights_dtype=_weights_dtype(folder / 'model.safetensors'),
        num_seeds=n,
        overall_rows='\n'.join(f'| {label} | {test[key]:.3f} |{seeds_cell(key)}' for key, _, label in CARD_METRICS),
        f1_rows='\n'.join(
            f'| {name} | {per_class[name]["support"]} | {per_class[name]["precision"]:.3f} | '
            f'{per_class[name]["recall"]:.3f} | {per_class[name]["f1"]:.3f} |{seeds_cell("f1_" + name)}'
            for name in names),
        reference_accuracy=REFERENCE_ACCURACY, reference_macro_f1=REFERENCE_MACRO_F1,
        accuracy=f'{test["accuracy"]:.3f}', macro_f1=f'{test["macro_f1"]:.3f}',
        reference_verdict='at or above' if test['accuracy'] >= REFERENCE_ACCURACY else 'below',
        weak_classes=', '.join(f'`{n}`' for n in names if per_class[n]['f1'] < 0.2) or 'none',
        study=study, **(_study_table(study, names) if study else {}),
        conflict_summary=conflict + '.',
        pictures='\n'.join(f'![{p.name}](diagnostics/{p.name})' for p in pictures if p not in others),
        other_pictures=', '.join(f'[{p.name}](diagnostics/{p.name})' for p in others),
        command=prov['command'], config_name=Path(args['config']).name, processes=prov['num_processes'],
        device=prov['device'], mixed_precision=prov['mixed_precision'], epochs_run=len(history),
        train_minutes=f'{sum(r["epoch_time_s"] for r in history) / 60:.1f}', git_commit=prov['git_commit'],
        dirty_note=' (with uncommitted changes)' if prov.get('git_dirty') else '', python=prov['python'],
        packages=', '.join(f'{k} {v}' for k, v in prov['packages'].items() if v),
        recipe=(f'{args["opt"]} lr {args["lr"]}, weight decay {args["weight_decay"]}, {args["sched"]} schedule, '
                f'{args["epochs"]} epochs, batch {args["batch_size"]}, {args["img_size"]} px, loss `{args["loss"]}` '
                f'with `{args["class_weights"]}` class weights, sampler `{args.get("sampler", "none")}`'
                f'{", EMA of the weights" if args.get("model_ema") else ""}, best epoch {test["best_epoch"]} by '
                f'validation `{args["monitor"]}`'),
        licence=ELPV_LICENCE, csba_citation=CSBA_CITATION, elpv_citation=ELPV_CITATION,
        timm_citation=TIMM_CITATION,
    ))
