"""Distances between predicted and target embeddings, computed at the masked positions only.

JEPA's loss is the cosine distance: both vectors are L2-normalised, so only their *direction* counts.

    cos(p, t) = p·t / (‖p‖ ‖t‖)          loss = mean over masked tokens of (1 − cos(p, t))

It lies in [0, 2]: 0 when the prediction points where the target points, 1 when orthogonal. Because
the scale is divided out, the encoder cannot lower the loss by shrinking its outputs, which an L2 or
MSE loss rewards (the LLM-JEPA paper, arXiv 2509.14252, reports that L2 collapses where cosine does
not). The other losses are here for the comparison notebook.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def token_losses(name: str, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The loss `name` of each token before the mean over tokens: (..., D) pairs → (...).

    cosine:    1 − cos(p, t) = 1 − (p / ‖p‖)·(t / ‖t‖)
    l2:        ‖p − t‖₂
    mse:       mean over the D entries of (p − t)²      (mean over tokens of this = mean over all entries)
    smooth_l1: mean over the D entries of Huber(p − t), β = 1
    The mean of these over the N masked tokens is `get_loss(name)(pred, target)` (tests/test_speed_paths.py).
    """
    if name == "cosine":
        return 1.0 - (F.normalize(pred, dim=-1) * F.normalize(target, dim=-1)).sum(dim=-1)
    if name == "l2":
        return (pred - target).norm(dim=-1)
    if name == "mse":
        return ((pred - target) ** 2).mean(dim=-1)
    if name == "smooth_l1":
        return F.smooth_l1_loss(pred, target, reduction="none").mean(dim=-1)
    raise ValueError(f"unknown loss '{name}'; choose one of cosine, l2, mse, smooth_l1")


def cosine_distance(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """mean_i (1 − cos(pred_i, target_i)) over rows of (N, D) tensors: JEPA's loss."""
    return token_losses("cosine", pred, target).mean()


def l2_distance(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """mean_i ‖pred_i − target_i‖₂ (no normalisation: the scale of the embeddings matters)."""
    return token_losses("l2", pred, target).mean()


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """mean over all entries of (pred − target)² (torch's own reduction)."""
    return F.mse_loss(pred, target)


def smooth_l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Huber loss with β = 1, as in data2vec (quadratic near 0, linear far away; torch's own reduction)."""
    return F.smooth_l1_loss(pred, target)


LOSSES = {"cosine": cosine_distance, "l2": l2_distance, "mse": mse, "smooth_l1": smooth_l1}


def get_loss(name: str):
    """The loss function called `name` (one of LOSSES)."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss '{name}'; choose one of {', '.join(LOSSES)}")
    return LOSSES[name]
