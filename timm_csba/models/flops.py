"""Multiply-accumulates of one forward pass, counted by PyTorch's own flop counter (the model table and the cards)."""
import torch
from torch.utils.flop_counter import FlopCounterMode

__all__ = ['count_gmacs']


def count_gmacs(model: torch.nn.Module, input_size: tuple) -> float:
    """Return the multiply-accumulates (in G) of one forward pass on a single image of `input_size`."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model.eval()(torch.zeros(1, *input_size))
    return counter.get_total_flops() / 2e9
