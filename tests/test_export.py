"""python -m timm_csba.export to ONNX: checked against PyTorch on the ELPV test split before it is written, run by
`predict` and `inspect` with the same grades, every bad input one line before any work, nothing half-written;
and the staged Hub folders loaded through transformers' pipeline with predict's top-1."""
import csv
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import timm
import torch
from PIL import Image

import timm_csba.export as export_cli
from timm_csba.data.builders import _elpv_root
from timm_csba.hub import save_pretrained
from timm_csba.inference import load_model, predict_images
from timm_csba.inspect import main as inspect_main
from timm_csba.predict import main as predict_main

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'examples'))
from el_modules import elpv_module  # noqa: E402

STAGED = ROOT / 'hub' / 'csba_squeeze.elpv'
NAMES = ['functional', 'possibly_defective', 'likely_defective', 'defective']
ELPV_IMAGES = sorted((_elpv_root() / 'images').glob('*.png'))[:6]


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    """The published csba_squeeze.elpv exported with the default check: every cell of the ELPV test split."""
    out = tmp_path_factory.mktemp('onnx') / 'csba_squeeze'
    export_cli.main([f'local-dir:{STAGED}', '--format', 'onnx', '--out', str(out)])
    return out


@pytest.fixture(scope='module')
def cells(tmp_path_factory):
    folder = tmp_path_factory.mktemp('cells')
    for path in ELPV_IMAGES:
        shutil.copyfile(path, folder / path.name)
    return folder


@pytest.fixture(scope='module')
def heads_folder(tmp_path_factory):
    """A csba_squeeze_heads model (no exact class maps) saved by save_pretrained, as train.py saves best/."""
    torch.manual_seed(0)
    model = timm.create_model('csba_squeeze_heads', num_classes=4, in_chans=1).eval()
    config = dict(input_size=(1, 48, 48), mean=(0.597,), std=(0.161,), interpolation='bilinear', crop_pct=1.0)
    return save_pretrained(model, tmp_path_factory.mktemp('models') / 'heads', NAMES, config,
                           model_args=dict(in_chans=1))


def test_export_is_checked_on_every_elpv_test_cell_with_a_dynamic_batch(exported, capsys):
    config = json.loads((exported / 'preprocessing.json').read_text())
    assert config['check'] == {'on': 'the ELPV test split', 'images': 525, 'top1_identical': 525,
                               'max_abs_logit_difference': config['check']['max_abs_logit_difference']}
    assert config['check']['max_abs_logit_difference'] < 1e-3
    assert config['label_names'] == NAMES and config['input_size'] == [3, 96, 96]
    assert config['mean'] == [0.597] * 3 and config['interpolation'] == 'bilinear'
    session = onnxruntime.InferenceSession(str(exported / 'model.onnx'), providers=['CPUExecutionProvider'])
    assert [i.shape for i in session.get_inputs()] == [['batch', 3, 96, 96]]
    assert [o.name for o in session.get_outputs()] == config['outputs'] == ['logits', 'class_maps']
    logits, maps = session.run(None, {'input': np.zeros((5, 3, 96, 96), np.float32)})
    assert logits.shape == (5, 4) and maps.shape[:2] == (5, 4)
    np.testing.assert_allclose(maps.mean((2, 3)), logits, atol=1e-5)  # the maps' means are the logits
    assert sorted(p.name for p in exported.iterdir()) == ['model.onnx', 'preprocessing.json']  # no temp left


def test_predict_through_onnx_runtime_gives_the_pytorch_grades(exported, cells):
    torch_rows = predict_images(load_model(f'local-dir:{STAGED}'), sorted(cells.iterdir()), top_k=4)
    onnx_rows = predict_images(load_model(str(exported / 'model.onnx')), sorted(cells.iterdir()), top_k=4)
    assert [r['label'] for r in onnx_rows] == [r['label'] for r in torch_rows]
    for a, b in zip(onnx_rows, torch_rows):
        assert a['probability'] == pytest.approx(b['probability'], abs=1e-4)


def test_inspect_through_onnx_runtime_gives_the_pytorch_grades_and_maps(exported, tmp_path):
    module, _, _ = elpv_module(seed=3, rows=3, cols=4)
    path = tmp_path / 'module.png'
    module.image.save(path)
    inspect_main([str(path), '--grid', '3x4', '--model', f'local-dir:{STAGED}', '--out', str(tmp_path / 'torch')])
    inspect_main([str(path), '--grid', '3x4', '--model', str(exported / 'model.onnx'), '--out',
                  str(tmp_path / 'onnx')])
    grades = [[row[:4] for row in csv.reader((tmp_path / run / 'cells.csv').open())] for run in ('torch', 'onnx')]
    assert grades[0] == grades[1] and len(grades[0]) == 13
    maps = [sorted(p.name for p in (tmp_path / run / 'module_cells').glob('*.png')) for run in ('torch', 'onnx')]
    assert maps[0] == maps[1]


def test_a_head_without_exact_maps_exports_logits_and_says_why_it_has_no_maps(heads_folder, cells, tmp_path,
                                                                               capsys):
    out = tmp_path / 'heads'
    export_cli.main([str(heads_folder), '--out', str(out), '--check-images', str(cells)])
    config = json.loads((out / 'preprocessing.json').read_text())
    assert config['outputs'] == ['logits'] and config['input_size'] == [1, 48, 48]
    assert config['check']['images'] == len(ELPV_IMAGES) == config['check']['top1_identical']
    with pytest.raises(SystemExit) as e:
        predict_main(['--model', str(out / 'model.onnx'), str(cells), '--cam', str(tmp_path / 'cams')])
    assert 'exported without class maps' in str(e.value) and 'PyTorch model' in str(e.value)
    assert not (tmp_path / 'cams').exists()
    module, _, _ = elpv_module(seed=1, rows=2, cols=3)
    module.image.save(tmp_path / 'module.png')
    inspect_main([str(tmp_path / 'module.png'), '--grid', '2x3', '--model', str(out / 'model.onnx'), '--out',
                  str(tmp_path / 'inspection')])
    assert 'without MODULE_cells/ heat maps' in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / 'inspection').iterdir()) == ['cells.csv', 'module_map.png']


@pytest.mark.parametrize('args, message', [
    (['csba_squeez.elpv'], 'unknown model'),
    (['{empty}'], 'config.json and model.safetensors'),
    (['{staged}', '--out', '{file}'], '--out'),
    (['{onnx}'], 'is an ONNX model already'),
    (['{staged}', '--check-images', '{empty}'], 'no images'),
])
def test_bad_input_is_one_line_before_any_work(args, message, tmp_path):
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'file').write_text('not a folder')
    paths = dict(empty=tmp_path / 'empty', staged=f'local-dir:{STAGED}', file=tmp_path / 'file',
                 onnx=tmp_path / 'model.onnx')
    argv = [a.format(**paths) for a in args]
    if '--out' not in argv:
        argv += ['--out', str(tmp_path / 'out')]
    with pytest.raises(SystemExit) as e:
        export_cli.main(argv)
    assert str(e.value).startswith('error: ') and message in str(e.value) and '\n' not in str(e.value)
    assert not (tmp_path / 'out').exists()


def test_a_failed_check_writes_nothing(cells, tmp_path, monkeypatch):
    monkeypatch.setattr(export_cli, 'compare_logits', lambda model, onnx_model, images: dict(
        images=len(images), top1_identical=len(images) - 1, max_abs_logit_difference=0.5))
    with pytest.raises(SystemExit) as e:
        export_cli.main([f'local-dir:{STAGED}', '--out', str(tmp_path / 'out'), '--check-images', str(cells)])
    assert 'disagree on the top-1 class of 1 of 6 images' in str(e.value) and 'nothing was written' in str(e.value)
    assert list((tmp_path / 'out').iterdir()) == []


def test_an_onnx_model_without_its_preprocessing_is_one_line(exported, cells, tmp_path):
    shutil.copyfile(exported / 'model.onnx', tmp_path / 'model.onnx')
    with pytest.raises(SystemExit) as e:
        predict_main(['--model', str(tmp_path / 'model.onnx'), str(cells)])
    assert 'no preprocessing.json beside it' in str(e.value) and 'timm_csba.export' in str(e.value)


def test_transformers_pipeline_loads_a_staged_folder_with_predicts_top1(heads_folder, cells, tmp_path):
    """transformers' TimmWrapper builds timm.create_model(architecture, num_classes=num_labels, **model_args):
    the config.json that save_pretrained writes and the staged folders hold must not repeat num_classes there."""
    transformers = pytest.importorskip('transformers')
    staged = shutil.copytree(STAGED, tmp_path / 'staged')
    for folder in (staged, heads_folder):
        assert 'num_classes' not in json.loads((folder / 'config.json').read_text())['model_args']
    paths = sorted(cells.iterdir())
    expected = [r['label'] for r in predict_images(load_model(str(staged)), paths)]
    classifier = transformers.pipeline('image-classification', model=str(staged))
    assert [classifier(Image.open(p))[0]['label'] for p in paths] == expected
    model = transformers.AutoModelForImageClassification.from_pretrained(str(heads_folder)).eval()
    timm_model = load_model(str(heads_folder))
    x = torch.randn(2, 1, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(model(pixel_values=x).logits, timm_model(x))
