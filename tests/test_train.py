"""train.py end to end on the smoke preset: run directory, exact resume after a kill, two processes, bad input."""
import json
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
import yaml
from safetensors.torch import load_file
from sklearn.metrics import f1_score

import timm_csba  # noqa: F401
from timm_csba.data import attach_transform, build_dataset, build_transforms
from timm_csba.metrics import classification_metrics, load_predictions
from timm_csba.runs import launch_command
from timm_csba.runtime import native_bf16

ROOT = Path(__file__).resolve().parents[1]
SMOKE = str(ROOT / 'configs' / 'smoke.yaml')


def _train(*args, env=None, check=True, config=SMOKE):
    result = subprocess.run([sys.executable, str(ROOT / 'train.py'), *(['--config', config] if config else []), *args],
                            capture_output=True, text=True, cwd=ROOT, env=env)
    if check and result.returncode != 0:
        raise AssertionError(result.stderr[-3000:])
    return result


def _load_train_script():
    spec = importlib.util.spec_from_file_location('train', ROOT / 'train.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # the script's main() runs only under __main__
    return module


train = _load_train_script()


def _train_here(capsys, *args, config=SMOKE):
    """train.main in this process, for input that must stop it before training (no interpreter and import start-up
    per case): (exit code, stderr). A stack trace would escape as an exception other than SystemExit. fp32 unless
    a case asks otherwise: accelerate keeps one precision per process, and the diagnostics CLI's is fp32."""
    try:
        train.main(['--mixed-precision', 'no', *(['--config', config] if config else []), *args])
        code = 0
    except SystemExit as e:
        code = e.code
    stderr = capsys.readouterr().err
    if isinstance(code, str):  # sys.exit('error: ...'): Python prints the message and exits with 1
        stderr, code = stderr + code, 1
    return code, stderr


def _final_weights(run):
    return load_file(str(sorted((run / 'checkpoints').glob('epoch_*'))[-1] / 'model.safetensors'))


def test_run_directory_layout(smoke_run):
    assert {p.name for p in smoke_run.iterdir()} >= {
        'args.yaml', 'metrics.jsonl', 'checkpoints', 'best', 'test_metrics.json', 'confusion_matrix.png'}
    args = yaml.safe_load((smoke_run / 'args.yaml').read_text())
    assert args['model'] == 'csba_squeeze' and args['epochs'] == 4 and args['img_size'] == 32
    history = [json.loads(line) for line in (smoke_run / 'metrics.jsonl').read_text().splitlines()]
    assert [r['epoch'] for r in history] == [1, 2, 3, 4]
    assert {'train_loss', 'val_loss', 'val_macro_f1', 'val_f1_likely_defective', 'lr', 'data_wait_fraction'} <= \
        set(history[0])
    assert 'gcm_cosine_mean_off_diagonal' not in history[0]
    assert -1 <= history[1]['gcm_cosine_mean_off_diagonal'] <= 1 and 'gcm_magnitude_mean_most_negative_pairs' in history[3]
    test = json.loads((smoke_run / 'test_metrics.json').read_text())
    assert list(test['per_class']) == ['functional', 'possibly_defective', 'likely_defective', 'defective']
    assert test['num_samples'] == 40 and test['best_epoch'] == max(history, key=lambda r: r['val_macro_f1'])['epoch']
    labels, predictions = load_predictions(smoke_run / 'test_predictions.csv')  # image by image, in split order
    assert classification_metrics(labels, predictions, list(test['per_class']))['confusion_matrix'] == \
        test['confusion_matrix'] and len(labels) == 40
    # keep_last 1 plus the best
    kept = sorted(p.name for p in (smoke_run / 'checkpoints').iterdir())
    assert kept == sorted({f'epoch_{test["best_epoch"]:04d}', 'epoch_0004'})


def test_best_folder_loads_with_timm_local_dir(smoke_run):
    model = timm.create_model(f'local-dir:{smoke_run / "best"}', pretrained=True)
    assert model.in_chans == 1 and model.num_classes == 4
    assert model.pretrained_cfg['label_names'][2] == 'likely_defective'
    assert tuple(model.pretrained_cfg['input_size']) == (1, 32, 32)
    weights = load_file(str(smoke_run / 'best' / 'model.safetensors'))
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())


def test_resume_after_kill_is_bit_exact(smoke_run, smoke_train_command, tmp_path):
    run = tmp_path / 'killed'
    proc = subprocess.Popen(smoke_train_command(run), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (run / 'checkpoints' / 'epoch_0002').exists():
        assert proc.poll() is None and time.time() < deadline, 'the run ended before it could be killed'
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run / 'test_metrics.json').exists(), 'the run was not interrupted'

    # as an older version recorded it: LDAM's scale at its earlier default, which the run's loss (ce) ignores
    args_yaml = run / 'args.yaml'
    args_yaml.write_text(args_yaml.read_text().replace('ldam_scale: 1.0', 'ldam_scale: 30.0'))
    _train('--resume', str(run), config=None)  # the run's own args.yaml
    resumed, uninterrupted = _final_weights(run), _final_weights(smoke_run)
    assert resumed.keys() == uninterrupted.keys()
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed)
    assert (run / 'metrics.jsonl').read_text().count('\n') == 4
    assert yaml.safe_load((run / 'args.yaml').read_text())['config'] == SMOKE  # the preset, not its own args.yaml
    assert json.loads((run / 'test_metrics.json').read_text())['macro_f1'] == \
        json.loads((smoke_run / 'test_metrics.json').read_text())['macro_f1']
    # every epoch's validation logits survive the kill as they are, and are the ones each epoch was scored on
    resumed, uninterrupted = np.load(run / 'val_predictions.npz'), np.load(smoke_run / 'val_predictions.npz')
    assert resumed['epochs'].tolist() == [1, 2, 3, 4] and resumed['logits'].shape[:2] == (4, len(resumed['labels']))
    assert all(np.array_equal(resumed[k], uninterrupted[k]) for k in ('epochs', 'logits', 'labels'))
    history = [json.loads(line) for line in (run / 'metrics.jsonl').read_text().splitlines()]
    assert [f1_score(resumed['labels'], logits.argmax(1), average='macro', labels=range(4), zero_division=0)
            for logits in resumed['logits']] == pytest.approx([r['val_macro_f1'] for r in history])


@pytest.mark.parametrize('pipeline', ['tensor', 'pil'])
def test_two_processes_evaluate_every_sample_once(tmp_path, pipeline):
    """41 validation images over 2 ranks x batch 16: the last batch is uneven; gather_for_metrics must give
    exactly what a single-process evaluation of the same checkpoint gives, with either input pipeline."""
    run = tmp_path / 'ddp'
    env = dict(os.environ, ACCELERATE_USE_CPU='true')
    cmd = [sys.executable, '-m', 'accelerate.commands.launch', '--multi_gpu', '--num_processes', '2',
           '--num_machines', '1', '--mixed_precision', 'no', '--dynamo_backend', 'no',
           str(ROOT / 'train.py'), '--config', SMOKE, '--output-dir', str(run), '--limit-eval', '41', '--epochs', '2',
           '--mixed-precision', 'no', '--input-pipeline', pipeline]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    last = json.loads((run / 'metrics.jsonl').read_text().splitlines()[-1])

    model = timm.create_model('csba_squeeze', num_classes=4, in_chans=1)
    model.load_state_dict(load_file(str(run / 'checkpoints' / 'epoch_0002' / 'model.safetensors')))
    model.eval()
    data_config = timm.data.resolve_data_config(model=timm.create_model(f'local-dir:{run / "best"}'))
    val = build_dataset('elpv')['validation'].shuffle(seed=0).select(range(41))
    batch = next(iter(torch.utils.data.DataLoader(
        attach_transform(val, build_transforms(data_config, is_training=False)), batch_size=41)))
    with torch.no_grad():
        preds = model(batch['pixel_values']).argmax(1)
    single = classification_metrics(batch['label'], preds, val.features['label'].names)
    assert last['val_accuracy'] == single['accuracy']
    assert last['val_macro_f1'] == single['macro_f1']


def test_launcher_that_splits_processes_is_refused(tmp_path):
    """`accelerate launch --multi_gpu` on a machine without GPUs (and without ACCELERATE_USE_CPU) starts two
    processes that each think they are alone; train.py must refuse instead of training twice into one run."""
    env = {k: v for k, v in os.environ.items() if k != 'ACCELERATE_USE_CPU'}
    cmd = [sys.executable, '-m', 'accelerate.commands.launch', '--multi_gpu', '--num_processes', '2',
           '--num_machines', '1', '--mixed_precision', 'no', '--dynamo_backend', 'no',
           str(ROOT / 'train.py'), '--config', SMOKE, '--output-dir', str(tmp_path / 'r')]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    assert result.returncode != 0
    assert 'accelerate sees one' in result.stderr and 'ACCELERATE_USE_CPU=true' in result.stderr
    assert not (tmp_path / 'r' / 'metrics.jsonl').exists()


@pytest.mark.parametrize('args, message', [
    (['--model', 'csba_sqeeze'], "unknown model 'csba_sqeeze'; did you mean csba_squeeze"),
    (['--dataset', 'elvp'], "Unknown dataset 'elvp'"),
    (['--model', 'resnet50t', '--pretrained', '--reset-classifier'], 'No pretrained weights exist for resnet50t'),
    (['--model', 'resnet18', '--pretrained'], 'have 1000 classes, the dataset has 4. Pass --reset-classifier'),
    (['--model', 'local-dir:no/such/run', '--pretrained'], 'A local-dir: source is a folder with config.json'),
    (['--monitor', 'auc'], "argument --monitor: invalid choice: 'auc'"),
    (['--opt', 'adamm'], "argument --opt: invalid choice: 'adamm'"),
    (['--mixed-precision', 'fp16'], 'fp16 on this CPU runs emulated'),
    (['--input-pipeline', 'tensor', '--augment', '{auto_augment: rand-m9-mstd0.5}'], 'needs --input-pipeline pil'),
    (['--input-pipeline', 'tensor', '--num-workers', '2'], '--num-workers applies to the pil input pipeline'),
    (['--torchcompile', 'inductr'], "'inductr' is not a torch.compile backend"),
    (['--loss', 'dice'], "argument --loss: invalid choice: 'dice'"),
    (['--focal-gamma', '1'], 'the ce loss ignores focal_gamma; drop --focal-gamma'),
    (['--ldam-scale', '30'], 'the ce loss ignores ldam_scale; drop --ldam-scale'),  # 30: LDAM's earlier default
    (['--mixup', '0.2', '--loss', 'focal'], 'the focal loss does not take; use --loss ce or ordinal'),
    (['--sam-rho', '-0.1'], '--sam-rho: SAM needs a neighbourhood radius rho > 0'),
    (['--sam-rho', '0.05', '--grad-accum-steps', '2'], '--sam-rho needs the whole gradient of an update'),
    (['--epochs', '-1'], "argument --epochs: '-1' is not a positive integer"),
    (['--img-size', '0'], "argument --img-size: '0' is not a positive integer"),
    (['--label-smoothing', '1.5'], "argument --label-smoothing: '1.5' is not a number in [0, 1]"),
    (['--resume', 'no/such/run'], '--resume no/such/run: not a train.py run directory or one of its checkpoints'),
    (['--augment', '[1]'], "argument --augment: '[1]' is not a YAML mapping"),
    (['--dataset-options', '{labels:'], "argument --dataset-options: '{labels:' is not valid YAML"),
    (['--augment', '{hflp: 0.5}'], 'unknown augmentation option(s) hflp; the options are rot90 and those of timm'),
    (['--sched', 'step', '--min-lr', '0.1'], 'the step schedule ignores --min-lr; drop it'),
    (['--sched', 'multistep', '--decay-milestones', '5', '3'], '--decay-milestones must increase (got 5 3)'),
    (['--sched', 'step', '--decay-epochs', '3'], '--decay-epochs 3 is not below --epochs 3, so the step schedule'),
    (['--sched', 'multistep', '--decay-milestones', '2', '3', '4'], '--decay-milestones 3 4 fall at or after'),
    (['--opt', 'adamw', '--momentum', '0.5'], 'the adamw optimizer takes no momentum; drop --momentum'),
    (['--torchcompile-mode', 'default'], '--torchcompile-mode applies with --torchcompile'),
    (['--in-chans', '1', '--mean', '0.5', '0.5'], '--mean has 2 value(s) for --in-chans 1'),
    (['--distill', 'no/such.npz'], '--distill no/such.npz: not a teacher file of python -m timm_csba.distill'),
    (['--distill-weight', '0.3'], '--distill-weight applies with --distill'),
    (['--distill', 't.npz', '--mixup', '0.2'], '--distill and --mixup/--cutmix each make the soft targets'),
    (['--distill', 't.npz', '--loss', 'focal'], 'the focal loss does not take; use --loss ce or ordinal'),
    (['--distill', 't.npz', '--input-pipeline', 'pil'], 'which only the tensor input pipeline (ELPV) gives'),
])
def test_bad_input_gets_one_clear_error(tmp_path, capsys, args, message):
    code, stderr = _train_here(capsys, '--output-dir', str(tmp_path / 'r'), *args)
    assert code != 0 and message in stderr


# one refused combination per row of train.py's tables: an option its master leaves without effect, and options
# that cannot run together (on the smoke preset, which trains csba_squeeze with ce, adam and cosine on the tensor
# pipeline, here in NCHW without the fused kernel)
IGNORED_OPTIONS = {
    'decay_epochs': ['--decay-epochs', '5'], 'decay_milestones': ['--decay-milestones', '1', '2'],
    'decay_rate': ['--decay-rate', '0.5'], 'min_lr': ['--sched', 'step', '--decay-epochs', '1', '--min-lr', '0.1'],
    'momentum': ['--momentum', '0.5'], 'label_smoothing': ['--loss', 'focal', '--label-smoothing', '0.1'],
    'focal_gamma': ['--focal-gamma', '1'], 'la_tau': ['--la-tau', '0.5'], 'ldam_max_margin': ['--ldam-max-margin', '1'],
    'ldam_scale': ['--ldam-scale', '30'], 'drw_epoch': ['--drw-epoch', '2'], 'ordinal_scale': ['--ordinal-scale', '5'],
    'mixup_prob': ['--mixup-prob', '0.5'], 'mixup_switch_prob': ['--mixup-switch-prob', '0.1'],
    'distill_weight': ['--distill-weight', '0.3'], 'model_ema_decay': ['--model-ema-decay', '0.9'],
    'reset_classifier': ['--reset-classifier'], 'torchcompile_mode': ['--torchcompile-mode', 'default'],
    'num_workers': ['--input-pipeline', 'tensor', '--num-workers', '2'],
    'diagnose_batches': ['--diagnose-batches', '2'],
}
CONFLICTING_OPTIONS = [
    ['--mixup', '0.2', '--loss', 'focal'], ['--distill', 't.npz', '--cutmix', '1.0'],
    ['--distill', 't.npz', '--loss', 'focal'], ['--distill', 't.npz', '--input-pipeline', 'pil'],
    ['--sam-rho', '0.05', '--grad-accum-steps', '2'], ['--fused-norm-act'],
    ['--input-pipeline', 'tensor', '--augment', '{auto_augment: rand-m9-mstd0.5}'],
    ['--input-pipeline', 'tensor', '--augment', '{color_jitter: [0.1, 0.2, 0.3]}'],
    ['--loss', 'ldam', '--class-weights', 'inverse'],
    ['--loss', 'ldam', '--class-weights', 'none', '--cosine-scale', '30', '--ldam-scale', '30'],
]


def test_every_option_table_row_is_covered():
    assert set(IGNORED_OPTIONS) == set(train.APPLIES_WITH)
    assert len(CONFLICTING_OPTIONS) == len(train.CONFLICTS) + 1  # the colour jitter tuple is a second tensor case


@pytest.mark.parametrize('args', [*IGNORED_OPTIONS.values(), *CONFLICTING_OPTIONS],
                         ids=[*IGNORED_OPTIONS, *(f'conflict{i}' for i in range(len(CONFLICTING_OPTIONS)))])
def test_argument_checks_refuse_in_one_line_before_any_work(tmp_path, capsys, monkeypatch, args):
    """check_args reads only the arguments: a refused combination is one line, before the Accelerator, the
    dataset, the pixel cache or the run directory exist."""
    def never(*_, **__):
        raise AssertionError('train.py went past its argument checks')

    for name in ('PartialState', 'Accelerator', 'build_run_dataset', 'cached_pixels', 'prepare_run_dir'):
        monkeypatch.setattr(train, name, never)
    config = tmp_path / 'nchw.yaml'
    preset = Path(SMOKE).read_text()
    config.write_text(preset.replace('channels_last: true\n', '').replace('fused_norm_act: true\n', ''))
    code, stderr = _train_here(capsys, '--output-dir', str(tmp_path / 'r'), *args, config=str(config))
    error = stderr.strip().splitlines()
    assert code == 1 and len(error) == 1 and error[0].startswith('error: ') and 'Traceback' not in stderr
    assert not (tmp_path / 'r').exists()


def test_fine_tune_from_a_run_folder_loads_its_weights(smoke_run, tmp_path, capsys):
    """`--model local-dir:RUN/best --pretrained` starts from that run's weights (a second phase at another size,
    as timm fine-tunes an hf-hub: source); a dataset with another class count is refused, not silently re-headed."""
    source = f'local-dir:{smoke_run / "best"}'
    code, stderr = _train_here(capsys, '--output-dir', str(tmp_path / 'binary'), '--model', source, '--pretrained',
                               '--dataset-options', '{labels: binary}')
    assert code != 0 and 'have 4 classes, the dataset has 2. Pass --reset-classifier' in stderr

    # at learning rate 0 the optimizer moves nothing, so every conv weight is still the source's
    code, stderr = _train_here(capsys, '--output-dir', str(tmp_path / 'ft'), '--model', source, '--pretrained',
                               '--img-size', '48', '--epochs', '1', '--lr', '0', '--limit-train', '16')
    assert code == 0, stderr
    before, after = load_file(smoke_run / 'best' / 'model.safetensors'), load_file(tmp_path / 'ft' / 'best' /
                                                                                    'model.safetensors')
    convs = [k for k in before if k.endswith('conv.weight') or 'expand' in k]
    assert convs and all(torch.equal(before[k], after[k]) for k in convs)


def test_small_folder_with_a_truncated_image(tmp_path, capsys):
    """The smoke preset (64 train / 40 eval images) on a folder of 24 images, one of them truncated: one line that
    names the file before training; --skip-corrupt trains without it, the limits taking whole splits."""
    from PIL import Image
    for name in ('ok', 'cracked'):
        for i in range(12):
            path = tmp_path / 'cells' / name / f'{i}.png'
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((40, 40), 60 * i % 256, dtype=np.uint8)).save(path)
    victim = tmp_path / 'cells' / 'ok' / '3.png'
    victim.write_bytes(victim.read_bytes()[:60])
    common = ['--dataset', 'imagefolder', '--data-dir', str(tmp_path / 'cells'), '--epochs', '1',
              '--val-fraction', '0.25', '--test-fraction', '0.25']
    code, stderr = _train_here(capsys, '--output-dir', str(tmp_path / 'r'), *common)  # stops before training
    assert code != 0 and f'1 image(s) cannot be decoded ({victim})' in stderr and '--skip-corrupt' in stderr
    result = _train('--output-dir', str(tmp_path / 'r'), *common, '--skip-corrupt')
    assert 'skipped 1 image(s)' in result.stdout
    test = json.loads((tmp_path / 'r' / 'test_metrics.json').read_text())
    assert test['num_samples'] == 6  # the whole test split, although --limit-eval is 40


def test_unknown_config_key_is_named(tmp_path, capsys):
    config = tmp_path / 'bad.yaml'
    config.write_text(yaml.safe_dump({**yaml.safe_load(Path(SMOKE).read_text()), 'learning_rate': 0.1}))
    code, stderr = _train_here(capsys, config=str(config))
    assert code != 0 and 'unknown key(s) learning_rate' in stderr


@pytest.mark.parametrize('key, value, message', [
    ('input_pipeline', 'gpu', "input_pipeline: 'gpu' is not one of auto, tensor, pil"),
    ('epochs', 0, "epochs: '0' is not a positive integer"),
    ('batch_size', 2.5, "batch_size: '2.5' is not a positive integer"),
    ('lr', -0.1, "lr: '-0.1' is not a number >= 0"),
    ('decay_milestones', [10, 'late'], "decay_milestones: 'late' is not a positive integer"),
    ('augment', [1], 'augment: [1] is not a mapping of option names to values'),
])
def test_config_value_of_the_wrong_kind_is_named(tmp_path, capsys, key, value, message):
    """argparse checks only the command line; a preset's values get the same checks, and the file is named."""
    config = tmp_path / 'bad.yaml'
    config.write_text(yaml.safe_dump({**yaml.safe_load(Path(SMOKE).read_text()), key: value}))
    code, stderr = _train_here(capsys, '--output-dir', str(tmp_path / 'r'), config=str(config))
    assert code != 0 and f'{config}: {message}' in stderr


@pytest.mark.parametrize('text, message', [
    (None, 'does not exist; pass --config with a YAML preset'),
    ('epochs: [1', 'is not valid YAML'),
    ('- epochs', 'holds a list, not a mapping of flag names to values'),
])
def test_unreadable_config_is_one_line(tmp_path, capsys, text, message):
    config = tmp_path / 'bad.yaml'
    if text is not None:
        config.write_text(text)
    code, stderr = _train_here(capsys, '--output-dir', str(tmp_path / 'r'), config=str(config))
    assert code != 0 and f'error: config {config} {message}' in stderr


def test_missing_cxx_compiler_is_one_line(tmp_path):
    result = _train('--output-dir', str(tmp_path / 'r'), '--torchcompile', env=dict(os.environ, CXX='/nonexistent/g++'),
                    check=False)
    assert result.returncode != 0 and 'needs a C++ compiler on CPU' in result.stderr
    assert 'Traceback' not in result.stderr


def test_fused_norm_act_needs_channels_last(tmp_path, capsys):
    config = tmp_path / 'nchw.yaml'
    config.write_text(Path(SMOKE).read_text().replace('channels_last: true\n', ''))
    code, stderr = _train_here(capsys, '--output-dir', str(tmp_path / 'r'), '--fused-norm-act', config=str(config))
    assert code != 0 and 'error: --fused-norm-act runs on channels_last maps only; add --channels-last' in stderr


def test_fused_norm_act_that_cannot_build_trains_without_it_and_says_so(tmp_path):
    # a fresh extensions folder, so that no kernel built before is found, and no compiler to build one
    env = dict(os.environ, CXX='/nonexistent/g++', TORCH_EXTENSIONS_DIR=str(tmp_path / 'extensions'))
    result = _train('--output-dir', str(tmp_path / 'r'), '--epochs', '1', '--fused-norm-act', env=env)
    assert 'fused norm+act off: the fused BatchNorm+activation kernel could not be built' in result.stdout
    assert 'install g++' in result.stdout and 'Traceback' not in result.stderr
    assert (tmp_path / 'r' / 'test_metrics.json').exists()


def test_compile_and_precision_keep_checkpoint_keys_and_resume_across_each_other(tmp_path):
    """fp32 eager on the fused norm+act kernel -> bf16 + torch.compile (aot_eager: dynamo and autograd tracing without
    a C++ build; the kernel steps aside) -> fp32 with offsets, one run resumed twice: same checkpoint keys, it
    learns, and compiling stops after one epoch."""
    fast = 'bf16' if native_bf16(torch.device('cpu')) else 'no'
    run = tmp_path / 'cross'
    # 60 train / 40 eval cells at batch 16: short last batches in training and evaluation
    keys = set(timm.create_model('csba_squeeze', num_classes=4, in_chans=1).state_dict())
    fused = _train('--output-dir', str(run), '--epochs', '2', '--limit-train', '60', '--mixed-precision', 'no',
                   '--sampler', 'sqrt', '--fused-norm-act')
    assert 'fused norm+act: 17 layers' in fused.stdout
    assert set(_final_weights(run)) == keys
    compiled = _train('--resume', str(run), '--epochs', '4', '--mixed-precision', fast, '--torchcompile', 'aot_eager',
                      config=None)
    assert 'fused norm+act off (under torch.compile' in compiled.stdout
    assert set(_final_weights(run)) == keys and set(load_file(str(run / 'best' / 'model.safetensors'))) == keys
    _train('--resume', str(run), '--epochs', '5', '--mixed-precision', 'no', '--logit-offsets', 'fit', config=None)
    assert set(_final_weights(run)) == keys
    history = [json.loads(line) for line in (run / 'metrics.jsonl').read_text().splitlines()]
    assert [r['epoch'] for r in history] == [1, 2, 3, 4, 5]
    assert history[-1]['train_loss'] < history[0]['train_loss']
    assert 'compiled_graphs' not in history[1] and history[2]['compiled_graphs'] > 0
    assert history[3]['compiled_graphs'] == history[2]['compiled_graphs']  # no recompiles after the first epoch
    test = json.loads((run / 'test_metrics.json').read_text())
    assert len(test['logit_offsets']) == 4 and test['logit_offsets'][0] == 0
    assert json.loads((run / 'best' / 'config.json').read_text())['logit_offsets'] == test['logit_offsets']


def test_model_ema_is_what_is_validated_kept_and_resumed(tmp_path):
    """--model-ema: best/ holds the moving average, not the raw weights, and a resume continues the average
    (also under mixup / cutmix, whose random draws resume with the run)."""
    run = tmp_path / 'ema'
    _train('--output-dir', str(run), '--epochs', '3', '--keep-last', '3', '--model-ema', '--loss', 'ordinal',
           '--mixup', '0.2', '--cutmix', '1.0')  # soft targets into the ordinal loss, and resumed RNG for them

    def checkpoint(folder, epoch):  # (raw weights, EMA weights); custom objects: scheduler, train state, EMA
        ckpt = folder / 'checkpoints' / f'epoch_{epoch:04d}'
        average = torch.load(ckpt / 'custom_checkpoint_2.pkl', weights_only=True)
        return load_file(str(ckpt / 'model.safetensors')), {k.removeprefix('module.'): v for k, v in average.items()}

    best_epoch = json.loads((run / 'test_metrics.json').read_text())['best_epoch']
    raw, average = checkpoint(run, best_epoch)
    best = load_file(str(run / 'best' / 'model.safetensors'))
    assert all(torch.equal(best[k], average[k]) for k in best)
    assert not all(torch.equal(best[k], raw[k]) for k in best)

    resumed = tmp_path / 'ema_resumed'  # the same run, killed after epoch 2
    shutil.copytree(run, resumed)
    shutil.rmtree(resumed / 'checkpoints' / 'epoch_0003')
    _train('--resume', str(resumed), config=None)
    assert all(torch.equal(a, b) for a, b in zip(checkpoint(run, 3)[1].values(), checkpoint(resumed, 3)[1].values()))


def test_deferred_reweighting_starts_with_the_decayed_learning_rate(tmp_path):
    """--drw-epoch N counts epochs as --decay-milestones do: with both at 2, the third epoch is the first that is
    re-weighted and the first at the decayed rate (re-weighting one epoch early, at the full rate, wrecked
    Fashion-MNIST-LT; studies/fmnist_lt). Each record's lr is the one its epoch trained at."""
    run = tmp_path / 'drw'
    _train('--output-dir', str(run), '--epochs', '3', '--limit-train', '32', '--limit-eval', '16', '--loss', 'ldam',
           '--class-weights', 'none', '--drw-epoch', '2', '--sched', 'multistep', '--decay-milestones', '2',
           '--decay-rate', '0.1', '--warmup-epochs', '0')
    history = [json.loads(line) for line in (run / 'metrics.jsonl').read_text().splitlines()]
    assert [r['reweighted'] for r in history] == [False, False, True]
    assert [r['lr'] for r in history] == pytest.approx([0.002, 0.002, 0.0002])


def test_sam_takes_a_second_pass_that_counts_only_in_the_gradient(tmp_path):
    """One update of 16 cells, without dropout (the second pass must see the same network): a vanishing SAM radius
    gives the plain update and the same BatchNorm statistics (the second pass does not count the batch twice),
    a real one another update."""
    runs = {'plain': [], 'vanishing': ['--sam-rho', '1e-9'], 'sam': ['--sam-rho', '0.05']}
    logs = {name: (tmp_path / f'{name}.log').open('w') for name in runs}
    procs = {name: subprocess.Popen(
        [sys.executable, str(ROOT / 'train.py'), '--config', SMOKE, '--output-dir', str(tmp_path / name), '--epochs',
         '1', '--limit-train', '16', '--limit-eval', '8', '--drop-rate', '0', '--threads', '1', *extra],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=logs[name])
        for name, extra in runs.items()}  # side by side, one thread each
    for name, proc in procs.items():
        proc.wait()
        logs[name].close()
        assert proc.returncode == 0, (tmp_path / f'{name}.log').read_text()[-3000:]
    plain, vanishing, sam = (_final_weights(tmp_path / name) for name in runs)
    statistics = [k for k in plain if 'running_' in k or 'num_batches_tracked' in k]
    assert statistics and all(torch.equal(plain[k], vanishing[k]) and torch.equal(plain[k], sam[k])
                              for k in statistics)
    params = [k for k in plain if k not in statistics]
    assert all(torch.allclose(plain[k], vanishing[k], atol=1e-6) for k in params)
    assert not all(torch.allclose(plain[k], sam[k], atol=1e-4) for k in params)


@pytest.mark.parametrize('environ, processes, device, command', [
    ({}, 1, 'cpu', 'python train.py'),
    ({}, 2, 'cuda', 'torchrun --nproc_per_node 2 train.py'),
    ({'ACCELERATE_MIXED_PRECISION': 'no'}, 1, 'cpu', 'accelerate launch train.py'),
    ({'ACCELERATE_MIXED_PRECISION': 'bf16'}, 1, 'cuda', 'accelerate launch --mixed_precision bf16 train.py'),
    ({'ACCELERATE_MIXED_PRECISION': 'no'}, 2, 'cpu',
     'ACCELERATE_USE_CPU=true accelerate launch --multi_gpu --num_processes 2 train.py'),
])
def test_recorded_command_names_the_launcher_that_ran(environ, processes, device, command):
    # the command a run records (and its model card quotes) is the one that reproduces it, launcher included
    assert launch_command(processes, device, environ) == command


def test_existing_run_is_not_overwritten_and_resume_checks_identity(smoke_run, capsys):
    code, stderr = _train_here(capsys, '--output-dir', str(smoke_run))
    assert code != 0 and 'holds another run' in stderr
    code, stderr = _train_here(capsys, '--resume', str(smoke_run), '--model', 'csba_squeeze_sum')
    assert code != 0 and "different model ('csba_squeeze' there, 'csba_squeeze_sum' here)" in stderr


def test_output_dir_that_is_a_file_is_one_line(tmp_path, capsys):
    taken = tmp_path / 'notes.txt'
    taken.write_text('not a run')
    code, stderr = _train_here(capsys, '--output-dir', str(taken))
    assert code != 0 and f'cannot make the run directory {taken} (File exists)' in stderr
    assert 'Traceback' not in stderr and taken.read_text() == 'not a run'


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    run = tmp_path / 'nan'
    result = _train('--output-dir', str(run), '--opt', 'sgd', '--lr', '1e30', '--epochs', '2', check=False)
    assert result.returncode != 0
    assert 'the loss is nan' in result.stderr or 'the loss is inf' in result.stderr
    assert 'Traceback' not in result.stderr
    assert not (run / 'test_metrics.json').exists()
