"""timm_csba: Class-Specific Branch Attention models for class-imbalanced image classification, in timm.

`import timm_csba` registers the `csba_*` architectures in timm's registry, after which
`timm.create_model('csba_squeeze', ...)` works like any timm model.
"""
from .models import CsbaSqueeze, HEAD_TYPES

__version__ = '0.1.0'
__all__ = ['CsbaSqueeze', 'HEAD_TYPES', '__version__']
