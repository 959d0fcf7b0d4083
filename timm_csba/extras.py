"""The optional extras of pyproject.toml, for the command lines: a CLI started without the extra it needs says in
one line which extra to install, instead of a ModuleNotFoundError trace.

The core install (torch, torchvision, timm, safetensors, huggingface-hub, pillow, numpy) creates the models, loads
published weights and runs `python -m timm_csba.predict`; training, evaluation, diagnostics and Hub export need
`[train]`, inspecting whole modules `[inspect]`,
exporting to ONNX and running the export `[onnx]`.
"""

__all__ = ['EXTRAS', 'missing_extra']

# the import names each extra provides (its PyPI names are in pyproject.toml)
EXTRAS = {
    'train': ('accelerate', 'datasets', 'elpv_dataset', 'sklearn', 'scipy', 'matplotlib', 'ninja'),
    'inspect': ('scipy', 'pytorch_grad_cam'),
    'onnx': ('onnx', 'onnxruntime'),
}


def missing_extra(error: ModuleNotFoundError, command: str, extra: str = 'train') -> str:
    """The one line for `command`, which needs the extra `extra`, started without the module `error` names; an
    error for a module that the extra does not provide is raised again (a broken install, not a missing extra)."""
    package = (error.name or '').partition('.')[0]
    if package not in EXTRAS[extra]:
        raise error
    return (f'error: {command} needs the [{extra}] extra ({package} is not installed); install it with '
            f'pip install "timm_csba[{extra}]", or pip install -e ".[{extra}]" in a checkout')
