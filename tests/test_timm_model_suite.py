"""Acceptance: timm's own model test suite (tests/test_models.py of the installed timm's sdist) on csba_*.

The sdist is fetched once with `pip download` (PyPI) into a cache, or taken from $TIMM_SDIST. The suite runs
in a subprocess with timm_suite_plugin, which narrows it to our models and reports, per test function,
which models it collected and how each ended. This test prints that table and fails when an applicable
test function does not collect every csba model, or when any collected item fails.
"""
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import timm

import timm_csba  # noqa: F401
from timm_csba.hub import seed_cache

ARCHS = sorted(timm.list_models('csba_*'))
PUBLISHED = sorted(timm.list_pretrained('csba_*'))  # the tags with weights (an hf_hub_id), staged in hub/
HUB = Path(__file__).resolve().parents[1] / 'hub'

# test function -> the names it must collect; every item must pass
MUST_PASS = {
    'test_model_forward': ARCHS,
    'test_model_backward': ARCHS,
    'test_model_default_cfgs': PUBLISHED,
    'test_model_forward_torchscript': ARCHS,
    'test_model_forward_features': ARCHS,
    'test_model_forward_intermediates_features': ARCHS,
    'test_model_forward_intermediates': ARCHS,
    'test_prune_intermediate_layers_contract': ARCHS,
    'test_model_forward_fx': ARCHS,
    'test_model_backward_fx': ARCHS,
    'test_model_forward_fx_torchscript': ARCHS,
}
# they load weights from the Hub (here: an offline cache seeded from hub/)
NEEDS_HUB = {'test_model_load_pretrained': PUBLISHED, 'test_model_features_pretrained': PUBLISHED}
# per-model test functions whose gates leave csba_* out by design
NOT_APPLICABLE = {
    'test_model_inference': "only timm's own hub `test_*` models",
    'test_model_default_cfgs_non_std': 'csba_* are standard CNN names, checked by test_model_default_cfgs',
    'test_model_features_space2depth_reduction': 'efficientnet_[hx]_* only',
}

# timm's suite only offers forward_intermediates tests to modules on its hard-coded list
FEAT_INTER_ANCHOR = 'FEAT_INTER_FILTERS = ['


def _timm_sdist(cache_dir: Path) -> Path:
    if os.environ.get('TIMM_SDIST'):
        return Path(os.environ['TIMM_SDIST'])
    sdist = cache_dir / f'timm-{timm.__version__}.tar.gz'
    if not sdist.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, '-m', 'pip', 'download', '--no-deps', '--no-binary', ':all:',
               f'timm=={timm.__version__}', '-d', str(cache_dir), '-q']
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0 or not sdist.exists():
            pytest.fail(f'could not fetch the timm {timm.__version__} sdist from PyPI (set TIMM_SDIST to a local '
                        f'copy): {result.stderr[-2000:]}')
    return sdist


def _patched_test_models(sdist: Path, out_dir: Path) -> Path:
    with tarfile.open(sdist) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith('/tests/test_models.py'))
        source = tar.extractfile(member).read().decode()
    assert source.count(FEAT_INTER_ANCHOR) == 1, 'timm changed FEAT_INTER_FILTERS; update the runner'
    source = source.replace(FEAT_INTER_ANCHOR, FEAT_INTER_ANCHOR + "'csba_squeeze', ")
    path = out_dir / 'test_models.py'
    path.write_text(source)
    return path


def _run_suite(tmp_path: Path) -> dict:
    cache = Path(os.environ.get('TIMM_CSBA_CACHE', Path.home() / '.cache' / 'timm_csba'))
    test_file = _patched_test_models(_timm_sdist(cache), tmp_path)
    report = tmp_path / 'report.json'
    hf_cache = tmp_path / 'hf_cache'
    if PUBLISHED:
        seed_cache([HUB], cache_dir=hf_cache)
    env = dict(
        os.environ,
        TIMM_SUITE_REPORT=str(report),
        HF_HUB_OFFLINE='1',
        HF_HUB_CACHE=str(hf_cache),
        PYTHONPATH=os.pathsep.join([str(Path(__file__).parent), os.environ.get('PYTHONPATH', '')]),
    )
    env.pop('GITHUB_ACTIONS', None)  # the same filters on every machine
    cmd = [sys.executable, '-m', 'pytest', str(test_file), '-p', 'timm_suite_plugin', '-q', '-p', 'no:cacheprovider',
           '--rootdir', str(tmp_path), '-o', 'addopts=', '-W', 'ignore::DeprecationWarning']
    result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True)
    print(result.stdout[-6000:], result.stderr[-3000:])
    assert report.exists(), f'the timm suite did not run (exit {result.returncode})'
    return json.loads(report.read_text())


def _table(report: dict) -> str:
    rows = []
    for func in sorted(set(report['collected']) | set(report['gated_out'])):
        names = report['collected'].get(func, [])
        ends = [outcome for nodeid, outcome in report['outcomes'].items() if f'::{func}[' in nodeid]
        counts = {k: ends.count(k) for k in ('passed', 'skipped', 'failed')}
        why = f'  (not applicable: {NOT_APPLICABLE[func]})' if func in NOT_APPLICABLE else ''
        rows.append(f'{func:45s} collected {len(names):2d}  passed {counts["passed"]:2d}  '
                    f'skipped {counts["skipped"]:2d}  failed {counts["failed"]:2d}{why}')
    return '\n'.join(rows)


@pytest.mark.timeout(1500)
def test_timm_model_suite_passes_for_every_csba_model(tmp_path, pytestconfig):
    report = _run_suite(tmp_path)
    table = _table(report)
    print(table)
    # shown after the run even when the test passes: a test that never collects our model checks nothing
    pytestconfig.csba_reports = [*getattr(pytestconfig, 'csba_reports', []),
                                 (f'timm {timm.__version__} tests/test_models.py on csba_* (per test function)', table)]

    for func, names in {**MUST_PASS, **NEEDS_HUB}.items():
        collected = report['collected'].get(func, [])
        missing = sorted(set(names) - set(collected))
        assert not missing, f'{func} never collected {missing}: a gate in timm\'s suite leaves them out'
    unexpected_gates = sorted(set(report['gated_out']) - set(NOT_APPLICABLE))
    assert not unexpected_gates, f'timm test functions that collected no csba model: {unexpected_gates}'

    failed = sorted(nodeid for nodeid, outcome in report['outcomes'].items() if outcome == 'failed')
    assert not failed, f'timm suite failures: {failed}'
    for func in {**MUST_PASS, **NEEDS_HUB}:
        ends = [o for nodeid, o in report['outcomes'].items() if f'::{func}[' in nodeid]
        assert ends and all(o == 'passed' for o in ends), f'{func}: {ends}'
