"""What the shared aggregation needs to know of a study beyond its runs."""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from studies.grid import Grid

# (table of one recipe's runs, its comparisons, conflict ~ F1 pooled, conflict ~ F1 within classes) -> the
# REPORT's plain-words answers, one '- **question** Verdict: the numbers' line each
Conclusion = Callable[..., List[str]]
# (table of one recipe's runs, the folder the runs are read from, the study) -> a generated section of the REPORT
Section = Callable[..., List[str]]


@dataclass(frozen=True)
class Study:
    """A study's grid and how its REPORT reads it.

    `comparisons` are (a, b) pairs compared a - b, the study's question first (its conclusion quotes it; the report
    lists the others' verdicts after the answers). `focus` names the columns compared beside macro-F1 (a class's
    'f1_<name>', a group's 'f1_<group>', 'balanced_accuracy'), `shown` the F1 columns of the arm table and of the F1
    figure. `groups` adds a column 'f1_<group>' per group: the mean F1 of its classes. The image bootstrap of each
    comparison covers `bootstrap_metrics` ('macro_f1', 'balanced_accuracy'). `notes` is the study's written account
    (how the runs were made, what was checked and found), appended to the generated REPORT. `sections` add a
    study's own measurements to each recipe's part of the REPORT, after its comparisons."""
    grid: Grid
    script: str  # the aggregator, as the report names it: python <script>
    run_script: str  # the runner whose records it reads
    title: str
    intro: str  # what the report's numbers are measured on (the test split)
    classes: Tuple[str, ...]  # the dataset's class names in label order
    class_word: str  # what one class is called in the report's sentences: 'grade', 'class'
    comparisons: Tuple[Tuple[str, str], ...]
    focus: Tuple[str, ...]
    shown: Tuple[str, ...]
    conclusion: Conclusion
    groups: Dict[str, Tuple[str, ...]] = field(default_factory=dict)
    bootstrap_metrics: Tuple[str, ...] = ('macro_f1',)
    notes: Optional[Path] = None  # a hand-written markdown account that the report appends after its numbers
    sections: Tuple[Section, ...] = ()

    @property
    def class_words(self) -> str:
        return f'{self.class_word}es' if self.class_word.endswith('s') else f'{self.class_word}s'

    def label(self, column: str) -> str:
        """'F1 tail' for 'f1_tail', 'balanced accuracy' for 'balanced_accuracy': a column as the report heads it."""
        if column.startswith('f1_'):
            return f'F1 {column[3:]}'
        return column.replace('_', ' ').replace('macro f1', 'macro-F1')

    def f1_columns(self) -> Sequence[str]:
        """Every class's and every group's F1 column."""
        return [*(f'f1_{c}' for c in self.classes), *(f'f1_{g}' for g in self.groups)]
