"""CSBA model family; importing this module registers every `csba_*` architecture in timm."""
from .cosine import CosineConv2d, CosineLinear, use_cosine_classifier
from .csba_squeeze import *
from .flops import count_gmacs
