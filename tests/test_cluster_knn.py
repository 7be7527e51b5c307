"""Exact kNN: the mixed-precision certified search and the float32 paths against float64 brute force."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from reidkit.cluster import knn
from reidkit.cluster.knn import _no_tf32, as_features, brute_force_knn, chunked_knn
from reidkit.cluster.mixed import _Limits, mixed_knn
from reidkit.cluster.synthetic import structured_features


@pytest.fixture(scope="module")
def feats() -> np.ndarray:
    return structured_features(700, 128, identities=30, seed=1).features


def truth(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """float64 similarities and the index of the k-th/(k+1)-th gap per row."""
    sims = x.astype(np.float64) @ x.astype(np.float64).T
    order = np.argsort(-sims, axis=1, kind="stable")
    return sims, order


def assert_exact(x: np.ndarray, indices: np.ndarray, values: np.ndarray, k: int, tol: float = 2e-6) -> None:
    """Every row's set is the float64 top-k, except rows whose k-th and (k+1)-th true similarities
    are within float32 rounding of each other (then either order is a correct float32 answer)."""
    sims, order = truth(x, k)
    sorted_sims = np.take_along_axis(sims, order, 1)
    ambiguous = (sorted_sims[:, k - 1] - sorted_sims[:, min(k, x.shape[0] - 1)]) < tol if k < x.shape[0] else \
        np.zeros(x.shape[0], dtype=bool)
    same = (np.sort(indices, 1) == np.sort(order[:, :k], 1)).all(1)
    assert (same | ambiguous).all(), np.flatnonzero(~(same | ambiguous))[:5]
    np.testing.assert_allclose(values, np.take_along_axis(sims, indices, 1), atol=tol)
    assert (np.diff(values, axis=1) <= 0).all()  # sorted by decreasing similarity


@pytest.mark.parametrize("block", [2048, 96])  # one tile / many tiles with a ragged last block
def test_mixed_precision_search_is_exact(feats, block):
    x = torch.from_numpy(feats)
    indices, values = mixed_knn(x, 30, margin=32, block=block)
    assert_exact(feats, indices, values, 30)
    assert (indices[:, 0] == np.arange(len(feats))).mean() > 0.99  # the row itself comes first


def test_certificate_failures_fall_back_to_float32(feats, caplog):
    # no margin: the k-th exact value cannot beat the bound of the k-th nominated one, so every row
    # is re-searched in float32 - and the answer must still be exact
    x = torch.from_numpy(feats)
    with caplog.at_level("DEBUG", logger="reidkit.cluster.mixed"):
        indices, values = mixed_knn(x, 20, margin=0, block=128)
    assert "rows re-searched in float32" in caplog.text
    assert " 0 rows re-searched" not in caplog.text
    assert_exact(feats, indices, values, 20)


def test_bfloat16_bound_holds_for_every_pair(feats):
    # the bound that the certificate relies on, checked against float64 on all pairs
    x = torch.from_numpy(feats)
    a = x.to(torch.bfloat16)
    tile = (a @ a.T).float().numpy()
    err = np.stack([x.norm(dim=1).numpy(), (a.float() - x).norm(dim=1).numpy()], 1)
    upper = _Limits(err, x.shape[1]).upper(tile)
    exact = feats.astype(np.float64) @ feats.astype(np.float64).T
    assert (upper >= exact).all()
    assert np.median(upper - exact) < 0.02  # and it is not vacuous


@pytest.mark.parametrize("precision", ["mixed", "fp32"])
def test_public_knn_both_precisions(feats, precision):
    nb = knn(feats, 12, precision=precision, block=128)
    assert nb.indices.dtype == np.int64 and nb.similarities.dtype == np.float32
    assert nb.indices.shape == (len(feats), 12)
    assert_exact(feats, nb.indices, nb.similarities, 12)


def test_tiny_sets_and_k_equal_to_n():
    x = structured_features(9, 16, identities=2, seed=0).features
    for k in (1, 8, 9):
        nb = knn(x, k)
        assert_exact(x, nb.indices, nb.similarities, k)


def test_torch_and_faiss_backends_agree(feats):
    pytest.importorskip("faiss")
    ours = knn(feats, 10, backend="torch")
    theirs = knn(feats, 10, backend="faiss")
    same_sets = (np.sort(ours.indices, 1) == np.sort(theirs.indices, 1)).all(1)
    assert same_sets.mean() > 0.99
    np.testing.assert_allclose(ours.similarities, theirs.similarities, atol=1e-5)


def test_chunked_float32_matches_brute_force(feats):
    a = chunked_knn(feats, 7, chunk=100)
    b = brute_force_knn(feats, 7)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_allclose(a.similarities, b.similarities, atol=1e-6)


def test_torch_tensor_input_and_device_argument(feats):
    t = torch.from_numpy(feats)
    a = knn(t, 5, device="cpu")
    b = knn(feats, 5)
    np.testing.assert_array_equal(a.indices, b.indices)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_path_matches_cpu(feats):  # pragma: no cover - no GPU in CI
    a = knn(torch.from_numpy(feats).cuda(), 10)
    assert_exact(feats, a.indices, a.similarities, 10)


def test_no_tf32_context_restores_setting():
    matmul = torch.backends.cuda.matmul
    before = matmul.allow_tf32
    matmul.allow_tf32 = True
    try:
        with _no_tf32():
            assert matmul.allow_tf32 is False
        assert matmul.allow_tf32 is True
    finally:
        matmul.allow_tf32 = before


def test_input_validation():
    x = structured_features(20, 8, identities=3, seed=0).features
    with pytest.raises(ValueError, match="L2-normalised"):
        knn(x * 2, 3)
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        knn(x[0], 3)
    with pytest.raises(ValueError, match="k must be"):
        knn(x, 21)
    with pytest.raises(ValueError, match="backend"):
        knn(x, 3, backend="annoy")
    with pytest.raises(ValueError, match="needs faiss"):
        knn(x, 3, backend="torch", search="ivf")
    with pytest.raises(TypeError):
        as_features([[1.0, 0.0]])
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        knn(bad, 3)
