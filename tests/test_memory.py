"""Momentum memory banks: updates in backward, losses and gradients against hand computations."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from reidkit.models.memory import (
    ClusterMemory,
    ProxyMemory,
    hardest_negatives,
    memory_similarity,
    momentum_update_,
    selected_infonce,
)


def sequential_update(memory: torch.Tensor, feats: torch.Tensor, targets: torch.Tensor, momentum: float):
    """The reference loop: one sample at a time, in batch order."""
    memory = memory.clone()
    for f, t in zip(feats, targets.tolist()):
        row = momentum * memory[t] + (1 - momentum) * f
        memory[t] = row / row.norm()
    return memory


def unit(*shape, seed=0):
    return F.normalize(torch.randn(*shape, generator=torch.Generator().manual_seed(seed)), dim=-1)


def test_update_by_hand_two_dimensions():
    memory = torch.tensor([[1.0, 0.0]])
    momentum_update_(memory, torch.tensor([[0.0, 1.0]]), torch.tensor([0]), momentum=0.2)
    # 0.2 * (1, 0) + 0.8 * (0, 1) = (0.2, 0.8), normalised; momentum is the weight of the OLD value
    torch.testing.assert_close(memory, torch.tensor([[0.2, 0.8]]) / (0.2 ** 2 + 0.8 ** 2) ** 0.5)


def test_update_follows_batch_order_for_repeated_targets():
    memory, feats = unit(4, 8, seed=1), unit(9, 8, seed=2)
    targets = torch.tensor([2, 0, 2, 2, 1, 0, 3, 2, 0])
    expected = sequential_update(memory, feats, targets, 0.3)
    momentum_update_(memory, feats, targets, 0.3)
    torch.testing.assert_close(memory, expected)


def test_cluster_memory_loss_gradient_and_update_by_hand():
    bank, feats = unit(5, 6, seed=3), unit(4, 6, seed=4)
    targets = torch.tensor([1, 3, 1, 0])
    mem = ClusterMemory(6, 0, temperature=0.05, momentum=0.2)
    mem.reset(bank * 3.0)  # reset normalises
    torch.testing.assert_close(mem.features, bank)

    f = feats.clone().requires_grad_(True)
    loss = mem(f, targets)
    f_ref = feats.clone().requires_grad_(True)
    loss_ref = F.cross_entropy(f_ref @ bank.T / 0.05, targets)
    torch.testing.assert_close(loss, loss_ref)
    loss.backward()
    loss_ref.backward()
    torch.testing.assert_close(f.grad, f_ref.grad)  # gradient from the entries BEFORE the update
    torch.testing.assert_close(mem.features, sequential_update(bank, feats, targets, 0.2))


def test_weights_smoothing_and_reductions():
    bank, feats = unit(5, 6, seed=5), unit(4, 6, seed=6)
    targets = torch.tensor([0, 1, 2, 3])
    weights = torch.tensor([1.0, 0.0, 2.0, 1.0])
    mem = ClusterMemory(6, 5, temperature=0.1)
    mem.reset(bank)
    per = F.cross_entropy(feats @ bank.T / 0.1, targets, reduction="none", label_smoothing=0.1)
    with torch.no_grad():
        torch.testing.assert_close(mem(feats, targets, label_smoothing=0.1, reduction="none"), per)
        torch.testing.assert_close(mem(feats, targets, weights, label_smoothing=0.1), (per * weights).mean())
        torch.testing.assert_close(mem(feats, targets, reduction="sum", label_smoothing=0.1), per.sum())


def test_selected_infonce_by_hand():
    logits = torch.tensor([[2.0, 1.0, 0.0, 5.0]])
    positives = torch.tensor([[True, True, False, False]])
    negatives = torch.tensor([[False, False, True, False]])  # entry 3 is neither: ignored
    z = torch.log(torch.exp(torch.tensor(2.0)) + torch.exp(torch.tensor(1.0)) + 1.0)
    expected = -((2.0 - z) + (1.0 - z)) / 2
    torch.testing.assert_close(selected_infonce(logits, positives, negatives), expected.reshape(1))


def test_hardest_negatives_by_hand():
    scores = torch.tensor([[0.9, 0.1, 0.5, 0.7, 0.3]])
    exclude = torch.tensor([[True, False, False, False, False]])
    assert hardest_negatives(scores, exclude, 2).tolist() == [[False, False, True, True, False]]
    assert hardest_negatives(scores, exclude, 10).tolist() == [[False, True, True, True, True]]


def test_proxy_memory_offline_association_by_hand():
    # proxies 0,1 belong to cluster 0 and 2,3,4 to clusters 1,1,2
    proxies = unit(5, 6, seed=7)
    clusters = torch.tensor([0, 0, 1, 1, 2])
    mem = ProxyMemory(6, temperature=0.1, momentum=0.2, hard_negatives=2)
    mem.reset(proxies, clusters)
    feats = unit(3, 6, seed=8)
    own = torch.tensor([1, 2, 4])  # each sample's own proxy
    with torch.no_grad():
        loss = mem(feats, own, reduction="none")
    sims = feats @ proxies.T
    for i in range(3):
        pos = clusters == clusters[own[i]]
        neg_scores = sims[i].masked_fill(pos, float("-inf"))
        neg = torch.zeros(5, dtype=torch.bool)
        neg[neg_scores.topk(2).indices] = True
        neg &= ~pos
        logp = torch.log_softmax((sims[i] / 0.1).masked_fill(~(pos | neg), float("-inf")), 0)
        torch.testing.assert_close(loss[i], -logp[pos].mean())


def test_proxy_memory_custom_selection_and_update_target():
    proxies = unit(4, 6, seed=9)
    mem = ProxyMemory(6)
    mem.reset(proxies, torch.tensor([0, 1, 2, 3]))
    f = unit(1, 6, seed=10).requires_grad_(True)
    pos = torch.tensor([[False, True, False, True]])
    neg = torch.tensor([[True, False, False, False]])
    loss = mem(f, torch.tensor([3]), positives=pos, negatives=neg)
    torch.testing.assert_close(loss, selected_infonce(f @ proxies.T / 0.10, pos, neg).mean())
    loss.backward()
    torch.testing.assert_close(mem.features[:3], proxies[:3])  # only the own proxy moves
    torch.testing.assert_close(mem.features[3], sequential_update(proxies, f.detach(), torch.tensor([3]), 0.2)[3])


def test_training_step_backward_has_no_inplace_error():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(10, 16), torch.nn.ReLU(), torch.nn.Linear(16, 8))
    mem = ClusterMemory(8, 0)
    mem.reset(torch.randn(6, 8))
    proxy = ProxyMemory(8, hard_negatives=3)
    proxy.reset(torch.randn(12, 8), torch.arange(6).repeat_interleave(2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):
        x, y = torch.randn(16, 10), torch.randint(0, 6, (16,))
        f = F.normalize(model(x), dim=1)
        # a plain autograd op that reads the memory, recorded BEFORE the memory's own op: autograd runs
        # its backward after the memory update, so the update must not invalidate its saved tensor
        plain = 0.1 * (f @ mem.features.T).pow(2).mean() + 0.1 * (f @ proxy.features.T).pow(2).mean()
        loss = plain + mem(f, y) + proxy(f, 2 * y) + proxy(f, 2 * y + 1)  # the proxy bank is used twice
        before = mem.features.clone()
        opt.zero_grad()
        loss.backward()
        opt.step()
        assert not torch.equal(before, mem.features)  # the update happened inside backward
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_buffers_are_not_checkpointed_and_reset_changes_size():
    mem = ClusterMemory(4, 3)
    assert "features" not in mem.state_dict()
    mem.reset(torch.randn(7, 4))
    assert mem.num_entries == 7
    other = ClusterMemory(4, 2)
    other.load_state_dict(mem.state_dict())  # strict load works whatever the sizes
    proxy = ProxyMemory(4)
    assert set(proxy.state_dict()) == set()
    with pytest.raises(ValueError):
        mem.reset(torch.randn(3, 5))
    with pytest.raises(RuntimeError, match="empty"):
        ClusterMemory(4)(torch.randn(2, 4), torch.tensor([0, 0]))


def test_memory_follows_module_device_and_function_is_usable_directly():
    mem = ClusterMemory(3, 2).to("cpu")
    mem.reset(torch.eye(3)[:2].double())  # dtype/device normalised to the buffer's
    assert mem.features.dtype == torch.float32
    bank = torch.eye(3)
    f = torch.tensor([[0.0, 1.0, 0.0]], requires_grad=True)
    memory_similarity(f, torch.tensor([0]), bank, 0.5).sum().backward()
    torch.testing.assert_close(bank[0], F.normalize(torch.tensor([0.5, 0.5, 0.0]), dim=0))
