"""argparse types the command lines share: each checks a value where it is typed, so a bad number or mapping stops
at parsing, named, not deep inside a scheduler or a builder.

The CLIs (predict, evaluate, diagnose, distill, data, hub) and train.py build their parsers from these (and
dataset_flags.py); the library below them takes plain values and never parses a command line.
"""
import argparse
from typing import Callable

import yaml

__all__ = ['positive_int', 'non_negative_int', 'positive_float', 'non_negative_float', 'probability', 'NUMBER_TYPES',
           'yaml_mapping']


def _number_type(convert: Callable[[str], float], holds: Callable[[float], bool], what: str) -> Callable[[str], float]:
    """An argparse `type` that converts and range-checks, so a bad number stops at parsing, named, not deep in a
    scheduler's assert."""
    def check(text: str) -> float:
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not holds(value):
            raise argparse.ArgumentTypeError(f'{text!r} is not {what}')
        return value
    check.__name__ = what.replace(' ', '_')
    return check


positive_int = _number_type(int, lambda v: v > 0, 'a positive integer')
non_negative_int = _number_type(int, lambda v: v >= 0, 'an integer >= 0')
positive_float = _number_type(float, lambda v: v > 0, 'a number > 0')
non_negative_float = _number_type(float, lambda v: v >= 0, 'a number >= 0')
probability = _number_type(float, lambda v: 0 <= v <= 1, 'a number in [0, 1]')
NUMBER_TYPES = (int, float, positive_int, non_negative_int, positive_float, non_negative_float, probability)


def yaml_mapping(text: str) -> dict:
    """An argparse `type` for options given as a YAML mapping ("{hflip: 0.5, scale: [0.8, 1.0]}"); "" is none."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise argparse.ArgumentTypeError(f'{text!r} is not valid YAML ({" ".join(str(e).split())})') from None
    value = {} if value is None else value
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f'{text!r} is not a YAML mapping such as "{{key: value}}"')
    return value
