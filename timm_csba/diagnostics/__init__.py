"""Gradient-conflict diagnostics: the paper's Gradient Conflict Matrix and the referee's companions.

    gradients.py   which parameters, and each class's mean gradient over a split
    conflict.py    cosine, projection and magnitude-aware conflict matrices, their summaries, class-mean angles
    branches.py    csba_* heads: each branch's gradient share, the overlap of the branches' attention
    results.py     the measured quantities as dataclasses that round-trip through diagnostics.json
    analysis.py    `analyze`: all of it in one pass over a split
    plots.py       annotated heatmaps

`python -m timm_csba.diagnose` runs them on a trained model folder.
"""
from .analysis import analyze
from .branches import (AttentionOverlap, attention_gates, attention_overlap, branch_gradient_shares,
                       branch_parameter_sets)
from .conflict import (ConflictSummary, angle_matrix, class_mean_features, conflict_matrices, conflict_summary,
                       spearman)
from .gradients import class_batches, per_class_gradients, select_parameters
from .plots import plot_comparison, plot_matrix
from .results import (BranchGradients, Diagnostics, F1Correlation, LossGap, ParameterSetConflict, RunDiagnostics,
                      to_jsonable)

__all__ = [
    'select_parameters', 'class_batches', 'per_class_gradients', 'conflict_matrices', 'conflict_summary',
    'branch_gradient_shares', 'attention_overlap', 'class_mean_features', 'angle_matrix', 'spearman',
    'plot_matrix', 'plot_comparison', 'analyze', 'to_jsonable', 'branch_parameter_sets',
    'attention_gates', 'ConflictSummary', 'ParameterSetConflict', 'BranchGradients', 'AttentionOverlap',
    'F1Correlation', 'LossGap', 'Diagnostics', 'RunDiagnostics',
]
