"""jepa_lite.diagnostics.pair_geometry on known geometry: alignment, unrelated views, collapse, too few pairs."""

import torch
import torch.nn.functional as F

from jepa_lite.diagnostics import heldout_linear_map, linear_map_residual, pair_geometry


def _views(n=400, d=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randn(d, d, generator=g), g


def test_aligned_views_retrieve_their_pair_and_a_heldout_map_explains_them():
    x, w, g = _views()
    y = x + 0.3 * torch.randn(x.shape, generator=g)  # each Code near its Text
    r = pair_geometry(x, y)
    assert r["retrieval_at_1"] > 0.9 and r["chance"] == 1 / 400
    assert r["relative_residual_heldout"] < 0.35
    assert r["cos_gap"] > 0.8 and abs(r["cos_shuffled"]) < 0.1
    assert r["spectrum"].shape == (16,)
    linear = pair_geometry(x, x @ w + 0.05 * torch.randn(x.shape, generator=g))  # related by a map, not by direction
    assert linear["relative_residual_heldout"] < 0.05  # the map is found on half the pairs and holds on the rest
    assert linear["retrieval_at_1"] < r["retrieval_at_1"]  # cosine retrieval asks for more: the same direction


def test_unrelated_views_score_chance_and_nothing_explained():
    x, _, g = _views()
    y = torch.randn(x.shape, generator=g)
    r = pair_geometry(x, y)
    assert r["retrieval_at_1"] < 5 / 400
    assert abs(r["cos_gap"]) < 0.05
    assert r["relative_residual_heldout"] > 0.95  # no better than predicting the mean Code embedding
    assert abs(r["relative_residual_heldout"] / r["relative_residual_unrelated"] - 1) < 0.1  # √(199 / 183) = 1.04
    few = heldout_linear_map(
        torch.randn(300, 128, generator=g), torch.randn(300, 128, generator=g)
    )  # 150 pairs, D = 128
    assert (
        few["relative"] > 2 and abs(few["relative"] / few["relative_unrelated"] - 1) < 0.25
    )  # overfitting, as predicted (2.7)


def test_collapse_that_the_old_residual_scored_as_perfect_is_told_apart():
    x, _, g = _views()
    c, c2 = torch.randn(16, generator=g), torch.randn(16, generator=g)
    x = c + 1e-4 * torch.randn(x.shape, generator=g)  # every Text on (almost) one vector
    y = c2 + 1e-4 * torch.randn(x.shape, generator=g)  # every Code on another
    old = linear_map_residual(x, y)
    assert old["residual"] < 0.01  # the paper's absolute residual: "perfect"
    r = pair_geometry(x, y)
    assert r["cos_gap"] < 0.01  # true pairs are no closer than shuffled ones
    assert r["retrieval_at_1"] < 5 / 400
    assert r["relative_residual_heldout"] > 0.95  # the tiny spread that is left is not predictable
    same = pair_geometry(c.expand(400, 16).clone(), c.expand(400, 16).clone())  # exact collapse: X = Y = one vector
    assert same["cos_true"] > 0.999 and abs(same["cos_gap"]) < 1e-9 and same["retrieval_at_1"] == 0.0
    assert same["relative_residual_heldout"] is None and "collapse" in same["linear_map_note"]


def test_with_no_more_fitting_pairs_than_unknowns_the_residual_is_not_measured():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(40, 128, generator=g), torch.randn(40, 128, generator=g)  # the case: 40 pairs, D = 128
    assert linear_map_residual(x, y)["residual"] < 1e-6  # "exact" on pure noise
    r = heldout_linear_map(x, y)
    assert r["residual"] is None and r["relative"] is None and "20 fitting pairs for 129 unknowns" in r["reason"]
    assert pair_geometry(x, y)["residual_heldout"] is None
    enough = heldout_linear_map(torch.randn(300, 8, generator=g), torch.randn(300, 8, generator=g))
    assert enough["n_fit"] == 150 and enough["relative"] is not None


def test_retrieval_and_shuffled_pairs_match_a_plain_loop():
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(30, 5, generator=g), torch.randn(30, 5, generator=g)
    y[:10] = x[:10] + 0.01 * torch.randn(10, 5, generator=g)  # a third of the pairs aligned
    r = pair_geometry(x, y, seed=7)
    hits = 0
    for i in range(30):
        cos = F.cosine_similarity(x[i : i + 1], y, dim=-1)
        hits += int(cos.argmax()) == i
    assert abs(r["retrieval_at_1"] - hits / 30) < 1e-12 and r["retrieval_at_1"] >= 10 / 30
    assert abs(r["cos_true"] - float(F.cosine_similarity(x, y, dim=-1).mean())) < 1e-6
    assert r["cos_gap"] > 0.2
