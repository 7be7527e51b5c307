"""Benchmark suites and side-by-side reports."""
