"""benchmarks/budgets.py: the suite's time estimated from sample runs."""
from __future__ import annotations

import json

import pytest


def write_run(folder, method: str, preset: str, wall: float, cpu: str = "Test CPU") -> None:
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({"method": method, "preset": preset, "wall_time_s": wall}))
    (folder / "env.json").write_text(json.dumps({"cpu": cpu}))


def test_estimate_gives_each_suite_job_its_samples_mean(tmp_path, benchmark_script):
    budgets = benchmark_script("budgets")
    suite = tmp_path / "suite.yaml"
    suite.write_text("""
name: demo
seeds: [0, 1, 2]
set: {data.dataset: synthetic}
datasets:
  a: {set: {dataset_args.preset: standard}}
  b: {set: {dataset_args.preset: standard-nir}}
runs:
  - method: chcr
  - method: dc-baseline
    datasets: [a]
""")
    write_run(tmp_path / "s" / "a0", "chcr", "standard", 600.0)
    write_run(tmp_path / "s" / "a1", "chcr", "standard", 720.0)     # mean 660 s = 11 min, 3 jobs
    write_run(tmp_path / "s" / "b0", "chcr", "standard-nir", 480.0)  # 8 min, 3 jobs
    write_run(tmp_path / "s" / "d0", "dc-baseline", "standard", 300.0)  # 5 min, 3 jobs
    text = budgets.estimate([tmp_path / "s"], suite, jobs=2)
    assert "| chcr | standard | 2 | 11.0 | 3 | 33.0 |" in text
    assert "| chcr | standard-nir | 1 | 8.0 | 3 | 24.0 |" in text
    assert "| dc-baseline | standard | 1 | 5.0 | 3 | 15.0 |" in text
    assert "sum 72.0 min; with --jobs 2, about 36.0 min elapsed (0.40 of the 90-minute limit)" in text
    assert "Sample CPU: Test CPU." in text
    (tmp_path / "s" / "d0" / "metrics.json").unlink()
    with pytest.raises(SystemExit, match="no sample run of dc-baseline on standard"):
        budgets.estimate([tmp_path / "s"], suite, jobs=2)
