"""The optional extras of pyproject.toml, for the command lines: a CLI started without the extra it needs says in
one line which extra to install, instead of a ModuleNotFoundError trace.

The core install (torch, torchvision, timm, safetensors, huggingface-hub, pillow, numpy) creates the models, loads
published weights and runs `python -m timm_csba.predict`; training, evaluation, diagnostics and Hub export need
`[train]`.
"""

__all__ = ['EXTRAS', 'missing_extra']

# the import names each extra provides (its PyPI names are in pyproject.toml)
EXTRAS = {
    'train': ('accelerate', 'datasets', 'elpv_dataset', 'sklearn', 'scipy', 'matplotlib', 'ninja'),
}


def missing_extra(error: ModuleNotFoundError, command: str) -> str:
    """The one line for `command` started without the extra that provides the module `error` names; an error for a
    module that no extra provides is raised again (a broken install, not a missing extra)."""
    package = (error.name or '').partition('.')[0]
    extra = next((name for name, modules in EXTRAS.items() if package in modules), None)
    if extra is None:
        raise error
    return (f'error: {command} needs the [{extra}] extra ({package} is not installed); install it with '
            f'pip install "timm_csba[{extra}]", or pip install -e ".[{extra}]" in a checkout')
