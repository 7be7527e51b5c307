"""Gallery exclusion rules and batch samplers are registries: a plugin adds one without editing reidkit."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from reidkit.data.datasets.base import Protocol
from reidkit.data.loaders import build_train_loader
from reidkit.data.records import Sample
from reidkit.data.samplers import PKSampler
from reidkit.evaluation import evaluate, ignore_mask
from reidkit.method import EpochPlan
from reidkit.registry import EXCLUSIONS, SAMPLERS


def same_camera(query, gallery):
    """A plugin's rule: a query skips every gallery image of its own camera, whatever the identity."""
    q = np.array([s.camera for s in query])
    g = np.array([s.camera for s in gallery])
    return q[:, None] == g[None, :]


class FirstKSampler(PKSampler):
    """A plugin's sampler: the first K samples of the P smallest labels, every step (no randomness)."""

    def _step(self, rng):
        step = {}
        for modality in self.modalities:
            labels = self.label_pools[modality][:self.num_labels_per_step]
            step[modality] = np.concatenate([self.groups[modality][int(k)][:self.instances] for k in labels])
        return step


def test_builtin_rules_and_samplers_are_registered():
    assert {"none", "same-id-same-camera", "sysu-location", "aligned-twin"} <= set(EXCLUSIONS.names())
    assert {"per-modality", "aligned"} <= set(SAMPLERS.names())


def test_a_plugin_exclusion_rule_is_used_by_protocols_and_evaluation(register_plugin):
    query = [Sample("/q.png", 1, 1, "infrared")]
    gallery = [Sample("/g0.png", 1, 3, "visible"), Sample("/g1.png", 2, 1, "visible"),
               Sample("/g2.png", 2, 3, "visible")]
    with pytest.raises(ValueError, match="unknown exclusion rule 'same-camera'"):
        Protocol.single("p", query, gallery, exclusion="same-camera")
    register_plugin(EXCLUSIONS, "same-camera", same_camera)
    protocol = Protocol.single("p", query, gallery, exclusion="same-camera")
    assert ignore_mask("same-camera", query, gallery).tolist() == [[False, True, False]]
    # the wrong identity in the query's own camera ranks first; the plugin's rule skips it
    feats = {"/q.png": [1.0, 0.0], "/g0.png": [0.9, 0.1], "/g1.png": [1.0, 0.0], "/g2.png": [0.0, 1.0]}

    def features(samples):
        return torch.nn.functional.normalize(torch.tensor([feats[s.path] for s in samples]), dim=1)

    assert evaluate(features, Protocol.single("p", query, gallery, exclusion="none"))["rank1"] == 0.0
    assert evaluate(features, protocol)["rank1"] == 1.0


def test_a_rule_of_the_wrong_shape_is_refused(register_plugin):
    register_plugin(EXCLUSIONS, "broken", lambda query, gallery: np.zeros((1, 1), bool))
    with pytest.raises(ValueError, match="returned shape"):
        ignore_mask("broken", [Sample("/q.png", 1, 1, "a")], [Sample("/g0.png", 1, 2, "b")] * 2)


def test_a_plugin_sampler_is_used_by_the_loader(register_plugin, tiny_root):
    from reidkit.data.datasets.generic import GenericDataset
    from reidkit.data.transforms import test_transform

    with pytest.raises(ValueError, match="registered sampler"):
        EpochPlan(labels=np.zeros(3), sampler="first-k")
    register_plugin(SAMPLERS, "first-k", FirstKSampler)
    dataset = GenericDataset.from_root(tiny_root)
    labels = np.array([s.person_id for s in dataset.train])
    plan = EpochPlan(labels=labels, sampler="first-k")
    views = {m: [test_transform((32, 16))] for m in dataset.modalities}
    loader = build_train_loader(dataset.train, plan, modalities=dataset.modalities, views=views,
                                mask_transform=None, batch_size=4, instances=2, iterations=2, workers=0, seed=0)
    assert isinstance(loader.batch_sampler.sampler, FirstKSampler)
    steps = [batch for batch in loader]
    assert len(steps) == 2
    for batch in steps:
        for modality, b in batch.items():
            assert b.labels.tolist() == [0, 0, 1, 1]  # the two smallest identities, 2 images each
            assert torch.equal(b.indices, steps[0][modality].indices)  # the same every step
