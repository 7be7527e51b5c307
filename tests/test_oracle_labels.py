"""benchmarks/oracle_labels.py: the within-modality split of the oracle labels."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def oracle(benchmark_script):
    return benchmark_script("oracle_labels")


def test_split_by_modality_never_links_the_modalities(oracle):
    ids = np.array([0, 0, 1, 1, 2, 0, 1, 2, 2])
    mods = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1])
    labels = oracle.split_by_modality(ids, mods)
    assert sorted(set(labels.tolist())) == list(range(6))  # 3 identities x 2 modalities, consecutive
    for a in range(len(ids)):
        for b in range(len(ids)):
            same = ids[a] == ids[b] and mods[a] == mods[b]
            assert (labels[a] == labels[b]) == same, (a, b)


def test_split_by_modality_numbers_only_the_pairs_present(oracle):
    labels = oracle.split_by_modality(np.array([5, 5, 7]), np.array([1, 0, 1]))
    assert sorted(labels.tolist()) == [0, 1, 2]


def test_within_modality_is_refused_for_imsl(oracle, tmp_path, capsys):
    with pytest.raises(SystemExit):
        oracle.main(["imsl", "--output", str(tmp_path / "x"), "--within-modality"])
    assert "for chcr" in capsys.readouterr().err
