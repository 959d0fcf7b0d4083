"""CSBA model family; importing this module registers every `csba_*` architecture in timm."""
from .csba_squeeze import *
from .flops import count_gmacs
