"""python -m timm_csba.predict: files and folders in, top-k class names out (CSV/JSON), any image mode."""
import csv
import json
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from PIL import Image, PngImagePlugin

from timm_csba.data import build_transforms
from timm_csba.data.builders import _elpv_root
from timm_csba.hub import save_pretrained
from timm_csba.inference import load_image, predict_images as predict, tta_probabilities
from timm_csba.predict import main

NAMES = ['functional', 'possibly_defective', 'likely_defective', 'defective']
ELPV_IMAGES = sorted((_elpv_root() / 'images').glob('*.png'))[:5]


def _model_folder(path: Path, in_chans: int) -> Path:
    torch.manual_seed(0)
    model = timm.create_model('csba_squeeze', num_classes=4, in_chans=in_chans).eval()
    data_config = dict(input_size=(in_chans, 48, 48), mean=(0.597,) * in_chans, std=(0.161,) * in_chans,
                       interpolation='bilinear', crop_pct=1.0)
    return save_pretrained(model, path, NAMES, data_config, model_args=dict(in_chans=in_chans))


@pytest.fixture(scope='module')
def gray_model(tmp_path_factory):
    return _model_folder(tmp_path_factory.mktemp('models') / 'gray', in_chans=1)


@pytest.fixture(scope='module')
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp('images')
    for path in ELPV_IMAGES[:3]:
        (folder / 'cells').mkdir(exist_ok=True)
        (folder / 'cells' / path.name).write_bytes(path.read_bytes())
    (folder / 'cells' / 'notes.txt').write_text('not an image')
    return folder


def test_csv_for_files_and_folders_with_class_names(gray_model, images, tmp_path):
    out = tmp_path / 'predictions.csv'
    main(['--model', str(gray_model), str(images / 'cells'), str(ELPV_IMAGES[4]), '--top-k', '2',
          '--batch-size', '2', '--output', str(out)])
    rows = list(csv.reader(out.open()))
    assert rows[0] == ['path', 'label_1', 'probability_1', 'label_2', 'probability_2']
    assert [Path(r[0]).name for r in rows[1:]] == [p.name for p in ELPV_IMAGES[:3]] + [ELPV_IMAGES[4].name]
    for row in rows[1:]:
        assert row[1] in NAMES and row[3] in NAMES and row[1] != row[3]
        assert 1 >= float(row[2]) >= float(row[4]) >= 0


def test_json_top1_is_the_models_argmax_under_its_eval_transform(gray_model, capsys):
    main(['--model', f'local-dir:{gray_model}', *map(str, ELPV_IMAGES), '--format', 'json', '--top-k', '4'])
    rows = json.loads(capsys.readouterr().out)
    model = timm.create_model(f'local-dir:{gray_model}', pretrained=True).eval()
    transform = build_transforms(model, is_training=False)
    with torch.no_grad():
        probs = model(torch.stack([transform(Image.open(p)) for p in ELPV_IMAGES])).softmax(-1)
    for row, p in zip(rows, probs):
        assert row['label'] == NAMES[int(p.argmax())]
        assert sum(t['probability'] for t in row['top_k']) == pytest.approx(1.0, abs=1e-5)
        assert row['probability'] == pytest.approx(float(p.max()), abs=1e-6)


def test_grayscale_16_bit_and_colour_images_for_1_and_3_channel_models(gray_model, tmp_path):
    cell = np.asarray(Image.open(ELPV_IMAGES[0]))
    Image.fromarray(cell.astype(np.uint16) * 257).save(tmp_path / 'cell16.png')  # 16-bit grayscale, I;16
    Image.fromarray(np.stack([cell] * 3, -1)).save(tmp_path / 'cell_rgb.png')
    Image.open(ELPV_IMAGES[0]).save(tmp_path / 'cell_gray.png')
    assert Image.open(tmp_path / 'cell16.png').mode.startswith('I')
    paths = sorted(tmp_path.glob('cell*.png'))
    rgb_model = timm.create_model(f'local-dir:{_model_folder(tmp_path / "rgb", in_chans=3)}', pretrained=True)
    for model in (timm.create_model(f'local-dir:{gray_model}', pretrained=True), rgb_model):
        rows = predict(model, paths, top_k=1)
        # 8-bit gray, the same cell as 16-bit gray and as RGB: one prediction
        assert len({r['label'] for r in rows}) == 1
        probability = {Path(r['path']).name: r['probability'] for r in rows}
        assert probability['cell_gray.png'] == pytest.approx(probability['cell_rgb.png'], abs=1e-6)
        assert probability['cell_gray.png'] == pytest.approx(probability['cell16.png'], abs=1e-6)


def test_12_14_and_16_bit_images_map_by_the_bit_depth_they_were_recorded_at(gray_model, tmp_path):
    """The same cell at 8 bits, scaled into a 12-bit range (with and without the PNG's sBIT chunk saying so), into
    a 14-bit range and into the full 16-bit range: one picture to rounding, so one grade (v / 257 would have made
    the 12-bit cell nearly black)."""
    cell = np.asarray(Image.open(ELPV_IMAGES[1])).astype(np.float64)
    Image.fromarray(cell.astype(np.uint8)).save(tmp_path / 'cell08.png')
    for bits in (12, 14, 16):
        scaled = np.round(cell * (2 ** bits - 1) / 255).astype(np.uint16)
        Image.fromarray(scaled).save(tmp_path / f'cell{bits}.png')
    said = PngImagePlugin.PngInfo()
    said.add(b'sBIT', bytes([12]))  # a dim 12-bit exposure whose largest value alone would not tell its depth
    Image.fromarray(np.round(cell * 1000 / 255).astype(np.uint16)).save(tmp_path / 'dim12.png', pnginfo=said)
    eight = np.asarray(load_image(tmp_path / 'cell08.png'), dtype=float)
    for bits in (12, 14, 16):
        assert np.abs(np.asarray(load_image(tmp_path / f'cell{bits}.png'), dtype=float) - eight).max() <= 1
    dim = np.asarray(load_image(tmp_path / 'dim12.png'), dtype=float)
    assert np.abs(dim - np.round(cell * 1000 / 4095)).max() <= 1  # by its sBIT: 12 bits, not 10
    model = timm.create_model(f'local-dir:{gray_model}', pretrained=True)
    rows = predict(model, [tmp_path / f'cell{b:02d}.png' for b in (8, 12, 14, 16)], top_k=1)
    assert len({r['label'] for r in rows}) == 1
    assert max(r['probability'] for r in rows) - min(r['probability'] for r in rows) < 0.02
    stretched = np.asarray(load_image(tmp_path / 'dim12.png', contrast='percentile'), dtype=float)
    assert np.percentile(stretched, 1) <= 1 and np.percentile(stretched, 99) >= 254


def test_a_folder_with_an_unreadable_image_grades_the_others_and_lists_it_at_the_end(gray_model, images, capsys):
    folder = images / 'cells'
    bad = folder / 'zz_broken.png'
    bad.write_bytes(ELPV_IMAGES[0].read_bytes()[:200])
    try:
        with pytest.raises(SystemExit, match=f'1 of 4 image\\(s\\) could not be read; the others are graded:\ncannot '
                                             f'decode image {bad}'):
            main(['--model', str(gray_model), str(folder), '--format', 'json'])
    finally:
        bad.unlink()
    graded = json.loads(capsys.readouterr().out)
    assert [Path(r['path']).name for r in graded] == [p.name for p in ELPV_IMAGES[:3]]


def test_bad_input_gets_one_clear_error(gray_model, tmp_path):
    bad = tmp_path / 'broken.png'
    bad.write_bytes(ELPV_IMAGES[0].read_bytes()[:200])
    with pytest.raises(SystemExit, match=f'cannot decode image {bad}'):
        main(['--model', str(gray_model), str(bad)])
    with pytest.raises(SystemExit, match='does not exist'):
        main(['--model', str(gray_model), str(tmp_path / 'missing.png')])
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(SystemExit, match='no images'):
        main(['--model', str(gray_model), str(empty)])
    with pytest.raises(SystemExit, match="unknown model 'csba_squeze'; did you mean csba_squeeze"):
        main(['--model', 'csba_squeze', str(ELPV_IMAGES[0])])


def test_d4_test_time_augmentation_averages_the_eight_symmetries():
    """The d4 mean over rotations and flips, checked view by view; it is the same for a rotated or flipped cell."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(2 * 6 * 6, 3))  # orientation-sensitive
    x = torch.randn(4, 2, 6, 6)
    views = [torch.rot90(v, k, dims=(2, 3)) for k in range(4) for v in (x, x.flip(3))]
    expected = torch.stack([model(v).softmax(-1) for v in views]).mean(0)
    assert torch.allclose(tta_probabilities(model, x, 'd4'), expected, atol=1e-6)
    assert torch.allclose(tta_probabilities(model, x.transpose(2, 3), 'd4'), expected, atol=1e-6)
    assert torch.allclose(tta_probabilities(model, x, 'none'), model(x).softmax(-1))
    assert not torch.allclose(tta_probabilities(model, x, 'flip'), model(x).softmax(-1))


def test_predict_tta_option(gray_model, capsys):
    main(['--model', str(gray_model), str(ELPV_IMAGES[0]), '--format', 'json', '--tta', 'd4', '--top-k', '4'])
    row = json.loads(capsys.readouterr().out)[0]
    model = timm.create_model(f'local-dir:{gray_model}', pretrained=True).eval()
    with torch.no_grad():
        x = build_transforms(model, is_training=False)(Image.open(ELPV_IMAGES[0]))[None]
        probs = tta_probabilities(model, x, 'd4')[0]
    assert row['probability'] == pytest.approx(float(probs.max()), abs=1e-6)


def test_evaluate_refuses_a_model_with_another_class_count(gray_model, tmp_path):
    """The evaluate CLI: a dataset whose classes the model does not predict is one line, and nothing is written."""
    from timm_csba.evaluate import main as evaluate_main
    with pytest.raises(SystemExit, match='predicts 4 classes, elpv has 2'):
        evaluate_main([str(gray_model), '--dataset-options', '{labels: binary}', '--out', str(tmp_path / 'e')])
    assert not (tmp_path / 'e').exists()


@pytest.mark.parametrize('command, argv, flag, kind', [
    ('timm_csba.predict', ['--model', '{model}', '{image}', '--output', '{taken}/p.csv'], '--output', 'file'),
    ('timm_csba.evaluate', ['{model}', '--out', '{taken}'], '--out', 'folder'),
    ('timm_csba.distill', ['{model}', '--out', '{taken}/t.npz'], '--out', 'file'),
    ('timm_csba.diagnose', ['--model-dir', '{model}', '--out', '{taken}'], '--out', 'folder'),
    ('timm_csba.hub.__main__', ['export', '{model}', '--to', '{taken}'], '--to', 'folder'),
    ('timm_csba.hub.__main__', ['seed-cache', '{model}', '--cache-dir', '{taken}/hub'], '--cache-dir', 'folder'),
])
def test_an_output_path_that_cannot_be_written_is_one_line_before_any_work(gray_model, tmp_path, command, argv, flag,
                                                                         kind):
    """A file where an output folder (or an output file's folder) must go: one line naming the option and the fix,
    raised before the model or data load, and the file is left as it was."""
    import importlib
    taken = tmp_path / 'notes.txt'
    taken.write_text('not an output')
    argv = [a.format(model=gray_model, image=ELPV_IMAGES[0], taken=taken) for a in argv]
    with pytest.raises(SystemExit) as stop:
        importlib.import_module(command).main(argv)
    assert str(stop.value).startswith(f'error: {flag} {taken}') and f'pass {flag} a {kind} path' in str(stop.value)
    assert taken.read_text() == 'not an output'
