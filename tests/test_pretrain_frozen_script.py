"""benchmarks/pretrain_frozen.py: the first-clustering diagnostic of an initialisation."""
from __future__ import annotations

import numpy as np
import torch


def test_cluster_scores_see_identities_that_the_features_separate(benchmark_script):
    frozen = benchmark_script("pretrain_frozen")
    rng = np.random.default_rng(0)
    ids, per = 20, 8  # 4 images per identity in each of 2 modalities
    truth = np.repeat(np.arange(ids), per)
    modality = np.tile(np.repeat([0, 1], per // 2), ids)
    centres = torch.nn.functional.normalize(torch.randn(ids, 64, generator=torch.Generator().manual_seed(0)), dim=1)
    noise = 0.02 * torch.from_numpy(rng.standard_normal((ids * per, 64))).float()
    separated = torch.nn.functional.normalize(centres[truth] + noise, dim=1)
    scores = frozen.cluster_scores(separated, truth, modality)
    assert set(scores) == {"mmc-5", "mmc-20", "mmc-20-kmeans++", "chcr"}
    assert scores["chcr"]["label_ari"] > 0.95 and scores["chcr"]["cross_pair_precision"] == 1.0
    assert scores["mmc-20"]["cross_pair_precision"] > 0.8
    assert scores["mmc-20-kmeans++"]["cross_pair_precision"] > 0.8
    # features that only say which modality took the image: no cross-modality pair is right by more than chance
    offset = torch.nn.functional.normalize(torch.randn(ids * per, 64) * 0.1 + torch.from_numpy(modality).float()
                                           .unsqueeze(1) * torch.ones(64), dim=1)
    blind = frozen.cluster_scores(offset, truth, modality)
    assert blind["mmc-20"]["cross_pair_precision"] < 0.2 and blind["mmc-20"]["label_ari"] < 0.1
