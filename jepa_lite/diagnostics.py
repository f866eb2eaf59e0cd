"""Is the encoder collapsing? Numbers that tell, computed on a set of token embeddings Z (N, D).

Collapse is JEPA's failure mode: the easiest way for a prediction to match a target is for every
embedding to be the same vector. The loss then looks great and the representations are worthless.
Three symptoms, each measured here:

* effective rank (RankMe, Garrido et al., 2023): with singular values σ₁…σ_D of Z and p_k = σ_k / Σσ,
      rank = exp(−Σ p_k log p_k),
  between 1 (all embeddings on one line) and D (spread evenly over all directions).
* per-dimension std: the mean over dimensions of the standard deviation across tokens, measured on
  L2-normalised embeddings and multiplied by √D, so that it does not depend on scale or width: about 1
  when the unit vectors spread in all directions, 0 when they all coincide.
* mean pairwise cosine: the average cos(z_i, z_j) over pairs i ≠ j; near 1 when all tokens point the
  same way. (Pretrained encoders already sit well above 0 here: their embedding spaces are
  anisotropic. Watch how it moves, not only where it is.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Optional

import torch
import torch.nn.functional as F


@torch.no_grad()
def effective_rank(z: torch.Tensor, eps: float = 1e-12) -> float:
    """RankMe: exp(entropy of the normalised singular values of z (N, D))."""
    s = torch.linalg.svdvals(z.float())
    p = s / (s.sum() + eps) + eps
    return float(torch.exp(-(p * p.log()).sum()))


@torch.no_grad()
def normalized_std(z: torch.Tensor) -> float:
    """√D · mean_d std_i(ẑ_id), ẑ_i = z_i / ‖z_i‖: ≈ 1 for well-spread embeddings, 0 for collapsed."""
    zn = F.normalize(z.float(), dim=-1)
    return float(zn.std(dim=0).mean() * math.sqrt(z.shape[-1]))


@torch.no_grad()
def mean_pairwise_cosine(z: torch.Tensor) -> float:
    """Mean of cos(z_i, z_j) over all pairs i ≠ j."""
    n = z.shape[0]
    if n < 2:
        return float("nan")
    zn = F.normalize(z.float(), dim=-1)
    total = zn.sum(dim=0)
    # Σ_{i≠j} z_i·z_j = ‖Σ z_i‖² − Σ ‖z_i‖²  (and each ‖z_i‖² = 1)
    return float((total @ total - n) / (n * (n - 1)))


def collapse_metrics(z: torch.Tensor) -> Dict[str, float]:
    """The three collapse numbers of z (N, D): {"rank", "std", "mean_cos"}."""
    return {"rank": effective_rank(z), "std": normalized_std(z), "mean_cos": mean_pairwise_cosine(z)}


@dataclass
class CollapseThresholds:
    """Below `min_std` or `min_rank`, or above `max_mean_cos`, the trainer warns of collapse.

    Set from runs of the smoke preset on the built-in corpus: with m = 0 the tiny encoder ends at
    std ≈ 0.07 and mean cosine ≈ 0.995–1.0 and stays there; with m = 0.99 or 0.996 it dips to
    std ≈ 0.15, mean cosine ≈ 0.98 during the first ~50 steps and recovers to std ≈ 0.6. The
    thresholds sit between the healthy dip and the collapsed state.
    """

    min_std: float = 0.1
    min_rank: float = 2.0
    max_mean_cos: float = 0.99


def collapse_warning(metrics: Dict[str, float], thresholds: Optional[CollapseThresholds] = None) -> Optional[str]:
    """A one-line warning when the metrics signal collapse, else None."""
    t = thresholds or CollapseThresholds()
    reasons = []
    if metrics["std"] < t.min_std:
        reasons.append(f"std {metrics['std']:.3f} < {t.min_std}")
    if metrics["rank"] < t.min_rank:
        reasons.append(f"effective rank {metrics['rank']:.2f} < {t.min_rank}")
    if metrics["mean_cos"] > t.max_mean_cos:
        reasons.append(f"mean pairwise cosine {metrics['mean_cos']:.3f} > {t.max_mean_cos}")
    if not reasons:
        return None
    return (
        "representations are collapsing (" + "; ".join(reasons) + "): all tokens are getting the same "
        "embedding. A slower target (EMA momentum closer to 1) or a lower learning rate usually helps."
    )


# ---------------------------------------------------------------------------------------------
# Two views of the same examples (the paper's analyses, notebook 06)
# ---------------------------------------------------------------------------------------------
# X = Enc(Text) and Y = Enc(Code), each (N, D), row i from the same example.
@torch.no_grad()
def svd_spectrum(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Singular values of X − Y, largest first: (min(N, D),).

    Small values everywhere mean Text and Code land in nearly the same place; the LLM-JEPA paper
    (arXiv 2509.14252, Fig. 3 left) finds them orders of magnitude smaller with the JEPA term.
    """
    return torch.linalg.svdvals((x - y).double()).float()


@torch.no_grad()
def linear_map_residual(x: torch.Tensor, y: torch.Tensor) -> Dict[str, float]:
    """How well a linear map sends one view to the other: W = argmin ‖XW − Y‖_F (least squares).

    Returns {"residual": ‖XW − Y‖_F, "relative": ‖XW − Y‖_F / ‖Y − mean(Y)‖_F}. The paper
    (Table 14) reports the residual falling from thousands to single digits with the JEPA term;
    "relative" does not depend on the scale of the embeddings, so two models can be compared.
    Fitted and scored on the same rows: with N ≤ D rows it is 0 on any data, and a collapsed model
    scores near 0 too. Prefer `heldout_linear_map` / `pair_geometry`, which cannot mislead that way.
    """
    x, y = x.double(), y.double()
    w = torch.linalg.lstsq(x, y, driver="gelsd").solution  # (D, D)
    residual = torch.linalg.norm(x @ w - y)
    spread = torch.linalg.norm(y - y.mean(dim=0))
    return {"residual": float(residual), "relative": float(residual / spread)}


@torch.no_grad()
def pca_2d(*views: torch.Tensor) -> list:
    """Project each (N_i, D) view onto the top-2 principal axes of all of them together: [(N_i, 2), ...]."""
    z = torch.cat(views).double()
    mean = z.mean(dim=0)
    _, _, vh = torch.linalg.svd(z - mean, full_matrices=False)
    axes = vh[:2].T  # (D, 2)
    return [((v.double() - mean) @ axes).float() for v in views]


@torch.no_grad()
def heldout_linear_map(x: torch.Tensor, y: torch.Tensor, seed: int = 0) -> Dict[str, Optional[float]]:
    """The best affine map Enc(Text) → Enc(Code), fitted on one half of the pairs and scored on the other.

    W, b = argmin ‖X_fit W + b − Y_fit‖_F (least squares), then on the held-out half
        residual = ‖X_held W + b − Y_held‖_F,   relative = residual / ‖Y_held − mean(Y_fit)‖_F
    (relative 1 = no better than predicting the average Code embedding; 0 = a perfect map).
    "relative_unrelated" is what unrelated views would score: a least-squares fit of D unknowns to
    n_fit noisy points also fits the noise, and for Gaussian X its held-out error is inflated by
    (n_fit − 1) / (n_fit − D − 1), so relative ≈ √((n_fit − 1) / (n_fit − D − 1)) (1.04 for 200 pairs
    in 16 dimensions, 2.7 for 150 pairs in 128). Compare against it, not against 1. With
    n_fit ≤ D + 1 pairs (D weights and a bias per output) the fit is exact by construction on any
    data, so both are None and "reason" says why. relative is also None when the held-out Code
    embeddings have no spread at all (every Code embedded alike: nothing to predict).
    """
    n, d = x.shape
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    fit, held = order[: n // 2], order[n // 2 :]
    out: Dict[str, Optional[float]] = {
        "residual": None,
        "relative": None,
        "relative_unrelated": None,
        "n_fit": len(fit),
        "n_heldout": len(held),
        "reason": None,
    }
    if len(fit) <= d + 1 or len(held) == 0:
        out["reason"] = (
            f"{len(fit)} fitting pairs for {d + 1} unknowns per output: any data fits exactly; "
            f"needs more than {2 * (d + 1)} pairs"
        )
        return out
    x, y = x.double(), y.double()
    mx, my = x[fit].mean(dim=0), y[fit].mean(dim=0)
    w = torch.linalg.lstsq(x[fit] - mx, y[fit] - my, driver="gelsd").solution  # (D, D)
    residual = torch.linalg.norm((x[held] - mx) @ w + my - y[held])
    spread = torch.linalg.norm(y[held] - my)
    out["residual"] = float(residual)
    out["relative_unrelated"] = math.sqrt((len(fit) - 1) / (len(fit) - d - 1))
    if float(spread) > 1e-12 * max(1.0, float(y.abs().max())):
        out["relative"] = float(residual / spread)
    else:
        out["reason"] = "the held-out Code embeddings are all the same vector (collapse): nothing to predict"
    return out


@torch.no_grad()
def pair_geometry(x: torch.Tensor, y: torch.Tensor, seed: int = 0) -> Dict[str, object]:
    """How Enc(Text) (x, (N, D)) and Enc(Code) (y, (N, D)) of the same N pairs sit, in numbers that
    tell alignment from collapse:

    * retrieval_at_1: share of pairs i whose own Code is the nearest, by cosine, of all N Codes to
      Text i (ties count against it); chance = 1/N. Collapsed embeddings score chance.
    * cos_true = mean_i cos(x_i, y_i); cos_shuffled = mean_i cos(x_i, y_π(i)) for a random
      permutation π without fixed points; cos_gap = cos_true − cos_shuffled. Aligned views: a large
      gap. Collapse (everything on one vector): both cosines near 1, gap near 0.
    * residual_heldout, relative_residual_heldout: `heldout_linear_map` (None when it cannot be
      measured, with the reason in linear_map_note); relative_residual_unrelated: what unrelated
      views would score with this many pairs.
    * spectrum: singular values of X − Y, largest first (paper Fig. 3, left).

    The paper's Table 14 residual ‖XW − Y‖ is absolute and fitted on the same pairs it scores: a
    collapsed model (all X alike, all Y alike) scores ~0 there, as if perfect.
    """
    n = x.shape[0]
    xn, yn = F.normalize(x.double(), dim=-1), F.normalize(y.double(), dim=-1)
    sim = xn @ yn.T  # (N, N): cos(Text i, Code j)
    own = sim.diagonal()
    hits = (sim < own[:, None]).sum(dim=1) == n - 1  # own Code strictly above every other
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=g)
    perm = torch.empty_like(order)
    perm[order] = torch.roll(order, -1)  # π(order_i) = order_{i+1}: a random permutation with no fixed point
    cos_true = float(own.mean())
    cos_shuffled = float((xn * yn[perm]).sum(dim=-1).mean()) if n > 1 else float("nan")
    lin = heldout_linear_map(x, y, seed)
    return {
        "n": n,
        "retrieval_at_1": float(hits.double().mean()),
        "chance": 1.0 / n,
        "cos_true": cos_true,
        "cos_shuffled": cos_shuffled,
        "cos_gap": cos_true - cos_shuffled,
        "residual_heldout": lin["residual"],
        "relative_residual_heldout": lin["relative"],
        "relative_residual_unrelated": lin["relative_unrelated"],
        "linear_map_note": lin["reason"],
        "spectrum": svd_spectrum(x, y),
    }
