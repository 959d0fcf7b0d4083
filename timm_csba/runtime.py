"""How a training process uses its machine: CPU threads, mixed precision and torch.compile.

Each choice that depends on the hardware is made here once, with one clear line when it cannot be honoured:

    threads    `accelerate launch` runs a script with OMP_NUM_THREADS=1 on a machine without a GPU unless it is
               given --cpu, so a single CPU process would train on one core; `cpu_threads` gives each local
               process its share of the cores instead.
    precision  bf16 autocast doubles CPU training speed where the processor has bf16 instructions
               (avx512_bf16 or AMX) and slows it down where they are emulated; on GPUs bf16 where supported,
               else fp16, as accelerate does.
    compile    torch.compile in place (the state_dict keys stay those of the plain model), with fixed shapes: a
               short last batch or eval mode compiles once more in the first epoch, never again.
    allocator  glibc malloc serves blocks above 128 KiB-32 MiB with mmap and unmaps them on free, so every
               training step page-faults its activation maps (tens of MB each) back in: on the 2-core CPU
               about 150,000 page faults and 0.27 s of kernel time per csba_squeeze step. `hold_freed_memory`
               keeps freed blocks in the process (1.4x train img/s measured, +9% peak memory).
"""
import ctypes
import os
import sys
from typing import Optional, Tuple

import torch

__all__ = [
    'PRECISIONS', 'PrecisionError', 'cpu_threads', 'native_bf16', 'launcher_precision', 'resolve_mixed_precision',
    'compile_in_place', 'check_compile_backend', 'compiled_graphs', 'hold_freed_memory',
]

PRECISIONS = ('auto', 'no', 'bf16', 'fp16')
LAUNCHER_PRECISION_ENV = 'ACCELERATE_MIXED_PRECISION'


class PrecisionError(ValueError):
    """A precision, thread or compile setting this machine cannot honour; the message names the fix."""


def cpu_threads(requested: int = 0, local_processes: int = 1) -> int:
    """Threads for one process: `requested`, or (0) the usable cores shared evenly among the local processes."""
    if requested < 0:
        raise PrecisionError(f'--threads {requested}: use a positive thread count, or 0 for the cores / processes.')
    if requested:
        return requested
    return max(1, len(os.sched_getaffinity(0)) // max(1, local_processes))


def native_bf16(device: torch.device) -> bool:
    """True where bf16 matmuls and convolutions run in hardware, so that bf16 autocast is faster than fp32."""
    if device.type == 'cuda':
        return torch.cuda.is_bf16_supported()
    if device.type == 'cpu':
        checks = ('_is_avx512_bf16_supported', '_is_amx_tile_supported')  # private, hence getattr
        return any(getattr(torch.cpu, check, lambda: False)() for check in checks)
    return False


def launcher_precision(launcher: Optional[str]) -> Optional[str]:
    """The precision `accelerate launch --mixed_precision` asked for (bf16, fp16), or None: the launcher writes 'no'
    when it was not asked for anything, so that is no request."""
    return launcher if launcher not in (None, '', 'no') else None


def resolve_mixed_precision(requested: str, device: torch.device, launcher: Optional[str] = None) -> Tuple[str, str]:
    """Return (accelerate mixed_precision, why) for a `--mixed-precision` value on this device.

    `launcher` is what `accelerate launch --mixed_precision` put in the environment (None: read it); only bf16 /
    fp16 from it count as a request (`launcher_precision`).
    """
    if requested not in PRECISIONS:
        raise PrecisionError(f'--mixed-precision {requested!r} is not one of {", ".join(PRECISIONS)}.')
    launched = launcher_precision(os.environ.get(LAUNCHER_PRECISION_ENV) if launcher is None else launcher)
    if requested == 'auto':
        if launched:
            return launched, f'{launched}, from accelerate launch --mixed_precision'
        if native_bf16(device):
            return 'bf16', f'bf16 autocast (auto: {device.type} runs bf16 natively)'
        if device.type == 'cuda':
            return 'fp16', 'fp16 autocast (auto: this GPU has no bf16)'
        return 'no', f'fp32 (auto: {device.type} has no native bf16, where bf16 would be slower)'
    if launched and launched != requested:
        raise PrecisionError(
            f'accelerate launch --mixed_precision {launched} and --mixed-precision {requested} disagree; drop one '
            f'of them (or pass --mixed-precision auto to take the launcher\'s).')
    if requested in ('bf16', 'fp16') and device.type == 'cpu':
        if requested == 'fp16' or not native_bf16(device):
            raise PrecisionError(
                f'--mixed-precision {requested} on this CPU runs emulated, slower than fp32 (no '
                f'{"fp16 autocast support" if requested == "fp16" else "avx512_bf16 or AMX"}); use --mixed-precision '
                f'auto or no.')
    return requested, f'{requested} (--mixed-precision)'


def compile_in_place(model: torch.nn.Module, backend: str = 'inductor', mode: Optional[str] = None,
                     device: Optional[torch.device] = None) -> None:
    """`model.compile(...)` after checking the backend can run here; state_dict keys are unchanged."""
    check_compile_backend(backend)
    if backend == 'inductor' and (device is None or device.type == 'cpu'):
        from torch._inductor import exc
        from torch._inductor.cpp_builder import get_cpp_compiler
        try:
            get_cpp_compiler()
        except (exc.InvalidCxxCompiler, RuntimeError):
            raise PrecisionError(
                'torch.compile (inductor) needs a C++ compiler on CPU and found none: install g++ (e.g. apt install '
                'g++) or set CXX, or train without --torchcompile.') from None
    # fixed shapes: the short last batch and eval get their own graphs once, instead of dynamic-shape kernels
    model.compile(backend=backend, mode=mode, dynamic=False)


def check_compile_backend(backend: str) -> None:
    """Raise PrecisionError unless `backend` is a torch.compile backend."""
    import torch._dynamo

    if backend not in torch._dynamo.list_backends(exclude_tags=()):
        raise PrecisionError(f'--torchcompile {backend!r} is not a torch.compile backend; use one of '
                             f'{", ".join(torch._dynamo.list_backends())}.')


def compiled_graphs() -> int:
    """How many graphs torch.compile has built in this process so far."""
    from torch._dynamo.utils import counters
    return int(counters['stats']['unique_graphs'])


# mallopt parameters (glibc malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def hold_freed_memory() -> bool:
    """Keep freed memory in the process instead of returning it to the OS (glibc only; False elsewhere).

    Allocations up to 1 GiB come from the heap instead of fresh mmaps, and the heap is not trimmed below 2 GiB
    of free memory, so a training step reuses the pages of the last one. For the rest of the process: glibc's
    default, a threshold that adapts to the freed sizes, cannot be set back with mallopt.
    """
    if not sys.platform.startswith('linux'):
        return False
    try:
        mallopt = ctypes.CDLL('libc.so.6').mallopt
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, 1 << 30)) and bool(mallopt(_M_TRIM_THRESHOLD, 2 ** 31 - 1))
