"""Evaluation: rank metrics, protocol exclusion rules, evaluate()."""
