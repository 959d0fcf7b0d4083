"""The Fashion-MNIST-LT study's questions (issue 51) answered in plain words from one recipe's numbers: does
CSBA's claimed CIFAR-10-LT gain show, does the shared-gate control explain what shows, does LDAM-DRW behave as
published, and gradient conflict. A difference counts when its seed-paired t-test gives p < ALPHA and its
test-image bootstrap interval excludes 0 (`difference_shown`); an answer says 'not shown' otherwise, never 'no effect'."""
from typing import Any, Dict, List, Sequence

import pandas as pd

from studies.analysis.report import (capacity_answer, conflict_answer, conflict_predicts_answer, difference_shown,
                                     sentence, verdict)

CLASSES = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot')
# the long-tail profile keeps Fashion-MNIST's class order: 6000 ... 60 train images from the first class to the last
GROUPS = {'head': CLASSES[:3], 'medium': CLASSES[3:7], 'tail': CLASSES[7:]}
# the paper's CIFAR-10-LT claim (macro-F1, IR 100) and Cao et al.'s published LDAM-DRW gain over CE (balanced
# accuracy, ResNet-32, CIFAR-10-LT IR 100: 70.4 -> 77.0); the target for LDAM-DRW here is +3 points
CLAIMED_CSBA_GAIN = (0.595, 0.655)
PUBLISHED_LDAM_DRW = (0.704, 0.770)
LDAM_DRW_TARGET = 0.03


def _not_yet(question: str, a: str, b: str) -> str:
    return f'- **{question}** Not measured yet: {a} and {b} need at least two seeds in common.'


def csba_gain_answer(csba_sum: Dict) -> str:
    question = 'Does CSBA\'s CIFAR-10-LT gain show on Fashion-MNIST-LT?'
    gain = csba_sum['macro_f1'].mean_difference
    if not difference_shown(csba_sum):
        answer = 'not shown'
    elif gain > 0:
        answer = 'yes, csba scores higher macro-F1 than sum' + (
            '' if gain >= CLAIMED_CSBA_GAIN[1] - CLAIMED_CSBA_GAIN[0] else ', by less than the paper claims')
    else:
        answer = 'no, csba scores lower macro-F1 than sum'
    before, after = CLAIMED_CSBA_GAIN
    return (f'- **{question}** {sentence(answer)}: {verdict(csba_sum)}; the paper claims macro-F1 {before:.3f} → '
            f'{after:.3f} ({after - before:+.3f}) on CIFAR-10-LT.')


def ldam_drw_answer(ldam_ce: Dict) -> str:
    question = 'Does LDAM-DRW beat plain CE as published?'
    gain = ldam_ce['balanced_accuracy'].mean_difference
    if not difference_shown(ldam_ce, 'balanced_accuracy'):
        answer = 'not shown'
    elif gain >= LDAM_DRW_TARGET:
        answer = f'yes, by at least the {LDAM_DRW_TARGET * 100:.0f} points the target asks'
    elif gain > 0:
        answer = f'partly: it gains, by less than the {LDAM_DRW_TARGET * 100:.0f} points the target asks'
    else:
        answer = 'no, LDAM-DRW scores lower than CE'
    before, after = PUBLISHED_LDAM_DRW
    return (f'- **{question}** {sentence(answer)}: '
            f'{verdict(ldam_ce, "balanced_accuracy", "balanced accuracy")}; published with ResNet-32 on '
            f'CIFAR-10-LT: {before:.3f} → {after:.3f} ({after - before:+.3f}).')


def conclusion(table: pd.DataFrame, comparisons: Sequence[Dict], pooled: Dict[str, Any],
               within: Dict[str, Any]) -> List[str]:
    by_pair = {(c['a'], c['b']): c for c in comparisons}
    csba_sum, ldam_ce = by_pair.get(('csba', 'sum')), by_pair.get(('sum_ldam_drw', 'sum'))
    return [csba_gain_answer(csba_sum) if csba_sum else
            _not_yet('Does CSBA\'s CIFAR-10-LT gain show on Fashion-MNIST-LT?', 'csba', 'sum'),
            capacity_answer(by_pair),
            ldam_drw_answer(ldam_ce) if ldam_ce else
            _not_yet('Does LDAM-DRW beat plain CE as published?', 'sum_ldam_drw', 'sum'),
            conflict_answer(csba_sum) if csba_sum else
            _not_yet('Does CSBA reduce gradient conflict?', 'csba', 'sum'),
            conflict_predicts_answer(table, CLASSES, 'class', 'classes', pooled, within)]
