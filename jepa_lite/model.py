"""The JEPA model: context encoder + predictor, and an EMA target encoder.

    context view (spans → [MASK]) ──▶ context_encoder ──▶ predictor ──▶ ẑ  ┐
                                                                          ├─ 1 − cos at masked positions
    target view (the text as is)  ──▶ target_encoder (EMA, no grad) ──▶ z  ┘

The context encoder must *predict the target encoder's embedding* of each hidden token from the
visible ones. It never predicts the token itself — that is the difference from masked language
modelling.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn

from .data import Batch
from .ema import ema_update_modules
from .losses import get_loss


class PredictorMLP(nn.Module):
    """ẑ = W₂ · GELU(W₁ · h),  D → hidden_mult·D → D, applied to each token's hidden state h.

    A learned adapter from the context encoder's space to the target's: without it the context
    encoder alone would have to match the target, which makes agreeing on a constant far easier.
    """

    def __init__(self, dim: int, hidden_mult: int = 4, dropout: float = 0.0):
        super().__init__()
        if hidden_mult < 1:
            raise ValueError(f"pred_hidden_mult must be at least 1; got {hidden_mult}")
        self.net = nn.Sequential(
            nn.Linear(dim, hidden_mult * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden_mult * dim, dim)
        )

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)


@dataclass
class JEPAOutput:
    loss: torch.Tensor  # scalar, differentiable w.r.t. context encoder + predictor
    pred: torch.Tensor  # (N, D) predictions at the N masked positions
    target: torch.Tensor  # (N, D) target embeddings there (no grad)
    n_masked: int  # N


class JEPA(nn.Module):
    """Context encoder, predictor and EMA target encoder, with the masked-position loss.

    Args:
        context_encoder: any module called as encoder(input_ids=, attention_mask=) that returns
            `.last_hidden_state` (B, L, D); a Hugging Face encoder or `encoders.TinyEncoder`.
        dim: D, the encoder's hidden size.
        pred_hidden_mult: width of the predictor's hidden layer, in multiples of D.
        loss: "cosine" (JEPA's), or "l2" / "mse" / "smooth_l1" for comparison.
    """

    def __init__(self, context_encoder: nn.Module, dim: int, pred_hidden_mult: int = 4, loss: str = "cosine"):
        super().__init__()
        self.context_encoder = context_encoder
        self.predictor = PredictorMLP(dim, pred_hidden_mult)
        # The target starts as an exact copy and from then on changes only through `update_target`.
        self.target_encoder = copy.deepcopy(context_encoder)
        self.target_encoder.requires_grad_(False)
        self.loss_name = loss
        self.loss_fn: Callable = get_loss(loss)

    def train(self, mode: bool = True) -> "JEPA":
        """Switch context encoder and predictor; the target encoder always stays in eval mode
        (no dropout), so its embeddings are a stable regression target."""
        super().train(mode)
        self.target_encoder.eval()
        return self

    def encode_context(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, L) ids → (B, L, D) hidden states of the context encoder."""
        return self.context_encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    @torch.no_grad()
    def encode_target(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, L) ids → (B, L, D) hidden states of the target encoder, never tracked by autograd."""
        return self.target_encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    def at_masked(self, z: torch.Tensor, batch: Batch) -> torch.Tensor:
        """(B, L, D) → (N, D): the hidden states at the N masked positions, z[pred_mask], in row-major order."""
        return z[batch.pred_mask]

    def forward(self, batch: Batch) -> JEPAOutput:
        z_ctx = self.encode_context(batch.masked_input_ids, batch.attention_mask)  # (B, L, D)
        z_tgt = self.encode_target(batch.input_ids, batch.attention_mask)  # (B, L, D)
        # Only masked positions count: (B, L, D) -> (N, D), N = number of masked tokens.
        # The predictor acts on each token separately, so it only needs to run on those rows.
        pred = self.predictor(self.at_masked(z_ctx, batch))
        target = self.at_masked(z_tgt, batch)
        n_masked = pred.shape[0]
        if n_masked == 0:
            # Safety case: nothing masked. A zero that still depends on the parameters keeps
            # backward() and the optimizer step valid instead of producing NaN from an empty mean.
            loss = z_ctx.sum() * 0.0
        else:
            # the loss in fp32, also under autocast
            loss = self.loss_fn(pred.float(), target.float())
        return JEPAOutput(loss=loss, pred=pred, target=target, n_masked=n_masked)

    @torch.no_grad()
    def update_target(self, m: float) -> None:
        """θ_tgt ← m·θ_tgt + (1 − m)·θ_ctx (see `ema.py`). Call after each optimizer step."""
        ema_update_modules(self.target_encoder, self.context_encoder, m)

    def trainable_parameters(self):
        """Parameters the optimizer updates: the context encoder's and the predictor's."""
        return [p for p in self.parameters() if p.requires_grad]
