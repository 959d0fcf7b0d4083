"""Hub export, publishing and offline `pretrained=True`: staged folders from train.py runs, model cards, HF cache.

Everything runs offline: the HF cache is a temporary folder seeded from hub/ with `timm_csba.hub.seed_cache`, and
huggingface_hub is put in offline mode (HF_HUB_OFFLINE), exactly as a user without network after a download.
"""
import argparse
import dataclasses
import json
import os
import shutil
from pathlib import Path
from unittest import mock

import huggingface_hub
import pytest
import timm
import torch
import yaml
from huggingface_hub import ModelCard, hf_hub_download
from safetensors.torch import load_file, save_file
from sklearn.metrics import confusion_matrix

import timm_csba  # noqa: F401
from timm_csba import evaluate, evaluation
from timm_csba.data import build_run_dataset
from timm_csba.distillation import folded_logit_offsets
from timm_csba.hub import (HubError, export_run, load_pretrained, pretrained_num_classes, registry_repo_id,
                           save_pretrained, seed_cache, source_config, validate_staged)
from timm_csba.hub.__main__ import main as hub_main
from timm_csba.hub.export import study_run_dir
from timm_csba.inference import InferenceError, load_model as predict_load_model
from timm_csba.metrics import load_predictions
from timm_csba.models.csba_squeeze import HF_HUB_ORG

ROOT = Path(__file__).resolve().parents[1]
HUB = ROOT / 'hub'
PUBLISHED = sorted(timm.list_pretrained('csba_*'))  # the tags with weights (an hf_hub_id)
needs_published = pytest.mark.skipif(not PUBLISHED, reason='no published tags')


@pytest.fixture(scope='module')
def smoke_runs(smoke_run, second_seed_smoke_run):
    return [smoke_run, second_seed_smoke_run]  # conftest.py: one recipe, seeds 0 and 1, each diagnosed


@pytest.fixture(scope='module')
def staged_smoke(smoke_runs, tmp_path_factory):
    return export_run(smoke_runs[0], tmp_path_factory.mktemp('hub') / 'csba_squeeze.smoke', seed_runs=smoke_runs[1:])


@pytest.fixture(scope='module')
def hf_cache(tmp_path_factory):
    cache = tmp_path_factory.mktemp('hf_cache')
    if PUBLISHED:
        seed_cache([HUB], cache_dir=cache)
    return cache


@pytest.fixture
def offline(hf_cache, monkeypatch):
    """huggingface_hub offline with the seeded cache, in this process and in subprocesses."""
    monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_OFFLINE', True)
    monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_CACHE', str(hf_cache))
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    monkeypatch.setenv('HF_HUB_CACHE', str(hf_cache))
    return hf_cache


# ------------------------------------------------------------------------------------------------ export


def test_export_stages_weights_config_card_and_run_record(staged_smoke, smoke_runs):
    names = {str(p.relative_to(staged_smoke)) for p in staged_smoke.rglob('*') if p.is_file()}
    assert names >= {'model.safetensors', 'config.json', 'README.md', 'train_args.yaml', 'provenance.json',
                     'test_metrics.json', 'seeds.json', 'metrics.jsonl', 'confusion_matrix.png',
                     'diagnostics/diagnostics.json', 'diagnostics/gcm_cosine_backbone.png'}
    assert load_file(str(staged_smoke / 'model.safetensors')).keys() == \
        load_file(str(smoke_runs[0] / 'best' / 'model.safetensors')).keys()

    card = ModelCard.load(staged_smoke / 'README.md')
    test = json.loads((staged_smoke / 'test_metrics.json').read_text())
    assert card.data.library_name == 'timm' and card.data.license == 'cc-by-nc-sa-4.0'
    metrics = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert metrics == {'accuracy': test['accuracy'], 'f1': test['macro_f1'],
                       'balanced_accuracy': test['balanced_accuracy']}
    assert 'timm.create_model("csba_squeeze.smoke", pretrained=True)' in card.text
    assert 'non-commercial' in card.text and 'Deitsch2021' in card.text
    # laid out as timm's own cards, with what a Hub user of timm needs first
    for heading in ('# Model card for csba_squeeze.smoke', '## Model Details', '## How to install',
                    '### Image Classification', '### Feature Map Extraction', '### Image Embeddings', '## Citation'):
        assert f'\n{heading}\n' in card.text, heading
    assert card.text.index('import timm_csba') < card.text.index('## Model Usage')  # the install note comes first
    assert 'model.pretrained_cfg["label_names"]' in card.text and 'features_only=True' in card.text
    params = sum(p.numel() for p in timm.create_model(f'local-dir:{staged_smoke}').parameters())
    assert f'Params (M): {params / 1e6:.2f}\n' in card.text
    assert 'rw2019timm' in card.text and 'annotator defect probability 2/3' in card.text
    assert 'datasets' not in card.data.to_dict()  # ELPV is no Hub dataset id
    f1 = next(r for r in card.data.eval_results if r.metric_type == 'f1')
    assert f1.metric_args == {'average': 'macro'} and f1.dataset_args['split_seed'] == 0
    assert '![confusion matrix](confusion_matrix.png)' in card.text
    assert '![gcm_cosine_backbone.png](diagnostics/gcm_cosine_backbone.png)' in card.text
    # the per-stage matrices (diagnosed with --params layerwise) are linked, not shown
    assert '[gcm_cosine_stem.png](diagnostics/gcm_cosine_stem.png)' in card.text
    assert '![gcm_cosine_stem.png]' not in card.text

    # two seeds: per-seed metrics, mean and sample std in seeds.json and in the card
    seeds = json.loads((staged_smoke / 'seeds.json').read_text())
    accuracies = [json.loads((r / 'test_metrics.json').read_text())['accuracy'] for r in smoke_runs]
    assert seeds['num_seeds'] == 2 and [s['seed'] for s in seeds['seeds']] == [0, 1]
    assert seeds['summary']['accuracy']['mean'] == pytest.approx(sum(accuracies) / 2)
    assert seeds['summary']['accuracy']['std'] == pytest.approx(abs(accuracies[0] - accuracies[1]) / 2 ** 0.5)
    assert 'mean ± std over 2 seeds' in card.text
    assert yaml.safe_load((staged_smoke / 'train_args.yaml').read_text())['seed'] == 0
    assert json.loads((staged_smoke / 'provenance.json').read_text())['command'].startswith('python train.py --config')


def test_card_of_a_single_seed_says_so_and_has_no_spread_column(smoke_runs, tmp_path):
    folder = export_run(smoke_runs[0], tmp_path / 'csba_squeeze.smoke')
    text = ModelCard.load(folder / 'README.md').text
    assert 'Only this seed of the recipe has been trained so far' in text and 'mean ± std' not in text
    accuracy = json.loads((folder / 'test_metrics.json').read_text())['accuracy']
    assert f'\n| Test accuracy | {accuracy:.3f} |\n' in text


def _run_with_float16_exact_weights(run: Path, to: Path) -> Path:
    """A copy of `run` whose weights are float16 values (stored in float32) and whose recorded test confusion
    matrix is theirs: float16 export keeps its predictions by construction. A 3-epoch smoke model's logits can
    sit within float16's rounding of each other on one machine and not on another (CI saw one cell flip)."""
    shutil.copytree(run, to)
    weights = to / 'best' / 'model.safetensors'
    rounded = {k: v.half().float() if v.is_floating_point() else v for k, v in load_file(str(weights)).items()}
    save_file(rounded, str(weights))
    args = argparse.Namespace(**yaml.safe_load((to / 'args.yaml').read_text()))
    test = build_run_dataset(args, splits=('test',))[0]['test']
    metrics = json.loads((to / 'test_metrics.json').read_text())
    metrics['confusion_matrix'] = evaluation.evaluate_split(load_pretrained(f'local-dir:{to / "best"}'), test)[
        'confusion_matrix']
    (to / 'test_metrics.json').write_text(json.dumps(metrics))
    return to


def test_float16_export_halves_the_weights_and_keeps_the_run_s_test_scores(smoke_runs, tmp_path):
    run = _run_with_float16_exact_weights(smoke_runs[0], tmp_path / 'run')
    folder = export_run(run, tmp_path / 'csba_squeeze.smoke', weights_dtype='float16')
    fp32 = load_file(str(run / 'best' / 'model.safetensors'))
    fp16 = load_file(str(folder / 'model.safetensors'))
    assert fp16.keys() == fp32.keys()
    for key, value in fp32.items():
        assert fp16[key].dtype == (torch.float16 if value.is_floating_point() else value.dtype), key
        assert torch.equal(fp16[key], value.to(fp16[key].dtype)), key
    assert 'The weights are stored in float16' in ModelCard.load(folder / 'README.md').text
    model = timm.create_model(f'local-dir:{folder}', pretrained=True)
    assert all(p.dtype == torch.float32 for p in model.parameters())  # timm's float32 model, as ever

    # the check is real: a run whose recorded test scores the stored weights do not give is refused
    metrics = json.loads((run / 'test_metrics.json').read_text())
    metrics['confusion_matrix'][0][0] += 1
    (run / 'test_metrics.json').write_text(json.dumps(metrics))
    with pytest.raises(HubError, match='the weights in float16 change the run.s test predictions.*float32'):
        export_run(run, tmp_path / 'out', weights_dtype='float16')
    assert not (tmp_path / 'out').exists()


def test_staged_folder_loads_with_local_dir_and_predicts_like_the_run(staged_smoke, smoke_runs):
    staged = timm.create_model(f'local-dir:{staged_smoke}', pretrained=True).eval()
    run = timm.create_model(f'local-dir:{smoke_runs[0] / "best"}', pretrained=True).eval()
    x = torch.randn(2, 1, 32, 32)
    torch.testing.assert_close(staged(x), run(x), rtol=0, atol=0)



@needs_published
def test_source_config_is_the_whole_config_json_of_hub_and_folder_sources(staged_smoke, offline, tmp_path):
    tag = PUBLISHED[0]
    assert source_config(tag) is None and pretrained_num_classes(tag) == 4  # a registry tag: its pretrained cfg
    hub_config = source_config(f'hf-hub:{HF_HUB_ORG}/{tag}')  # from the seeded cache, offline
    assert hub_config == json.loads((HUB / tag / 'config.json').read_text())

    folder = tmp_path / 'offsets'
    shutil.copytree(staged_smoke, folder)
    config = json.loads((folder / 'config.json').read_text())
    config['logit_offsets'] = [0.5, -0.5, 0.0, 0.25]  # a top-level key timm's cfg readers drop
    config['num_classes'], config['pretrained_cfg']['num_classes'] = 3, 5  # timm: the top level wins
    (folder / 'config.json').write_text(json.dumps(config))
    assert source_config(f'local-dir:{folder}')['logit_offsets'] == [0.5, -0.5, 0.0, 0.25]
    assert folded_logit_offsets(str(folder)) == [0.5, -0.5, 0.0, 0.25]  # a bare folder, as --distill teachers
    assert pretrained_num_classes(f'local-dir:{folder}') == 3
    with pytest.raises(HubError, match='A local-dir: source is a folder with config.json'):
        source_config(f'local-dir:{tmp_path / "missing"}')

def test_export_takes_other_seeds_from_their_study_records(smoke_runs, staged_smoke, tmp_path):
    # a seed whose run folder (weights) is gone but whose record survives still counts for the card's mean and std
    record = tmp_path / smoke_runs[1].name
    record.mkdir()
    for name in ('args.yaml', 'test_metrics.json'):
        shutil.copyfile(smoke_runs[1] / name, record / name)
    staged = export_run(smoke_runs[0], tmp_path / 'csba_squeeze.smoke', seed_runs=[record])
    assert (staged / 'seeds.json').read_text() == (staged_smoke / 'seeds.json').read_text()
    (record / 'test_metrics.json').unlink()
    with pytest.raises(HubError, match='not a finished run of another seed: it lacks test_metrics.json'):
        export_run(smoke_runs[0], tmp_path / 'out', seed_runs=[record])


def test_export_refuses_unfinished_runs_and_other_recipes(smoke_runs, tmp_path):
    unfinished = tmp_path / 'unfinished'
    unfinished.mkdir()
    shutil.copyfile(smoke_runs[0] / 'args.yaml', unfinished / 'args.yaml')
    with pytest.raises(HubError, match='not a finished train.py run.*best/model.safetensors'):
        export_run(unfinished, tmp_path / 'out')

    other = tmp_path / 'other'
    shutil.copytree(smoke_runs[1], other)
    args = yaml.safe_load((other / 'args.yaml').read_text())
    (other / 'args.yaml').write_text(yaml.safe_dump(dict(args, img_size=64)))
    with pytest.raises(HubError, match='not another seed.*img_size'):
        export_run(smoke_runs[0], tmp_path / 'out', seed_runs=[other])

    no_diagnostics = tmp_path / 'no_diag'
    shutil.copytree(smoke_runs[0], no_diagnostics, ignore=shutil.ignore_patterns('diagnostics'))
    with pytest.raises(HubError, match='no diagnostics.json.*timm_csba.diagnose'):
        export_run(no_diagnostics, tmp_path / 'out')
    assert not (tmp_path / 'out').exists()


def test_push_dry_run_lists_the_files_and_uploads_nothing(staged_smoke, capsys, monkeypatch):
    monkeypatch.setattr(huggingface_hub, 'HfApi', lambda *a, **k: pytest.fail('--dry-run must not reach the Hub'))
    hub_main(['push', str(staged_smoke), '--repo-id', 'someone/csba_squeeze.smoke', '--dry-run'])
    out = capsys.readouterr().out
    assert 'would upload' in out and 'https://huggingface.co/someone/csba_squeeze.smoke' in out
    for name in ('model.safetensors', 'config.json', 'README.md', 'diagnostics/diagnostics.json', 'seeds.json'):
        assert f'  {name}\n' in out


class _RecordingHfApi:
    """A stand-in for huggingface_hub.HfApi that records its calls and answers like the Hub (or raises)."""
    calls, fail_with = [], None

    def __init__(self, **kwargs):
        self.calls.append(('HfApi', kwargs))

    def __getattr__(self, method):
        def call(*args, **kwargs):
            self.calls.append((method, args, kwargs))
            if self.fail_with is not None:
                raise self.fail_with
            if method == 'upload_folder':
                return huggingface_hub.CommitInfo(commit_url='https://huggingface.co/org/m/commit/abc123',
                                                  commit_message='m', commit_description='', oid='abc123')
        return call


@pytest.fixture
def hf_api(monkeypatch):
    monkeypatch.setattr(huggingface_hub, 'HfApi', _RecordingHfApi)
    _RecordingHfApi.calls, _RecordingHfApi.fail_with = [], None
    return _RecordingHfApi


def test_push_makes_the_repo_exactly_the_staged_folder(staged_smoke, hf_api, capsys):
    hub_main(['push', str(staged_smoke), '--repo-id', 'someone/csba_squeeze.smoke'])
    (_, init), *calls = hf_api.calls
    assert init['library_name'] == 'timm_csba' and init['library_version'] == timm_csba.__version__
    assert [c[0] for c in calls] == ['create_repo', 'upload_folder']  # no visibility flag: nothing changed
    assert calls[0][2]['private'] is None  # a new repo gets the namespace's default, not "public"
    upload = calls[1][2]
    assert upload['repo_id'] == 'someone/csba_squeeze.smoke' and upload['folder_path'] == str(staged_smoke)
    assert upload['delete_patterns'] == '*' and upload['revision'] is None and upload['create_pr'] is False
    assert 'commit abc123: https://huggingface.co/org/m/commit/abc123' in capsys.readouterr().out


def test_push_private_revision_and_pull_request(staged_smoke, hf_api):
    hub_main(['push', str(staged_smoke), '--private', '--revision', 'v2'])
    calls = {c[0]: c for c in hf_api.calls[1:]}
    assert calls['update_repo_settings'][2]['private'] is True  # also for a repo that exists already
    assert calls['create_branch'][2] == dict(branch='v2', repo_type='model', exist_ok=True)
    assert calls['upload_folder'][2]['revision'] == 'v2'
    hf_api.calls.clear()
    hub_main(['push', str(staged_smoke), '--public', '--create-pr'])
    calls = {c[0]: c for c in hf_api.calls[1:]}
    assert calls['update_repo_settings'][2]['private'] is False and 'create_branch' not in calls
    assert calls['upload_folder'][2]['create_pr'] is True


@needs_published
def test_push_refuses_a_repo_id_timm_would_not_look_in(hf_api):
    folder = HUB / PUBLISHED[0]
    with pytest.raises(SystemExit, match=f'is not where timm looks for {PUBLISHED[0]}.*--other-repo-id'):
        hub_main(['push', str(folder), '--repo-id', 'me/fork'])
    assert hf_api.calls == []
    hub_main(['push', str(folder), '--repo-id', 'me/fork', '--other-repo-id'])
    assert hf_api.calls[-1][2]['repo_id'] == 'me/fork'


@pytest.mark.parametrize('status, error, message', [
    (401, 'HfHubHTTPError', 'refused the token \\(401\\).*hf auth login'),
    (403, 'HfHubHTTPError', 'cannot write to someone/x \\(403\\): use a token with write access'),
    (404, 'RepositoryNotFoundError', 'the Hub has no repo someone/x you can see: check --repo-id'),
])
def test_push_http_errors_are_one_line(staged_smoke, hf_api, status, error, message):
    response = mock.Mock(status_code=status, headers={}, request=None)
    hf_api.fail_with = getattr(huggingface_hub.errors, error)('refused', response=response)
    with pytest.raises(SystemExit, match=message):
        hub_main(['push', str(staged_smoke), '--repo-id', 'someone/x'])


def test_push_network_and_token_errors_are_one_line(staged_smoke, hf_api):
    hf_api.fail_with = ConnectionError('Name or service not known')
    with pytest.raises(SystemExit, match='cannot reach the Hub.*check the network'):
        hub_main(['push', str(staged_smoke), '--repo-id', 'someone/x'])
    hf_api.fail_with = huggingface_hub.errors.LocalTokenNotFoundError('no token')
    with pytest.raises(SystemExit, match='no Hugging Face token: run `hf auth login`'):
        hub_main(['push', str(staged_smoke), '--repo-id', 'someone/x'])


def test_validation_rejects_a_card_that_disagrees_and_broken_weights(staged_smoke, tmp_path):
    folder = tmp_path / 'staged'
    shutil.copytree(staged_smoke, folder)
    card = (folder / 'README.md').read_text()
    test = json.loads((folder / 'test_metrics.json').read_text())
    (folder / 'README.md').write_text(card.replace(f'value: {test["accuracy"]}', 'value: 0.99', 1))
    with pytest.raises(HubError, match='README.md reports'):
        validate_staged(folder)
    (folder / 'README.md').write_text(card)
    weights = (folder / 'model.safetensors').read_bytes()
    (folder / 'model.safetensors').write_bytes(weights[:len(weights) // 2])
    with pytest.raises(SystemExit, match='not a readable safetensors file'):
        hub_main(['push', str(folder), '--dry-run'])


def test_seed_cache_writes_the_layout_huggingface_hub_reads(staged_smoke, tmp_path, monkeypatch):
    cache = tmp_path / 'cache'
    assert seed_cache([staged_smoke.parent], org='someone', cache_dir=cache) == ['someone/csba_squeeze.smoke']
    storage = cache / 'models--someone--csba_squeeze.smoke'
    commit = (storage / 'refs' / 'main').read_text()
    weights = storage / 'snapshots' / commit / 'model.safetensors'
    assert weights.is_symlink() and len(os.path.basename(os.path.realpath(weights))) == 64  # sha256, as LFS
    monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_OFFLINE', True)
    path = hf_hub_download('someone/csba_squeeze.smoke', 'config.json', cache_dir=cache)
    assert Path(path).read_text() == (staged_smoke / 'config.json').read_text()
    # hf-hub: reads config.json and the weights from the cache
    monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_CACHE', str(cache))
    model = timm.create_model('hf-hub:someone/csba_squeeze.smoke', pretrained=True)
    for key, value in load_file(str(staged_smoke / 'model.safetensors')).items():
        assert torch.equal(model.state_dict()[key], value), key


# ------------------------------------------------------------------------------------------------ published weights


@needs_published
@pytest.mark.parametrize('tag', PUBLISHED)
def test_staged_folder_matches_registry_cfg_and_its_own_record(tag):
    folder = HUB / tag
    validate_staged(folder)  # weights match the architecture, card metrics == test_metrics.json
    config = json.loads((folder / 'config.json').read_text())
    registry = timm.models.get_pretrained_cfg(tag).to_dict()
    arch = tag.split('.')[0]
    assert config['architecture'] == arch and config['num_classes'] == registry['num_classes']
    for key in ('input_size', 'mean', 'std', 'crop_pct', 'interpolation', 'license', 'label_names'):
        want, got = registry[key], config['pretrained_cfg'][key]
        if isinstance(want, (tuple, list)):
            want, got = list(want), list(got)
        assert got == want, key
    assert registry['hf_hub_id'] == f'{HF_HUB_ORG}/{tag}'
    args = yaml.safe_load((folder / 'train_args.yaml').read_text())
    provenance = json.loads((folder / 'provenance.json').read_text())
    test = json.loads((folder / 'test_metrics.json').read_text())
    assert args['model'] == arch and args['dataset'] == 'elpv' and test['seed'] == args['seed']
    assert len(provenance['git_commit']) == 40 and provenance['git_dirty'] is False
    # the repository commits no file over 20 MB: heads' per-class weights go in float16 (hub export --weights-dtype)
    assert (folder / 'model.safetensors').stat().st_size < 20_000 * 1024


@needs_published
@pytest.mark.parametrize('tag', PUBLISHED)
def test_pretrained_true_loads_the_staged_weights_bit_identical(tag, offline):
    staged = load_file(str(HUB / tag / 'model.safetensors'))
    arch = tag.split('.')[0]
    assert timm.models.get_pretrained_cfg(arch).tag == tag.split('.')[1]  # the default tag of the architecture
    for name in (arch, tag):
        model = timm.create_model(name, pretrained=True)
        state = model.state_dict()
        assert state.keys() == staged.keys()
        for key, value in staged.items():
            assert torch.equal(state[key], value), key
    via_hub_id = timm.create_model(f'hf-hub:{HF_HUB_ORG}/{tag}', pretrained=True)
    via_local_dir = timm.create_model(f'local-dir:{HUB / tag}', pretrained=True)
    for model in (via_hub_id, via_local_dir):
        assert all(torch.equal(model.state_dict()[k], v) for k, v in staged.items())

    # fine-tuning: the classifier is re-created for 2 classes, everything else loads
    finetune = timm.create_model(tag, pretrained=True, num_classes=2)
    classifier = set(timm.models.get_pretrained_cfg(tag).classifier)
    for key, value in finetune.state_dict().items():
        if key.rsplit('.', 1)[0] in classifier:
            # rows per class: one in a linear classifier, a head's width in the per-class heads' hidden layer
            assert value.shape[0] * 4 == staged[key].shape[0] * 2, key
        else:
            assert torch.equal(value, staged[key]), key


@needs_published
@pytest.mark.parametrize('tag', PUBLISHED)
def test_card_metrics_reproduce_on_the_elpv_test_split(tag, offline, tmp_path, capsys):
    """What a card reader runs: python -m timm_csba.evaluate TAG on the run's split gives the card's numbers."""
    args = yaml.safe_load((HUB / tag / 'train_args.yaml').read_text())
    evaluate.main([tag, '--dataset', 'elpv', '--split', 'test', '--split-seed', str(args['split_seed']),
                   '--val-fraction', str(args['val_fraction']), '--test-fraction', str(args['test_fraction']),
                   '--out', str(tmp_path)])
    metrics = json.loads((tmp_path / 'test_metrics.json').read_text())
    card = {r.metric_type: r.metric_value for r in ModelCard.load(HUB / tag / 'README.md').data.eval_results}
    assert metrics['num_samples'] == 525 and (tmp_path / 'confusion_matrix.png').stat().st_size > 0
    assert metrics['accuracy'] == card['accuracy'] and metrics['macro_f1'] == card['f1']
    assert metrics['confusion_matrix'] == json.loads((HUB / tag / 'test_metrics.json').read_text())['confusion_matrix']
    # image by image: the predictions file scores the same, and equals the study run's own where it is recorded
    labels, predictions = load_predictions(tmp_path / 'test_predictions.csv')
    assert confusion_matrix(labels, predictions, labels=range(4)).tolist() == metrics['confusion_matrix']
    study = json.loads((HUB / tag / 'study.json').read_text())
    record = study_run_dir(ROOT / 'studies' / 'elpv' / 'records', study['recipe'], study['arm'], args['seed'])
    if (record / 'test_predictions.csv').exists():
        assert (load_predictions(record / 'test_predictions.csv')[1] == predictions).all()


@needs_published
def test_corrupt_or_missing_weights_give_one_clear_error(tmp_path, monkeypatch):
    tag = PUBLISHED[0]
    cache = tmp_path / 'cache'
    seed_cache([HUB / tag], cache_dir=cache)
    monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_OFFLINE', True)
    monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_CACHE', str(cache))
    blob = Path(os.path.realpath(hf_hub_download(f'{HF_HUB_ORG}/{tag}', 'model.safetensors')))
    original = blob.read_bytes()

    tampered = bytearray(original)
    tampered[-5] ^= 0xFF  # one weight changed: still valid safetensors, wrong checksum
    blob.write_bytes(bytes(tampered))
    with pytest.raises(HubError, match='do not match their checksum.*load again'):
        load_pretrained(tag)
    blob.write_bytes(original[:len(original) // 3])
    with pytest.raises(HubError, match='do not match their checksum'):
        load_pretrained(tag)

    # a truncated local file (no checksum to compare with) fails as unreadable safetensors
    truncated = tmp_path / 'model.safetensors'
    truncated.write_bytes(original[:len(original) // 3])
    with pytest.raises(HubError, match='not a readable safetensors file'):
        load_pretrained(tag, pretrained_cfg_overlay=dict(file=str(truncated)))

    monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_CACHE', str(tmp_path / 'empty'))
    with pytest.raises(HubError, match='not in the Hugging Face cache.*seed-cache hub/'):
        load_pretrained(tag)
    with pytest.raises(InferenceError, match=f'cannot load {tag}: the weights .* are not in the Hugging Face cache'):
        predict_load_model(tag)  # how predict and evaluate load


def test_registry_repo_id_of_published_unpublished_and_unknown_tags(monkeypatch):
    assert registry_repo_id(HUB / 'csba_squeeze.elpv') == f'{HF_HUB_ORG}/csba_squeeze.elpv'
    # a registered tag without weights yet (no hf_hub_id): the repo it will be published to
    registered = timm.models.get_pretrained_cfg
    monkeypatch.setattr(timm.models, 'get_pretrained_cfg',
                        lambda name, **kwargs: dataclasses.replace(registered(name, **kwargs), hf_hub_id=None))
    assert registry_repo_id('staged/csba_squeeze_heads.elpv') == f'{HF_HUB_ORG}/csba_squeeze_heads.elpv'
    assert registry_repo_id('staged/csba_squeeze.smoke') is None and registry_repo_id('staged/nothing') is None


def test_weights_of_other_classes_do_not_claim_the_elpv_tag_licence_and_origin(tmp_path):
    """save_pretrained keeps the architecture's pretrained cfg for ELPV's grades; a run on other classes (a
    Fashion-MNIST run of csba_squeeze) drops its ELPV tag, licence and origin, and still loads."""
    data_config = dict(input_size=(1, 32, 32), mean=(0.5,), std=(0.25,), interpolation='bilinear', crop_pct=1.0)
    model = timm.create_model('csba_squeeze', num_classes=4, in_chans=1)
    grades = ['functional', 'possibly_defective', 'likely_defective', 'defective']
    elpv = json.loads((save_pretrained(model, tmp_path / 'elpv', grades, data_config) / 'config.json').read_text())
    assert elpv['pretrained_cfg']['tag'] == 'elpv' and elpv['pretrained_cfg']['license'] == 'cc-by-nc-sa-4.0'
    other = save_pretrained(model, tmp_path / 'other', ['a', 'b', 'c', 'd'], data_config)
    cfg = json.loads((other / 'config.json').read_text())['pretrained_cfg']
    assert not {'tag', 'license', 'origin_url'} & set(cfg) and cfg['mean'] == [0.5]
    assert predict_load_model(str(other)).pretrained_cfg.get('license') is None
