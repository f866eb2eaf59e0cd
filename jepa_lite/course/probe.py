"""The linear probe: what do the embeddings know that training never told them?

JEPA training is self-supervised: it never sees a label. The standard way to ask what the
representations learned anyway is a **linear probe** (Alain & Bengio, 2016; used to evaluate
self-supervised encoders such as I-JEPA, Assran et al., 2023): freeze the encoder, embed every
example, and fit only a linear classifier on top. If a straight cut through embedding space separates
the classes, the information is there in an easily readable form.

Here the examples are the sentences of the built-in corpus and the labels their 8 topics:

    sentence embedding   e = (1/n) Σ_{i : attention_mask_i = 1} h_i        (mean pooling, h = encoder output)
    standardised         ê = (e − μ) / σ                                    (μ, σ from the train split only)
    classifier           p(y | e) = softmax(W ê + b)
    fitted by            min  mean cross-entropy + (λ/2)·‖W‖²,  full-batch L-BFGS, train split only
    reported             accuracy on the held-out test split

Plain torch, no scikit-learn: the whole probe is the few lines below. Everything is deterministic
(fixed split, zero-initialised weights, full-batch optimiser).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from ..data import RESOURCES_DIR


# ---------------------------------------------------------------------------------------------
# Sentence embeddings
# ---------------------------------------------------------------------------------------------
def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """e = Σ_i m_i h_i / Σ_i m_i: the mean of the real (non-padding) token states of each row.

    hidden (B, L, D), attention_mask (B, L) with 1 = real token → (B, D). [CLS] and [SEP] count as
    real tokens, as in sentence-transformers' mean pooling (all-MiniLM-L6-v2 was trained with it).
    """
    m = attention_mask.to(hidden.dtype).unsqueeze(-1)  # (B, L, 1)
    return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)  # (B, D)


@torch.no_grad()
def sentence_embeddings(
    encoder, tokenizer, texts: Sequence[str], max_length: int = 64, batch_size: int = 64
) -> torch.Tensor:
    """(N, D) mean-pooled embeddings of `texts` by `encoder`, in fp32 on the CPU.

    The encoder is put in eval mode for the call (no dropout) and returned to its previous mode.
    """
    was_training = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    out = []
    try:
        for start in range(0, len(texts), batch_size):
            enc = tokenizer(
                list(texts[start : start + batch_size]),
                truncation=True,
                max_length=max_length,
                padding=True,
                return_tensors="pt",
            )
            ids, mask = enc["input_ids"].to(device), enc["attention_mask"].to(device)  # (B, L)
            hidden = encoder(input_ids=ids, attention_mask=mask).last_hidden_state  # (B, L, D)
            out.append(mean_pool(hidden.float(), mask).cpu())  # (B, D)
    finally:
        encoder.train(was_training)
    return torch.cat(out)  # (N, D)


def token_count_features(tokenizer, texts: Sequence[str], max_length: int = 64) -> torch.Tensor:
    """(N, V) bag of words: how often each vocabulary entry occurs in each text (specials excluded).

    Not an encoder at all — the reference a probe on embeddings should be compared with: how much of
    the task can be solved by which words occur, with no notion of meaning?
    """
    ids = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
    special = set(tokenizer.all_special_ids)
    x = torch.zeros(len(texts), len(tokenizer))
    for row, line in enumerate(ids):
        for i in line:
            if i not in special:
                x[row, i] += 1.0
    return x


# ---------------------------------------------------------------------------------------------
# Split and probe
# ---------------------------------------------------------------------------------------------
def encode_labels(labels: Sequence[str]) -> Tuple[torch.Tensor, List[str]]:
    """String labels → (N,) class indices, and the class names in sorted order."""
    classes = sorted(set(labels))
    index = {c: k for k, c in enumerate(classes)}
    return torch.tensor([index[y] for y in labels], dtype=torch.long), classes


def train_test_split(labels: Sequence, test_fraction: float = 0.25, seed: int = 0) -> Tuple[List[int], List[int]]:
    """A stratified split: in each class, a seeded shuffle puts round(test_fraction·n) examples in test.

    Returns (train_indices, test_indices), both sorted. Same labels and seed → same split, always.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1); got {test_fraction}")
    g = torch.Generator().manual_seed(seed)
    train, test = [], []
    for c in sorted(set(labels)):
        members = [i for i, y in enumerate(labels) if y == c]
        order = torch.randperm(len(members), generator=g).tolist()
        n_test = max(1, round(test_fraction * len(members)))
        test += [members[k] for k in order[:n_test]]
        train += [members[k] for k in order[n_test:]]
    return sorted(train), sorted(test)


@dataclass
class ProbeResult:
    train_acc: float  # accuracy on the examples the classifier was fitted on
    test_acc: float  # accuracy on held-out examples: the number to report
    n_train: int
    n_test: int
    chance: float  # accuracy of always answering the most frequent training class
    predictions: torch.Tensor  # (n_test,) predicted class index of each test example

    def __str__(self) -> str:
        return (
            f"test accuracy {self.test_acc:.3f} (train {self.train_acc:.3f}, chance {self.chance:.3f}, "
            f"{self.n_test} test examples)"
        )


def fit_linear_classifier(
    x: torch.Tensor, y: torch.Tensor, n_classes: int, weight_decay: float = 1e-2, max_iter: int = 200
):
    """W (C, D), b (C,) minimising mean cross-entropy(W x + b, y) + (λ/2)‖W‖², by full-batch L-BFGS."""
    W = torch.zeros(n_classes, x.shape[1], requires_grad=True)
    b = torch.zeros(n_classes, requires_grad=True)
    opt = torch.optim.LBFGS([W, b], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(x @ W.T + b, y) + 0.5 * weight_decay * (W * W).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return W.detach(), b.detach()


def linear_probe(
    features: torch.Tensor,
    labels: Sequence,
    split: Optional[Tuple[Sequence[int], Sequence[int]]] = None,
    weight_decay: float = 1e-2,
) -> ProbeResult:
    """Fit a linear classifier on the train split of `features` (N, D) and score it on the test split.

    `split` = (train_indices, test_indices), by default `train_test_split(labels)`. Features are
    standardised with the train split's mean and std, so every encoder is probed on the same scale.
    """
    y, classes = encode_labels(labels)
    train, test = split if split is not None else train_test_split(labels)
    train, test = torch.as_tensor(list(train)), torch.as_tensor(list(test))
    x = features.float()
    mu, sigma = x[train].mean(dim=0), x[train].std(dim=0).clamp(min=1e-6)  # (D,) each
    x = (x - mu) / sigma  # (N, D)
    W, b = fit_linear_classifier(x[train], y[train], len(classes), weight_decay)
    pred = (x @ W.T + b).argmax(dim=1)  # (N,)
    majority = torch.bincount(y[train], minlength=len(classes)).argmax()
    return ProbeResult(
        train_acc=float((pred[train] == y[train]).float().mean()),
        test_acc=float((pred[test] == y[test]).float().mean()),
        n_train=len(train),
        n_test=len(test),
        chance=float((y[test] == majority).float().mean()),
        predictions=pred[test],
    )


# ---------------------------------------------------------------------------------------------
# Similarity matrices (for the heatmaps)
# ---------------------------------------------------------------------------------------------
def similarity_matrix(x: torch.Tensor) -> torch.Tensor:
    """S_ij = cos(x_i, x_j) for x (N, D) → (N, N); the diagonal is 1."""
    xn = F.normalize(x.float(), dim=-1)  # (N, D), unit rows
    return xn @ xn.T  # (N, N)


def examples_per_topic(topics: Sequence[str], per_topic: int = 3) -> List[int]:
    """Indices of the first `per_topic` examples of each topic, grouped by topic (sorted by name):
    in a similarity matrix of these rows, same-topic pairs form blocks on the diagonal."""
    out = []
    for c in sorted(set(topics)):
        out += [i for i, t in enumerate(topics) if t == c][:per_topic]
    return out


def block_contrast(sim: torch.Tensor, groups: Sequence) -> Dict[str, float]:
    """Mean similarity within a group (off the diagonal) and between groups, and their difference.

    A single number for what a heatmap shows: > 0 when same-topic sentences sit closer together than
    sentences on different topics.
    """
    g = list(groups)
    same = torch.tensor([[a == b for b in g] for a in g])  # (N, N)
    off_diag = ~torch.eye(len(g), dtype=torch.bool)
    within = float(sim[same & off_diag].mean())
    between = float(sim[~same].mean())
    return {"within": within, "between": between, "contrast": within - between}


# ---------------------------------------------------------------------------------------------
# The scores the teaching guide quotes (docs/teaching.md): notebook 05 § 11 in full mode, as a file
# ---------------------------------------------------------------------------------------------
SCORES_FILE = RESOURCES_DIR / "probe_scores.json"  # package data; written by `python -m jepa_lite.course.probe`
NOTEBOOK_05_FULL = {"tiny_steps": 400, "minilm_steps": 100}  # notebook 05's STEPS and MINILM_STEPS in full mode


def notebook_05_scores(
    tiny_steps: int = 400, minilm_steps: int = 100, minilm: Optional[str] = "fine-tuned"
) -> Dict[str, dict]:
    """The linear probes of notebook 05 § 11, computed as its cells compute them: the tiny encoder
    (`TrainConfig.smoke`, `tiny_steps` steps, log every 10) before and after JEPA; MiniLM (the default
    backbone, `minilm_steps` steps, warm-up a tenth, max_length 64, log every 5) before and after its
    fine-tune (`minilm="pretrained"`: before only; None: no MiniLM); a bag of words over the tiny
    tokenizer; all on the fixed split `train_test_split(topics, 0.25, seed=0)`, on the CPU, training
    on one thread as the notebook does.

    Returns {name: {"test_acc", "train_acc", "chance", "n_test"}} under the notebook's names.
    """
    from ..data import builtin_labelled_corpus
    from ..train import TrainConfig, Trainer
    from .runs import one_thread

    if minilm not in ("fine-tuned", "pretrained", None):
        raise ValueError(f"minilm must be 'fine-tuned', 'pretrained' or None; got {minilm!r}")
    texts, topics = builtin_labelled_corpus()
    split = train_test_split(topics, test_fraction=0.25, seed=0)
    quiet = lambda line: None  # noqa: E731
    emb = {}
    tiny = Trainer(
        TrainConfig.smoke(steps=tiny_steps, log_every=10, save_path=None, progress=False, device="cpu"), log=quiet
    )
    emb["tiny, random init"] = sentence_embeddings(tiny.model.context_encoder, tiny.tokenizer, texts)
    with one_thread():
        tiny.fit()
    emb["tiny, after JEPA"] = sentence_embeddings(tiny.model.context_encoder, tiny.tokenizer, texts)
    if minilm:
        cfg = TrainConfig(
            steps=minilm_steps,
            warmup_steps=minilm_steps // 10,
            max_length=64,
            log_every=5,
            save_path=None,
            progress=False,
            device="cpu",
        )
        mini = Trainer(cfg, log=quiet)
        emb["MiniLM, pretrained"] = sentence_embeddings(mini.model.context_encoder, mini.tokenizer, texts)
    if minilm == "fine-tuned":
        with one_thread():
            mini.fit()
        emb["MiniLM, after JEPA"] = sentence_embeddings(mini.model.context_encoder, mini.tokenizer, texts)
    emb["bag of words (no encoder)"] = token_count_features(tiny.tokenizer, texts)
    out = {}
    for name, x in emb.items():
        r = linear_probe(x, topics, split)
        out[name] = {"test_acc": r.test_acc, "train_acc": r.train_acc, "chance": r.chance, "n_test": r.n_test}
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    """`python -m jepa_lite.course.probe [--out FILE]`: compute `notebook_05_scores` in full mode and
    write them as JSON (default SCORES_FILE), the file the teaching guide's probe figures are tested against.
    Replaces only a file this command wrote."""
    import argparse
    import sys
    from pathlib import Path

    from ..checkpoint import json_marked
    from ..writer import PathLock, WriteError, check_writable, write_json

    p = argparse.ArgumentParser(prog="python -m jepa_lite.course.probe", description=main.__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(SCORES_FILE))
    args = p.parse_args(argv)
    out = Path(args.out)
    marker = "jepa_lite.course.probe"
    if out.exists() and not json_marked(out, "written_by", marker):
        print(f"error: {out} exists and was not written by {marker}; give another --out", file=sys.stderr)
        return 2
    from ..encoders import BackboneError, check_minilm_weights, minilm_path

    try:  # the scores need the offline MiniLM: say so before the tiny runs, not after them
        check_minilm_weights(minilm_path())
    except BackboneError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not out.parent.is_dir():
        print(f"error: the folder of --out {out} does not exist", file=sys.stderr)
        return 2
    try:
        check_writable(out.parent, "the probe scores", "--out")
        with PathLock(out, "--out"):
            scores = notebook_05_scores(**NOTEBOOK_05_FULL)
            about = {"written_by": marker, "mode": "full", **NOTEBOOK_05_FULL, "torch": torch.__version__}
            write_json(out, {**about, "scores": scores}, "the probe scores", indent=1)
    except WriteError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for name, s in scores.items():
        print(
            f"{name:26s} test accuracy {s['test_acc']:.3f} (train {s['train_acc']:.3f}, chance "
            f"{s['chance']:.3f}, {s['n_test']} test examples)"
        )
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
