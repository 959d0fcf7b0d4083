"""Package names that load on first use (PEP 562), for the packages whose submodules need an optional extra: the
core install imports the parts it needs without pulling `datasets`, scikit-learn or matplotlib in through them."""
import importlib
import sys
from typing import Any, Callable, Dict, List, Tuple

__all__ = ['lazy_exports']


def lazy_exports(package: str, exports: Dict[str, str]) -> Tuple[Callable[[str], Any], Callable[[], List[str]]]:
    """The module `__getattr__` and `__dir__` of `package`, whose public names (`exports`: name -> the module that
    defines it, relative to `package`, e.g. '.builders') are imported from that module the first time they are
    read."""
    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f'module {package!r} has no attribute {name!r}')
        value = getattr(importlib.import_module(exports[name], package), name)
        setattr(sys.modules[package], name, value)  # later reads skip this function
        return value

    def __dir__() -> List[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
