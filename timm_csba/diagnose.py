"""`python -m timm_csba.diagnose`: gradient-conflict diagnostics of a trained model on a dataset split.

    python -m timm_csba.diagnose --model-dir runs/elpv/best --dataset elpv --split train --out diag/
    python -m timm_csba.diagnose --model-dir runs/elpv/best --compare init --out diag/          # vs. initialisation
    python -m timm_csba.diagnose --model-dir runs/elpv/best --compare runs/elpv_sum/best --out diag/
    ACCELERATE_USE_CPU=true accelerate launch --multi_gpu --num_processes 2 -m timm_csba.diagnose ...

Works for any timm model exported in timm's Hub format (model.safetensors + config.json); branch analysis only
where a csba_* multi-branch head exists. When the model folder is a train.py run's `best/`, the run's dataset and
split (its dataset flags; flags given here win), loss and class weights (args.yaml), test metrics (per-class F1
correlation) and metrics.jsonl (generalisation gap) are used too. Writes diagnostics.json and PNG heatmaps to --out.
"""
import argparse
import json
import sys
from pathlib import Path
from typing import Dict, Optional

import timm
import torch
import yaml

from .extras import missing_extra

try:  # the [train] extra; started without it, the command says so in one line
    from .cli_args import non_negative_int, positive_int
    from .data.builders import DATASET_ARGUMENTS, build_dataset_from_args
    from .data.errors import DatasetError, error_line
    from .data.hf_splits import attach_transform
    from .data.imbalance import class_counts
    from .data.splits import SPLITS
    from .data.transforms import build_transforms
    from .dataset_flags import add_dataset_arguments
    from .diagnostics import Diagnostics, LossGap, RunDiagnostics, analyze, plot_comparison, plot_matrix
    from .files import OutputPathError, atomic_path, check_output_path, file_sha256, write_json
    from .losses import create_loss_from_config
except ModuleNotFoundError as e:
    sys.exit(missing_extra(e, 'python -m timm_csba.diagnose'))


class DiagnoseError(ValueError):
    """Bad input to the diagnostics CLI; the message names the fix."""


def load_model_dir(path: str, init_seed: Optional[int] = None) -> torch.nn.Module:
    """Load a timm Hub-format folder; with `init_seed`, the same architecture freshly initialised instead."""
    folder = Path(path)
    if not (folder / 'config.json').exists() or not (folder / 'model.safetensors').exists():
        raise DiagnoseError(f'{folder} is not a timm/Hub model folder (needs config.json and model.safetensors), '
                            f'e.g. a train.py run\'s best/ or a folder made by timm_csba.hub.')
    if init_seed is None:
        return timm.create_model(f'local-dir:{folder}', pretrained=True)
    torch.manual_seed(init_seed)
    return timm.create_model(f'local-dir:{folder}', pretrained=False)


def _run_dir(model_dir: Path) -> Optional[Path]:
    run = model_dir.parent
    return run if (run / 'args.yaml').exists() else None


def _criterion(run: Optional[Path], counts):
    """The run's loss with its class weights, or class-weighted cross-entropy when no run is known."""
    config = yaml.safe_load((run / 'args.yaml').read_text()) if run is not None else {}
    criterion = create_loss_from_config(config, counts, recorded=run is not None)
    if hasattr(criterion, 'set_epoch'):
        criterion.set_epoch(max(config.get('epochs', 1) - 1, 0))  # the weights of the last epoch
    return criterion


def _run_losses(run: Optional[Path]) -> Optional[LossGap]:
    """The losses at a run's selected epoch (its last when it has no test metrics yet), from metrics.jsonl."""
    if run is None or not (run / 'metrics.jsonl').exists():
        return None
    history = [json.loads(line) for line in (run / 'metrics.jsonl').read_text().splitlines()]
    best = json.loads((run / 'test_metrics.json').read_text())['best_epoch'] if (run / 'test_metrics.json').exists() \
        else history[-1]['epoch']
    return LossGap.at_epoch(history, best)


def diagnose_one(model: torch.nn.Module, args, dataset, accelerator) -> Diagnostics:
    split = dataset[args.split]
    names = split.features['label'].names
    transform = build_transforms(model, is_training=False)
    run = _run_dir(Path(args.model_dir))
    criterion = _criterion(run, list(class_counts(dataset['train']).values()))
    model = model.to(accelerator.device)
    criterion = criterion.to(accelerator.device)
    return analyze(model, attach_transform(split, transform), split['label'], names, criterion,
                   params=args.params, batch_size=args.batch_size, num_workers=args.num_workers,
                   max_batches=args.max_batches, top_k=args.top_k, accelerator=accelerator)


def _check_classes(model: torch.nn.Module, names) -> None:
    if model.num_classes != len(names):
        raise DiagnoseError(f'the model has {model.num_classes} classes but the dataset has {len(names)} '
                            f'({", ".join(names)}); diagnose it on the dataset it was trained on.')
    model_names = model.pretrained_cfg.get('label_names')
    if model_names and list(model_names) != list(names):
        raise DiagnoseError(f'the model\'s classes {list(model_names)} differ from the dataset\'s {list(names)}.')


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog='python -m timm_csba.diagnose', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model-dir', required=True, help='timm Hub-format folder (e.g. RUN/best)')
    add_dataset_arguments(parser)  # defaults: the run's own (RUN/args.yaml) when the folder is a run's best/
    parser.add_argument('--split', default='train', choices=SPLITS, help='split to use')
    parser.add_argument('--params', nargs='+', default=['backbone'],
                        help='parameter sets: all, backbone, layerwise or a regex on parameter names; several share '
                             'one gradient pass (e.g. --params backbone layerwise)')
    parser.add_argument('--batch-size', type=positive_int, default=32, help='samples per (single-class) batch')
    parser.add_argument('--max-batches', type=positive_int, help='stop after this many batches (default: whole split)')
    parser.add_argument('--num-workers', type=non_negative_int, default=1, help='DataLoader workers')
    parser.add_argument('--top-k', type=positive_int, default=6,
                        help='most negative majority-minority pairs to average')
    parser.add_argument('--compare', help='another model folder, or "init" for this model at initialisation')
    parser.add_argument('--init-seed', type=int, default=0, help='seed of the initialisation for --compare init')
    parser.add_argument('--out', required=True, help='output folder for diagnostics.json and PNGs')
    known, _ = parser.parse_known_args(argv)
    run = _run_dir(Path(known.model_dir))
    if run is not None:  # rebuild the split the run trained on, not the default one
        saved = yaml.safe_load((run / 'args.yaml').read_text())
        parser.set_defaults(**{key: saved[key] for key in DATASET_ARGUMENTS if key in saved})
    args = parser.parse_args(argv)
    try:
        check_output_path(args.out, '--out', folder=True)  # before minutes of gradients
    except OutputPathError as e:
        sys.exit(f'error: {e}')

    from accelerate import Accelerator
    accelerator = Accelerator()
    try:
        model = load_model_dir(args.model_dir)
        dataset = build_dataset_from_args(args)
        names = dataset[args.split].features['label'].names
        _check_classes(model, names)
        models = {'model': model}
        if args.compare:
            other = load_model_dir(args.model_dir, init_seed=args.init_seed) if args.compare == 'init' \
                else load_model_dir(args.compare)
            _check_classes(other, names)
            models['compare'] = other
        results = {key: diagnose_one(m, args, dataset, accelerator) for key, m in models.items()}
    except (DiagnoseError, DatasetError, ValueError) as e:
        sys.exit(f'error: {error_line(e)}')
    if accelerator.is_main_process:
        write_outputs(args, results, names)


def write_outputs(args, results: Dict[str, Diagnostics], names) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model_dir, diagnostics = Path(args.model_dir), results['model']
    run = _run_dir(model_dir)
    test_metrics = run / 'test_metrics.json' if run is not None else None
    losses = _run_losses(run)
    report = RunDiagnostics(
        model_dir=str(model_dir), checkpoint_sha256=file_sha256(model_dir / 'model.safetensors'),
        architecture=json.loads((model_dir / 'config.json').read_text()).get('architecture'),
        dataset=args.dataset, split=args.split, params=' '.join(args.params), diagnostics=diagnostics, losses=losses,
        conflict_vs_f1=diagnostics.conflict_vs_f1(
            [json.loads(test_metrics.read_text())['per_class'][n]['f1'] for n in names])
        if test_metrics is not None and test_metrics.exists() else None,
    )
    if 'compare' in results:
        report.compare_dir, report.compare = args.compare, results['compare']
        if args.compare != 'init':
            report.optimization_improvement = RunDiagnostics.optimization_gain(
                _run_losses(_run_dir(Path(args.compare))), losses)
    write_json(out / 'diagnostics.json', report.to_json())

    title = f'{report.architecture} on {args.dataset}/{args.split}'
    for set_name, stats in diagnostics.parameter_sets.items():
        slug = set_name.replace('.', '_') if set_name.replace('.', '_').isidentifier() else 'regex'
        for kind in ('cosine', 'magnitude'):
            with atomic_path(out / f'gcm_{kind}_{slug}.png') as png:
                plot_matrix(getattr(stats, kind), names, png, f'{kind} gradient conflict ({set_name}): {title}')
        if report.compare is not None and set_name in report.compare.parameter_sets:
            with atomic_path(out / f'gcm_compare_{slug}.png') as png:
                plot_comparison(report.compare.parameter_sets[set_name].cosine, stats.cosine, names,
                                png, ('initialisation' if args.compare == 'init' else 'compare', 'model'),
                                f'cosine gradient conflict ({set_name}): {title}')
    with atomic_path(out / 'class_mean_angles.png') as png:
        plot_matrix(diagnostics.class_mean_angles_deg / 90.0, names, png,
                    f'class-mean feature angles / 90 deg: {title}')
    print(json.dumps({name: stats.summary['cosine'].mean_off_diagonal
                      for name, stats in diagnostics.parameter_sets.items()}))
    print(f'wrote {out / "diagnostics.json"}')


if __name__ == '__main__':
    main()
