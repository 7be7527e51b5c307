"""Evaluation: rank metrics, protocol exclusion rules, evaluate()."""
from reidkit.evaluation.evaluate import evaluate
from reidkit.evaluation.protocols import ignore_mask
from reidkit.evaluation.rank import rank_metrics

__all__ = ["evaluate", "ignore_mask", "rank_metrics"]
