"""The paper's own objective: next-token loss + λ·JEPA between two natural views (arXiv 2509.14252).

The course so far taught masked-span JEPA: one text, two views made by masking, an EMA target. The
LLM-JEPA paper keeps a decoder LLM and its usual next-token (LM) loss, and adds a JEPA term between
two views that the data already has — a description (Text) and the program it describes (Code):

    L = γ · L_LM(Text ⊕ Code) + λ · (1 − cos(Pred(Enc(Text)), Enc(Code)))          (paper, eq. 2)

* L_LM is the ordinary fine-tuning loss: the model reads `[BOS] Text [SEP]` and must produce
  `Code [EOS]` token by token; only the Code tokens are scored.
* Enc(x) is the hidden state (last layer) at the last token of x, with x run through the model on
  its own: Enc(Text) from `[BOS] Text [SEP]`, Enc(Code) from `[BOS] Code [EOS]`.
* Pred is not a separate network: k special `[PRED]` tokens are appended to Text, and Enc is read at
  the last of them — the LM itself does the predicting, with its own (tied) weights. k = 0 means no
  predictor: Enc(Text) is read at `[SEP]`.
* No EMA target and no stop-gradient: both views get gradients. The LM loss is what keeps this
  from collapsing (set γ = 0 to watch it collapse).
* Loss dropout: on a random fraction of steps the JEPA term, and its two extra views, are skipped,
  to save compute.

The three kinds of rows — LM, Text view, Code view — go through the model as one batch of 3B
separate sequences (no packing, so no attention mask tricks), then split.

    trainer = PairedTrainer(PairedConfig(lbd=1.0, predictors=0, steps=800))
    history = trainer.fit()                # lm_loss, jepa_loss, jepa_monitor per log step
    print(trainer.evaluate())              # exact-match accuracy of greedy decoding on the test split

Command line: `python -m jepa_lite.paired --steps 800 --lbd 1 --predictors 0` (built-in regex pairs),
or `--data FILE.jsonl` for your own pairs in the paper's format.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import random
import sys
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F

from .causal_lm import CausalLMError, TinyLMConfig, count_parameters, load_causal_lm, pair_token_ids
from .losses import get_loss
from .pairs import Pair, PairsError, load_jsonl, regex_pairs
from .train import ConfigError, _Parser, lr_factor, pick_device  # _Parser: one-line argparse errors, exit 2

IGNORE = -100  # label of a position the LM loss does not score


@dataclass
class PairedConfig:
    # data
    data: Optional[str] = None  # JSONL file in the paper's format; None = the built-in regex pairs
    n_train: int = 3000  # built-in pairs for training ...
    n_test: int = 300  # ... and for the test split (regexes never seen in training)
    test_fraction: float = 0.1  # share of a JSONL file held out for testing (the last lines)
    max_length: int = 128  # longest Text, and longest Code, in tokens with their special tokens; longer ones are truncated
    # model
    model: str = "tiny"  # "tiny" (random-init Llama, local tokenizer), or a causal LM's hub name / folder
    tiny_dim: int = 128  # hidden size of the "tiny" model
    tiny_layers: int = 4  # decoder blocks of the "tiny" model
    # the objective
    lbd: float = 1.0  # λ, weight of the JEPA term (0 = plain fine-tuning)
    predictors: int = 0  # k, [PRED] tokens appended to Text (0 = no predictor; see notebook 06 § 5 for why 0 here)
    gamma: float = 1.0  # γ, weight of the LM loss (0 = JEPA alone: watch it collapse)
    distance: str = "cosine"  # "cosine" (the paper's choice) or "l2" (which collapses)
    loss_dropout: float = 0.0  # fraction of steps that skip the JEPA term
    # optimisation
    batch_size: int = 32
    lr: float = 2e-3  # peak learning rate (AdamW)
    weight_decay: float = 0.01
    steps: int = 800
    warmup_steps: int = 50  # linear warm-up, then cosine decay to 0
    grad_clip: float = 1.0
    # bookkeeping
    log_every: int = 50  # log losses every this many steps
    monitor_size: int = 128  # test pairs on which the JEPA loss is monitored (every run, even λ = 0)
    seed: int = 0
    device: str = "cpu"  # "auto", "cpu", "cuda", ...
    progress: bool = True

    def validate(self) -> None:
        """Raise ConfigError with a one-line message for any setting that cannot work."""
        for name in ("n_train", "n_test", "batch_size", "steps", "log_every", "max_length", "monitor_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"{name} must be a positive integer; got {v}")
        if self.max_length < 8:
            raise ConfigError(f"max_length must be at least 8; got {self.max_length}")
        if not isinstance(self.predictors, int) or not 0 <= self.predictors <= 16:
            raise ConfigError(f"predictors must be an integer in 0..16 (the paper uses 0..4); got {self.predictors}")
        if not (self.lbd >= 0 and self.gamma >= 0) or math.isinf(self.lbd) or math.isinf(self.gamma):
            raise ConfigError(f"lbd and gamma must be finite numbers ≥ 0; got lbd={self.lbd}, gamma={self.gamma}")
        if self.lbd == 0 and self.gamma == 0:
            raise ConfigError("lbd and gamma are both 0: there would be nothing to train")
        if not 0 <= self.loss_dropout < 1:
            raise ConfigError(f"loss_dropout must be in [0, 1); got {self.loss_dropout}")
        if not 0 < self.test_fraction < 1:
            raise ConfigError(f"test_fraction must be in (0, 1); got {self.test_fraction}")
        if self.distance not in ("cosine", "l2"):
            raise ConfigError(f"distance must be cosine or l2; got '{self.distance}'")
        if not self.lr > 0 or self.weight_decay < 0 or not self.grad_clip > 0 or self.warmup_steps < 0:
            raise ConfigError("lr and grad_clip must be > 0; weight_decay and warmup_steps ≥ 0")


# ---------------------------------------------------------------------------------------------
# Rows: the three sequences built from one pair
# ---------------------------------------------------------------------------------------------
def lm_row(text: List[int], code: List[int], ids: dict) -> tuple[List[int], List[int]]:
    """`[BOS] Text [SEP] Code [EOS]` and its labels: only Code and [EOS] are scored (IGNORE elsewhere)."""
    tokens = [ids["bos"], *text, ids["sep"], *code, ids["eos"]]
    labels = [IGNORE] * (len(text) + 2) + [*code, ids["eos"]]
    return tokens, labels


def text_view(text: List[int], k: int, ids: dict) -> List[int]:
    """`[BOS] Text [SEP] [PRED]×k`: Pred(Enc(Text)) is read at its last token."""
    return [ids["bos"], *text, ids["sep"], *([ids["pred"]] * k)]


def code_view(code: List[int], ids: dict) -> List[int]:
    """`[BOS] Code [EOS]`: Enc(Code) is read at its last token."""
    return [ids["bos"], *code, ids["eos"]]


def pad_rows(rows: Sequence[List[int]], pad_id: int, side: str = "right") -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of different lengths → (ids (B, L), attention_mask (B, L)), padded on `side`."""
    L = max(len(r) for r in rows)
    ids = torch.full((len(rows), L), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), L), dtype=torch.long)
    for i, r in enumerate(rows):
        span = slice(0, len(r)) if side == "right" else slice(L - len(r), L)
        ids[i, span] = torch.tensor(r, dtype=torch.long)
        mask[i, span] = 1
    return ids, mask


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """0, 1, 2, … over the real tokens of each row, whichever side the padding is on: (B, L)."""
    return (attention_mask.cumsum(dim=1) - 1).clamp(min=0)


def last_token_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of the last real (non-pad) token of each row, for right or left padding: (B,)."""
    L = attention_mask.shape[1]
    return L - 1 - attention_mask.flip(dims=[1]).argmax(dim=1)


def last_hidden(model, input_ids: torch.Tensor, attention_mask: torch.Tensor):
    """Run the causal LM; return (logits (B, L, V), Enc = last layer's state at each row's last token (B, D))."""
    out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids(attention_mask),
                output_hidden_states=True, use_cache=False)
    h = out.hidden_states[-1]  # (B, L, D)
    rows = torch.arange(h.shape[0], device=h.device)
    return out.logits, h[rows, last_token_index(attention_mask)]  # (B, D)


def lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy: position t predicts label t+1; mean over scored labels."""
    return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=IGNORE)


def jepa_distance(pred: torch.Tensor, target: torch.Tensor, distance: str = "cosine") -> torch.Tensor:
    """mean_i d(Pred(Enc(Text_i)), Enc(Code_i)): 1 − cos for "cosine", ‖p − t‖₂ for "l2"."""
    return get_loss(distance)(pred.float(), target.float())


# ---------------------------------------------------------------------------------------------
# Data: pairs → token ids
# ---------------------------------------------------------------------------------------------
def load_pairs(config: PairedConfig) -> tuple[List[Pair], List[Pair]]:
    """(train, test) pairs: the built-in regex generator, or the JSONL file split by `test_fraction`."""
    if config.data is None:
        return regex_pairs(config.n_train, config.n_test, seed=0)  # the same data for every run seed
    pairs = load_jsonl(config.data)
    n_test = max(1, round(len(pairs) * config.test_fraction))
    if len(pairs) - n_test < 1:
        raise PairsError(f"{config.data} has {len(pairs)} example(s); at least 2 are needed (one to train, one to test)")
    return pairs[:-n_test], pairs[-n_test:]


def encode(tokenizer, strings: Sequence[str], max_length: int) -> List[List[int]]:
    """Token ids of each string, no special tokens added (and none parsed out of the text), truncated."""
    enc = tokenizer(list(strings), add_special_tokens=False, split_special_tokens=True)["input_ids"]
    return [ids[:max_length] for ids in enc]


# ---------------------------------------------------------------------------------------------
# The trainer
# ---------------------------------------------------------------------------------------------
class PairedTrainer:
    """Fine-tunes a causal LM with γ·L_LM + λ·JEPA on (Text, Code) pairs; evaluates and analyses it.

    `fit()` returns the history (dict of lists, one entry per log step): step, lm_loss, jepa_loss
    (on the training batch; NaN when λ = 0 or the term was dropped that step), jepa_monitor (the JEPA
    loss on fixed test pairs, measured for every run — this is how we see that LM-only training does
    not lower it), lr, and seconds. Batches are a pure function of (seed, step).
    """

    def __init__(self, config: PairedConfig, callbacks: Sequence = (), log=print):
        config.validate()
        self.config = config
        self.callbacks = list(callbacks)
        self.log = log
        self.device = pick_device(config.device)
        self.train_pairs, self.test_pairs = load_pairs(config)
        torch.manual_seed(config.seed)
        texts = [s for p in self.train_pairs for s in (p.text, p.code)]
        tiny = TinyLMConfig(dim=config.tiny_dim, layers=config.tiny_layers)
        self.model, self.tokenizer = load_causal_lm(config.model, texts, [p.code for p in self.train_pairs + self.test_pairs], tiny)
        self.model.to(self.device)
        self.ids = pair_token_ids(self.tokenizer)
        cap = config.max_length - config.predictors - 3  # room for [BOS], [SEP], [EOS] or the [PRED]s
        self.train_text = encode(self.tokenizer, [p.text for p in self.train_pairs], cap)
        self.train_code = encode(self.tokenizer, [p.code for p in self.train_pairs], cap)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: lr_factor(s, config.warmup_steps, config.steps))
        self.step = 0
        self.history: Dict[str, List[float]] = {k: [] for k in ("step", "lm_loss", "jepa_loss", "jepa_monitor", "lr", "seconds")}

    # -- one step -------------------------------------------------------------------------------
    def batch_indices(self, step: int) -> List[int]:
        """Which training pairs make the batch of `step`: a shuffled pass over the data, reshuffled each epoch."""
        n, bs = len(self.train_pairs), min(self.config.batch_size, len(self.train_pairs))
        per_epoch = n // bs
        epoch, k = divmod(step, per_epoch)
        order = list(range(n))
        random.Random(self.config.seed * 1_000_003 + epoch).shuffle(order)
        return order[k * bs:(k + 1) * bs]

    def jepa_dropped(self, step: int) -> bool:
        """Loss dropout: is the JEPA term skipped at `step`? (A pure function of seed and step.)"""
        p = self.config.loss_dropout
        return p > 0 and random.Random(self.config.seed * 7_919 + step).random() < p

    def losses(self, idx: Sequence[int], with_jepa: bool):
        """(lm_loss, jepa_loss or None) on the training pairs `idx`.

        Two forward passes: the B LM rows, then (with the JEPA term) the B Text views and B Code views
        as one batch of 2B separate rows. Each group is padded to its own longest row.
        """
        c, ids, dev = self.config, self.ids, self.device
        rows, labels = zip(*(lm_row(self.train_text[i], self.train_code[i], ids) for i in idx))
        input_ids, mask = pad_rows(rows, ids["pad"])  # (B, L)
        label_ids, _ = pad_rows(labels, IGNORE)  # (B, L)
        logits, _ = last_hidden(self.model, input_ids.to(dev), mask.to(dev))
        lm = lm_loss(logits, label_ids.to(dev))
        if not with_jepa:
            return lm, None
        views = [text_view(self.train_text[i], c.predictors, ids) for i in idx] + [code_view(self.train_code[i], ids) for i in idx]
        view_ids, view_mask = pad_rows(views, ids["pad"])  # (2B, L')
        _, enc = last_hidden(self.model, view_ids.to(dev), view_mask.to(dev))  # (2B, D)
        B = len(idx)
        return lm, jepa_distance(enc[:B], enc[B:], c.distance)  # Pred(Enc(Text)) vs Enc(Code)

    def objective(self, step: int):
        """(L, lm_loss, jepa_loss or None) for the batch of `step`: L = γ·L_LM + λ·JEPA.

        With λ = 0, or when loss dropout skips the step, the JEPA views are not even built and
        L = γ·L_LM.
        """
        c = self.config
        with_jepa = c.lbd > 0 and not self.jepa_dropped(step)
        lm, jepa = self.losses(self.batch_indices(step), with_jepa)
        total = c.gamma * lm + c.lbd * jepa if jepa is not None else c.gamma * lm
        return total, lm, jepa

    def train_step(self):
        """One optimizer step; returns the (lm_loss, jepa_loss or None) tensors (read them only at log steps)."""
        self.model.train()
        loss, lm, jepa = self.objective(self.step)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        return lm, jepa

    def fit(self) -> Dict[str, List[float]]:
        """Train to `config.steps`, logging every `log_every` steps; returns the history."""
        c = self.config
        from tqdm.auto import tqdm

        bar = tqdm(total=c.steps, initial=self.step, disable=not c.progress, desc="LM+JEPA" if c.lbd > 0 else "LM only", leave=False)
        start = time.perf_counter()
        while self.step < c.steps:
            lm, jepa = self.train_step()
            bar.update(1)
            lm, jepa = lm.detach(), (jepa.detach() if jepa is not None else None)
            if self.step % c.log_every == 0 or self.step == c.steps:
                lm_value = float(lm)
                if not math.isfinite(lm_value):
                    raise FloatingPointError(f"the LM loss became {lm_value} at step {self.step}; lower --lr")
                record = {"step": self.step, "lm_loss": lm_value, "jepa_loss": float(jepa) if jepa is not None else math.nan,
                          "jepa_monitor": self.monitor_jepa(), "lr": self.scheduler.get_last_lr()[0],
                          "seconds": time.perf_counter() - start}
                for k, v in record.items():
                    self.history[k].append(v)
                self.log(f"step {self.step:5d}  lm {record['lm_loss']:.4f}  jepa {record['jepa_loss']:.4f}  "
                         f"jepa(test) {record['jepa_monitor']:.4f}  lr {record['lr']:.2e}")
                for cb in self.callbacks:
                    cb(self, record)
        bar.close()
        return self.history

    # -- measuring ------------------------------------------------------------------------------
    @torch.no_grad()
    def embed(self, pairs: Sequence[Pair], predictors: Optional[int] = None, batch_size: int = 256):
        """(Pred(Enc(Text)), Enc(Code)), each (N, D) float32 on the CPU, in eval mode.

        `predictors` = number of [PRED] tokens on the Text side (default: the config's k; 0 gives the
        plain Enc(Text), read at [SEP]).
        """
        k = self.config.predictors if predictors is None else predictors
        cap = self.config.max_length - k - 3
        texts = encode(self.tokenizer, [p.text for p in pairs], cap)
        codes = encode(self.tokenizer, [p.code for p in pairs], cap)
        self.model.eval()
        xs, ys = [], []
        for s in range(0, len(pairs), batch_size):
            for rows, out in (([text_view(t, k, self.ids) for t in texts[s:s + batch_size]], xs),
                              ([code_view(t, self.ids) for t in codes[s:s + batch_size]], ys)):
                input_ids, mask = pad_rows(rows, self.ids["pad"])
                out.append(last_hidden(self.model, input_ids.to(self.device), mask.to(self.device))[1].float().cpu())
        return torch.cat(xs), torch.cat(ys)

    def monitor_jepa(self) -> float:
        """The JEPA distance on the first `monitor_size` test pairs (no gradient, eval mode)."""
        x, y = self.embed(self.test_pairs[:self.config.monitor_size])
        return float(jepa_distance(x, y, self.config.distance))

    @torch.no_grad()
    def generate(self, texts: Sequence[str], batch_size: int = 128, max_new_tokens: Optional[int] = None) -> List[str]:
        """Greedy decoding of Code from `[BOS] Text [SEP]` for each text (left-padded batches)."""
        self.model.eval()
        cap = self.config.max_length - self.config.predictors - 3
        prompts = [[self.ids["bos"], *t, self.ids["sep"]] for t in encode(self.tokenizer, texts, cap)]
        max_new = max_new_tokens or (max(len(c) for c in self.train_code) + 8)
        outputs: List[str] = []
        for s in range(0, len(prompts), batch_size):
            input_ids, mask = pad_rows(prompts[s:s + batch_size], self.ids["pad"], side="left")
            out = self.model.generate(input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device),
                                      max_new_tokens=max_new, do_sample=False, num_beams=1,
                                      eos_token_id=self.ids["eos"], pad_token_id=self.ids["pad"])
            for row in out[:, input_ids.shape[1]:].tolist():
                row = row[:row.index(self.ids["eos"])] if self.ids["eos"] in row else row
                outputs.append(self.tokenizer.decode(row))
        return outputs

    def evaluate(self, pairs: Optional[Sequence[Pair]] = None) -> Dict[str, float]:
        """Exact-match accuracy of greedy decoding on `pairs` (default: the test split)."""
        pairs = self.test_pairs if pairs is None else pairs
        predictions = self.generate([p.text for p in pairs])
        correct = sum(pred == p.code for pred, p in zip(predictions, pairs))
        return {"exact_match": correct / len(pairs), "correct": correct, "total": len(pairs)}


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    d = PairedConfig()
    p = _Parser(prog="python -m jepa_lite.paired", argument_default=argparse.SUPPRESS,
                description="Fine-tune a causal LM with next-token loss + λ·JEPA on (Text, Code) pairs, offline by default.")
    a = p.add_argument
    a("--data", help="JSONL file in the paper's chat format (default: the built-in regex pairs)")
    a("--model", help=f"'tiny' (default: random-init Llama, local tokenizer) or a causal LM's hub name / folder")
    a("--steps", type=int, help=f"optimizer steps (default {d.steps})")
    a("--lbd", type=float, help=f"λ, weight of the JEPA term; 0 = plain fine-tuning (default {d.lbd:g})")
    a("--predictors", type=int, help=f"k, [PRED] tokens appended to Text (default {d.predictors})")
    a("--gamma", type=float, help=f"γ, weight of the LM loss (default {d.gamma:g})")
    a("--distance", choices=("cosine", "l2"), help="JEPA distance (default cosine)")
    a("--loss_dropout", type=float, help=f"fraction of steps without the JEPA term (default {d.loss_dropout:g})")
    a("--batch_size", type=int, help=f"(default {d.batch_size})")
    a("--lr", type=float, help=f"peak learning rate (default {d.lr:g})")
    a("--test_fraction", type=float, help=f"share of a JSONL file held out for testing (default {d.test_fraction:g})")
    a("--max_length", type=int, help=f"tokens per row (default {d.max_length})")
    a("--log_every", type=int, help=f"(default {d.log_every})")
    a("--seed", type=int, help=f"(default {d.seed})")
    a("--device", help="auto, cpu, cuda, cuda:N or mps (default cpu)")
    a("--no_progress", dest="progress", action="store_false", help="no progress bar")
    return p


def report(trainer: PairedTrainer) -> List[str]:
    """The end-of-run summary lines: accuracy and the paper's diagnostics on the test split."""
    from .diagnostics import linear_map_residual, svd_spectrum

    result = trainer.evaluate()
    x, y = trainer.embed(trainer.test_pairs, predictors=0)
    s = svd_spectrum(x, y)
    res = linear_map_residual(x, y)
    return [
        f"exact match on {result['total']} test pairs: {result['exact_match']:.3f} ({result['correct']}/{result['total']})",
        f"Enc(Text) − Enc(Code): largest singular value {s[0]:.3g}, 10th {s[min(9, len(s) - 1)]:.3g}, sum {float(s.sum()):.3g}",
        f"best linear map Enc(Text) → Enc(Code): residual ‖XW − Y‖ = {res['residual']:.3g} (relative {res['relative']:.3f})",
    ]


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = vars(build_parser().parse_args(argv))
    try:
        config = PairedConfig(**args)
        trainer = PairedTrainer(config)
        n = count_parameters(trainer.model)
        print(f"{len(trainer.train_pairs)} train / {len(trainer.test_pairs)} test pairs; model '{config.model}' "
              f"({n / 1e6:.2f} M parameters); λ={config.lbd:g}, k={config.predictors}, γ={config.gamma:g}")
        trainer.fit()
        for line in report(trainer):
            print(line)
    except (ConfigError, PairsError, CausalLMError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except FloatingPointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
