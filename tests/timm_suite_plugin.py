"""pytest plugin that runs timm's own tests/test_models.py on the csba_* models only.

Loaded with `-p timm_suite_plugin` by test_timm_model_suite.py. It
  * imports timm_csba (registration) and narrows timm.list_models / list_pretrained to csba_* names
    *after* timm applied its own gates (exclude filters, name_matches_cfg, module filters), so every gate
    still decides exactly as it does for timm's models;
  * deselects the tests that target named timm models;
  * leaves the pretrained tests to timm's own gate: they collect the tags with weights (an hf_hub_id), which
    the runner serves from an offline HF cache seeded from hub/, exactly as after a download;
  * writes a JSON report of what each test function collected and how each item ended, including the
    functions whose gates left every csba model out (a test that never collects a model checks nothing).
"""
import json
import os

import timm

import timm_csba  # noqa: F401  (registers the models)

PREFIX = 'csba_'


def _ours(names):
    return [n for n in names if n.startswith(PREFIX)]


_list_models, _list_pretrained = timm.list_models, timm.list_pretrained
timm.list_models = lambda *args, **kwargs: _ours(_list_models(*args, **kwargs))
timm.list_pretrained = lambda *args, **kwargs: _ours(_list_pretrained(*args, **kwargs))

_report = {'collected': {}, 'gated_out': [], 'outcomes': {}}


def _model_name(item):
    callspec = getattr(item, 'callspec', None)
    return callspec.params.get('model_name') if callspec else None


def _is_empty_parameter_set(item):
    marker = item.get_closest_marker('skip')
    return marker is not None and 'got empty parameter set' in str(marker.kwargs.get('reason', ''))


def pytest_collection_modifyitems(session, config, items):
    keep, drop = [], []
    for item in items:
        name, func = _model_name(item), item.originalname
        if isinstance(name, str) and name.startswith(PREFIX):
            keep.append(item)
            _report['collected'].setdefault(func, []).append(name)
        else:
            drop.append(item)
            if _is_empty_parameter_set(item):
                _report['gated_out'].append(func)
    items[:] = keep
    config.hook.pytest_deselected(items=drop)


def pytest_runtest_logreport(report):
    if report.when == 'call' or report.outcome != 'passed':
        # a setup failure or skip decides the item; a teardown error overrides a passed call
        if report.when != 'teardown' or report.outcome == 'failed':
            _report['outcomes'][report.nodeid] = report.outcome


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get('TIMM_SUITE_REPORT')
    if path:
        with open(path, 'w') as f:
            json.dump(_report, f, indent=1)
