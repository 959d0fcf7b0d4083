"""Machine choices: threads per process, mixed precision by device and launcher, torch.compile in place."""
import os
import subprocess
import sys
import textwrap

import pytest
import timm
import torch

import timm_csba  # noqa: F401
from timm_csba import runtime
from timm_csba.runtime import PrecisionError, compile_in_place, cpu_threads, resolve_mixed_precision

CPU, CUDA = torch.device('cpu'), torch.device('cuda')


def test_threads_share_the_cores_among_local_processes():
    cores = len(os.sched_getaffinity(0))
    assert cpu_threads(0, 1) == cores
    assert cpu_threads(0, cores * 4) == 1
    assert cpu_threads(3, 2) == 3
    with pytest.raises(PrecisionError, match='positive thread count'):
        cpu_threads(-1)


@pytest.mark.parametrize('native, device, launcher, expected', [
    (True, CPU, None, 'bf16'),        # auto: fast bf16 CPU
    (False, CPU, None, 'no'),         # auto: emulated bf16 would be slower than fp32
    (True, CPU, 'no', 'bf16'),        # the launcher's default 'no' is not a request
    (False, CUDA, None, 'fp16'),      # a GPU without bf16
    (True, CUDA, None, 'bf16'),
    (False, CPU, 'fp16', 'fp16'),     # accelerate launch --mixed_precision fp16 is honoured
])
def test_auto_precision(monkeypatch, native, device, launcher, expected):
    monkeypatch.setattr(runtime, 'native_bf16', lambda d: native)
    precision, why = resolve_mixed_precision('auto', device, launcher=launcher or '')
    assert precision == expected and why


def test_explicit_precision_and_its_refusals(monkeypatch):
    monkeypatch.setattr(runtime, 'native_bf16', lambda d: True)
    assert resolve_mixed_precision('no', CPU, launcher='no')[0] == 'no'
    assert resolve_mixed_precision('bf16', CPU, launcher='bf16')[0] == 'bf16'
    with pytest.raises(PrecisionError, match='disagree'):
        resolve_mixed_precision('no', CPU, launcher='bf16')
    with pytest.raises(PrecisionError, match='fp16 on this CPU runs emulated'):
        resolve_mixed_precision('fp16', CPU, launcher='')
    monkeypatch.setattr(runtime, 'native_bf16', lambda d: False)
    with pytest.raises(PrecisionError, match='avx512_bf16 or AMX.*use --mixed-precision auto or no'):
        resolve_mixed_precision('bf16', CPU, launcher='')
    with pytest.raises(PrecisionError, match='is not one of'):
        resolve_mixed_precision('fp64', CPU, launcher='')


def test_launcher_precision_is_read_from_the_environment(monkeypatch):
    monkeypatch.setattr(runtime, 'native_bf16', lambda d: False)
    monkeypatch.setenv('ACCELERATE_MIXED_PRECISION', 'bf16')
    assert resolve_mixed_precision('auto', CUDA)[0] == 'bf16'


def test_compile_in_place_keeps_state_dict_keys_and_function():
    model = timm.create_model('csba_squeeze', num_classes=4, in_chans=1).eval()
    keys, x = list(model.state_dict()), torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        expected = model(x)
    compile_in_place(model, backend='aot_eager')
    assert list(model.state_dict()) == keys
    with torch.no_grad():
        torch.testing.assert_close(model(x), expected)


def test_compile_refuses_unknown_backend_and_missing_compiler(monkeypatch):
    model = torch.nn.Linear(2, 2)
    with pytest.raises(PrecisionError, match="'inductr' is not a torch.compile backend"):
        compile_in_place(model, backend='inductr')
    import torch._inductor.config as inductor_config
    monkeypatch.setattr(inductor_config.cpp, 'cxx', (None, '/nonexistent/g++'))
    with pytest.raises(PrecisionError, match='needs a C\\+\\+ compiler on CPU'):
        compile_in_place(model, backend='inductor', device=CPU)


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='page-fault counts of glibc on Linux')
def test_held_memory_is_reused_without_page_faults():
    """A freed 64 MiB activation comes back without faulting its pages in again; under glibc's defaults every
    allocation of that size is a fresh mmap whose 16,384 pages fault on first touch. In a fresh process, since
    holding lasts for the rest of one."""
    script = textwrap.dedent('''
        import resource, torch
        from timm_csba.runtime import hold_freed_memory

        def faults_of_second_allocation():
            torch.ones(16 * 2 ** 20)  # 64 MiB, freed at once
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            torch.ones(16 * 2 ** 20)
            return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

        default = faults_of_second_allocation()
        held = hold_freed_memory()
        faults_of_second_allocation()  # the heap grows to hold the block once
        print(default, held, faults_of_second_allocation())
    ''')
    default, held, after = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                                          check=True).stdout.split()
    if held == 'False':
        pytest.skip('not glibc')
    assert int(default) > 10_000 and int(after) < 1_000
