"""The ELPV study's questions (issue 14) answered in plain words from one recipe's numbers. A difference between
arms counts when its seed-paired t-test gives p < ALPHA (for macro-F1 the image bootstrap interval must also
exclude 0: `difference_shown`); an answer says 'not shown' otherwise, never 'no effect'."""
from typing import Any, Dict, List, Sequence

import pandas as pd

from studies.analysis.report import (capacity_answer, conflict_answer, conflict_predicts_answer, difference,
                                     seed_shown, sentence, verdict)

GRADES = ('functional', 'possibly_defective', 'likely_defective', 'defective')
MINORITY = ('possibly_defective', 'likely_defective')


def conclusion(table: pd.DataFrame, comparisons: Sequence[Dict], pooled: Dict[str, Any],
               within: Dict[str, Any]) -> List[str]:
    by_pair = {(c['a'], c['b']): c for c in comparisons}
    csba_sum = by_pair.get(('csba', 'sum'))
    if csba_sum is None:
        return ['- Nothing to conclude yet: csba and sum need at least two seeds in common.']

    minority = {g: csba_sum[f'f1_{g}'] for g in MINORITY}
    better = [g for g, t in minority.items() if seed_shown(t) and t.mean_difference > 0]
    worse = [g for g, t in minority.items() if seed_shown(t) and t.mean_difference < 0]
    answer = ('yes, on ' + ' and '.join(better) if better and not worse else
              'no, it is worse on ' + ' and '.join(worse) if worse and not better else
              'mixed' if better else 'not shown')
    return [conflict_answer(csba_sum),
            f'- **Does CSBA beat the summed baseline on the minority grades?** {sentence(answer)}: ' +
            ', '.join(difference(t, f'F1 {g} csba − sum') for g, t in minority.items()) + f'; {verdict(csba_sum)}.',
            capacity_answer(by_pair),
            conflict_predicts_answer(table, GRADES, 'grade', 'grades', pooled, within)]
