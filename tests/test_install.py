"""The core install: without the [train] extra the published weights load, predict grades a cell and a
diagnostics.json reads back typed; a command that needs the extra says so in one line.

Each check runs in a fresh interpreter where importing any module of the [train], [inspect] or [onnx] extras (or
pandas and pyarrow, which [train] brings) fails as it does where the extra is not installed."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from timm_csba.data.builders import _elpv_root
from timm_csba.extras import EXTRAS
from timm_csba.hub import seed_cache
from timm_csba.inference import load_model, predict_images

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = 'csba_squeeze.elpv'
BLOCKED = (*EXTRAS['train'], *EXTRAS['inspect'], *EXTRAS['onnx'], 'pandas', 'pyarrow')
# a found spec without origin whose import fails: torch probes optional packages with find_spec for their folder
WITHOUT_TRAIN_EXTRA = f'''
import importlib.abc, importlib.machinery, sys

class NotInstalled(importlib.abc.Loader):
    def create_module(self, spec):
        raise ModuleNotFoundError(f'No module named {{spec.name!r}}', name=spec.name)

    def exec_module(self, module):
        pass

class WithoutTrainExtra(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition('.')[0] in {BLOCKED!r}:
            return importlib.machinery.ModuleSpec(name, NotInstalled())

sys.meta_path.insert(0, WithoutTrainExtra())
'''


def _core_python(code: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-c', WITHOUT_TRAIN_EXTRA + code], capture_output=True, text=True,
                          cwd=ROOT, env=env)


@pytest.fixture(scope='module')
def offline_cache(tmp_path_factory):
    """An HF cache seeded from hub/, as a download leaves it, and the environment that reads only it."""
    cache = tmp_path_factory.mktemp('hf_cache')
    seed_cache([ROOT / 'hub' / PUBLISHED], cache_dir=cache)
    return dict(os.environ, HF_HUB_CACHE=str(cache), HF_HUB_OFFLINE='1')


def test_the_blocker_stands_for_a_missing_extra():
    result = _core_python('import datasets')
    assert result.returncode != 0 and "No module named 'datasets'" in result.stderr


def test_core_install_loads_the_published_weights_predicts_a_cell_and_reads_diagnostics(offline_cache):
    cell = sorted((_elpv_root() / 'images').glob('*.png'))[0]
    diagnostics = ROOT / 'hub' / PUBLISHED / 'diagnostics' / 'diagnostics.json'
    result = _core_python(f'''
import json, timm, timm_csba
from timm_csba.diagnostics import RunDiagnostics
from timm_csba.predict import main
model = timm.create_model('csba_squeeze', pretrained=True)
report = RunDiagnostics.from_json(json.load(open('{diagnostics}')))
print(type(model).__name__, model.num_classes, model.pretrained_cfg['tag'],
      report.diagnostics.parameter_sets['backbone'].summary['cosine'].mean_off_diagonal)
main(['--model', '{PUBLISHED}', '{cell}', '--format', 'json', '--top-k', '4'])
assert not any(name.partition('.')[0] in {BLOCKED!r} for name in sys.modules)
''', env=offline_cache)
    assert result.returncode == 0, result.stderr[-3000:]
    header, rows = result.stdout.split('\n', 1)
    saved = json.loads(diagnostics.read_text())['parameter_sets']['backbone']['summary']['cosine']
    assert header == f'CsbaSqueeze 4 elpv {saved["mean_off_diagonal"]}'
    row = json.loads(rows)[0]
    expected = predict_images(load_model(f'local-dir:{ROOT / "hub" / PUBLISHED}'), [cell], top_k=4)[0]
    assert row['label'] == expected['label'] and row['probability'] == pytest.approx(expected['probability'], abs=1e-5)


COMMANDS = {'timm_csba.evaluate': 'train', 'timm_csba.diagnose': 'train', 'timm_csba.distill': 'train',
            'timm_csba.hub': 'train', 'timm_csba.data': 'train', 'train.py': 'train', 'timm_csba.inspect': 'inspect',
            'timm_csba.export': 'onnx'}


def test_a_command_without_its_extra_says_which_to_install_in_one_line():
    result = _core_python(f'''
import contextlib, io, runpy
for command in {list(COMMANDS)!r}:
    sys.argv, stderr = [command, '--help'], io.StringIO()
    with contextlib.redirect_stderr(stderr):
        try:
            if command.endswith('.py'):
                runpy.run_path(command, run_name='__main__')
            else:
                runpy.run_module(command, run_name='__main__', alter_sys=True)
        except SystemExit as e:
            print(repr(e.code))
''')
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [eval(line) for line in result.stdout.splitlines()]
    assert len(lines) == len(COMMANDS)
    for (command, extra), line in zip(COMMANDS.items(), lines):
        name = command if command.endswith('.py') else f'python -m {command}'
        assert line.startswith(f'error: {name} needs the [{extra}] extra (') and '\n' not in line
        assert line.endswith(f'is not installed); install it with pip install "timm_csba[{extra}]", or pip install '
                             f'-e ".[{extra}]" in a checkout')
