"""The kit's own pretrained causal LM: LM-only pretraining on text the kit generates or ships.

Every headline result of the LLM-JEPA paper (arXiv 2509.14252) fine-tunes a *pretrained* LLM
(Llama-3.2-1B and larger, Table 12): the JEPA term reorganises representations that pretraining
built. To study that setting in miniature, the kit pretrains its small Llama itself, with the
next-token loss alone, on documents that are never the fine-tuning pairs:

* English descriptions of regexes, one per document, drawn from the grammar of `jepa_lite.paired.pairs`;
* regexes, one per document, drawn independently (so no document holds a description next to its
  regex: the model learns both languages, not the mapping between them);
* the course's own English sentences (`jepa_lite/resources/corpus/sentences.tsv`).

Any description or regex that belongs to the fine-tuning benchmark (`benchmark_splits()`: the train,
validation and test splits the study uses) is left out, so pretraining never sees a test regex or a
fine-tuning pair. Each document is one row `[BOS] document [EOS]`, every token after `[BOS]` scored:

    L_LM = − mean_t log p(x_{t+1} | x_{≤t})

Command line (writes the model folder, with `recipe.json` holding the recipe and the loss reached):

    python -m jepa_lite.paired.pretrain --out jepa_lite/resources/kit_lm --device cuda  # recipe.json: how long
    python -m jepa_lite.paired --model kit_lm ...   # fine-tune the shipped folder (its short name), paper's objective

How this differs from a web-scale LLM: ~1 M parameters instead of ~1 B, ~10⁶ tokens of two narrow
languages instead of ~10¹³ tokens of the web, a vocabulary counted from this corpus. It knows what
descriptions and regexes look like, and nothing else.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import random
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch

from ..data import RESOURCES_DIR
from ..writer import WriteError, check_folder_output, replacing_folder
from .pairs import Pair, regex_pairs, sample_regex_pair

ASSETS = RESOURCES_DIR  # the kit's package data, jepa_lite/resources/ (it ships inside the wheel)
KIT_LM = ASSETS / "kit_lm"  # the shipped pretrained model folder (`--model kit_lm` names it)
SENTENCES = ASSETS / "corpus" / "sentences.tsv"
RECIPE = "recipe.json"
N_PRED_TOKENS = 16  # distinct predictor tokens [PRED_1] … [PRED_16], as jepa_lite.paired uses them


class PretrainError(ValueError):
    """A pretraining setting or output folder that cannot work; the message says what to do."""


@dataclass
class PretrainConfig:
    # corpus
    n_descriptions: int = 20000  # description documents drawn from the grammar
    n_regexes: int = 20000  # regex documents, drawn independently
    course_sentences: bool = True  # add the course's English sentences (jepa_lite/resources/corpus/sentences.tsv)
    corpus_seed: int = 1  # the grammar's sampler (the benchmark uses seed 0 and is excluded anyway)
    heldout: int = 1000  # documents kept out of training to measure the held-out loss
    # model: a Llama, the shape of the kit's "tiny" model
    dim: int = 128  # hidden size D
    layers: int = 4  # decoder blocks
    heads: int = 4
    mlp: int = 384  # gated-MLP hidden size
    max_len: int = 256  # rotary positions set up for this many tokens
    min_count: int = 3  # a pre-token seen this often in the corpus gets its own id
    # optimisation (AdamW, linear warm-up then cosine decay to 0)
    batch_size: int = 64  # documents per step
    lr: float = 3e-3
    weight_decay: float = 0.01
    steps: int = 4000
    warmup_steps: int = 100
    grad_clip: float = 1.0
    log_every: int = 100
    first_steps: int = 10  # the loss of each of the first steps is kept in the recipe (the reproduction test)
    seed: int = 0  # init and batch order
    device: str = "cpu"

    def validate(self) -> None:
        for name in (
            "n_descriptions",
            "n_regexes",
            "heldout",
            "dim",
            "layers",
            "heads",
            "mlp",
            "batch_size",
            "steps",
            "log_every",
            "first_steps",
        ):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise PretrainError(f"{name} must be a positive integer; got {v}")
        if self.dim % self.heads:
            raise PretrainError(f"dim must divide by heads; got dim={self.dim}, heads={self.heads}")
        if not self.lr > 0 or self.weight_decay < 0 or self.warmup_steps < 0 or not self.grad_clip > 0:
            raise PretrainError("lr and grad_clip must be > 0; weight_decay and warmup_steps ≥ 0")


# ---------------------------------------------------------------------------------------------
# The corpus
# ---------------------------------------------------------------------------------------------
def benchmark_splits() -> Dict[str, List[Pair]]:
    """The fine-tuning benchmark: {"train", "val", "test"} regex pairs, split by regex.

    train/test are `regex_pairs(3000, 300, seed=0)` (what `PairedConfig` and the course use); val
    is 300 more pairs whose regexes are in neither, for choosing λ without looking at the test split.
    """
    train, test = regex_pairs(3000, 300, seed=0)
    taken = {p.code for p in train + test}
    rng, val, seen = random.Random(2509), [], set()
    while len(val) < 300:
        p = sample_regex_pair(rng)
        if p.code not in taken and p.code not in seen:
            seen.add(p.code)
            val.append(p)
    return {"train": train, "val": val, "test": test}


def course_sentences() -> List[str]:
    """The English sentences the kit ships for the course (the `sentence` column)."""
    lines = SENTENCES.read_text(encoding="utf-8").splitlines()[1:]
    return [line.split("\t", 1)[1] for line in lines if "\t" in line]


def pretraining_corpus(config: PretrainConfig) -> List[str]:
    """The documents, a pure function of the config: descriptions, regexes, sentences, shuffled.

    A grammar draw is skipped when its description or its regex occurs anywhere in the benchmark,
    and duplicates are dropped, so no document is a benchmark text or code.
    """
    bench = benchmark_splits()
    banned = {s for split in bench.values() for p in split for s in (p.text, p.code)}
    rng = random.Random(config.corpus_seed)
    descriptions, regexes = {}, {}  # dicts keep the order of first draw
    for wanted, docs, field in ((config.n_descriptions, descriptions, "text"), (config.n_regexes, regexes, "code")):
        for _ in range(50 * wanted):
            if len(docs) >= wanted:
                break
            p = sample_regex_pair(rng)
            if p.text not in banned and p.code not in banned:
                docs[getattr(p, field)] = None
        else:
            raise PretrainError(f"the grammar gave fewer than {wanted} distinct {field} documents")
    documents = list(descriptions) + list(regexes) + (course_sentences() if config.course_sentences else [])
    random.Random(config.corpus_seed).shuffle(documents)
    return documents


def fingerprint(documents: Sequence[str]) -> str:
    """sha256 of the documents, one per line: two corpora are the same iff their fingerprints are."""
    return hashlib.sha256("\n".join(documents).encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------------------------
# Tokenizer and model
# ---------------------------------------------------------------------------------------------
def pred_tokens(k: int = N_PRED_TOKENS) -> List[str]:
    """The distinct predictor tokens [PRED_1] … [PRED_k]."""
    return [f"[PRED_{i}]" for i in range(1, k + 1)]


def build_tokenizer(documents: Sequence[str], min_count: int = 3):
    """The kit's byte-level tokenizer counted from `documents` (`causal_lm.build_pair_tokenizer`'s
    vocabulary of pieces), with the special tokens in the layout of the shipped model:
    [BOS] [EOS] [PAD] [SEP], a legacy [PRED] (unused since the predictor tokens became distinct; kept
    so that the shipped weights keep their rows), then [PRED_1] … [PRED_16]."""
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    from .causal_lm import BOS, EOS, PAD, SEP, build_pair_tokenizer

    counted = build_pair_tokenizer(documents, min_count).backend_tokenizer
    pieces = counted.get_vocab(with_added_tokens=False)  # bytes and frequent pieces: id → the same id
    core = Tokenizer(models.BPE(vocab=pieces, merges=[], ignore_merges=True))
    core.pre_tokenizer, core.decoder = counted.pre_tokenizer, counted.decoder
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token=PAD, bos_token=BOS, eos_token=EOS, extra_special_tokens=[SEP, "[PRED]"]
    )
    tokenizer.add_tokens(pred_tokens(), special_tokens=True)
    return tokenizer


def initial_model(config: PretrainConfig, tokenizer):
    """The random-init Llama that pretraining starts from: a pure function of (config, tokenizer)."""
    from .causal_lm import TinyLMConfig, tiny_causal_lm

    torch.manual_seed(config.seed)
    shape = TinyLMConfig(
        dim=config.dim, layers=config.layers, heads=config.heads, mlp=config.mlp, max_len=config.max_len
    )
    return tiny_causal_lm(tokenizer, shape)


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------
class Pretrainer:
    """LM-only pretraining: rows `[BOS] doc [EOS]`, every real token after [BOS] scored."""

    def __init__(self, config: PretrainConfig, log=print):
        from ..config import pick_device
        from ..nano import lr_factor
        from . import IGNORE  # label of an unscored position

        config.validate()
        self.config, self.log, self.ignore = config, log, IGNORE
        self.device = pick_device(config.device)
        documents = pretraining_corpus(config)
        self.fingerprint = fingerprint(documents)
        self.train_docs, self.heldout_docs = documents[: -config.heldout], documents[-config.heldout :]
        self.tokenizer = build_tokenizer(self.train_docs, config.min_count)
        self.model = initial_model(config, self.tokenizer).to(self.device)
        cap = config.max_len - 2

        def encode(docs):
            return [
                ids[:cap]
                for ids in self.tokenizer(docs, add_special_tokens=False, split_special_tokens=True)["input_ids"]
            ]

        self.train_ids, self.heldout_ids = encode(self.train_docs), encode(self.heldout_docs)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, config.warmup_steps, config.steps)
        )
        self.step = 0
        self.history: Dict[str, List[float]] = {"step": [], "loss": []}
        self.first_losses: List[float] = []

    def batch_indices(self, step: int) -> List[int]:
        """Documents of `step`: a shuffled pass over the corpus, reshuffled each epoch (pure in seed, step)."""
        n, bs = len(self.train_ids), self.config.batch_size
        epoch, k = divmod(step, n // bs)
        order = list(range(n))
        random.Random(self.config.seed * 1_000_003 + epoch).shuffle(order)
        return order[k * bs : (k + 1) * bs]

    def loss_on(self, rows: Sequence[List[int]]) -> torch.Tensor:
        """Mean next-token cross-entropy over the real tokens of `[BOS] doc [EOS]` rows."""
        from . import lm_loss, pad_rows, position_ids

        t = self.tokenizer
        full = [[t.bos_token_id, *r, t.eos_token_id] for r in rows]
        ids, mask = pad_rows(full, t.pad_token_id)  # (B, L)
        labels = ids.masked_fill(mask == 0, self.ignore)  # (B, L); position 0 ([BOS]) is never a target
        ids, mask = ids.to(self.device), mask.to(self.device)
        logits = self.model(input_ids=ids, attention_mask=mask, position_ids=position_ids(mask), use_cache=False).logits
        return lm_loss(logits, labels.to(self.device))

    def train_step(self) -> torch.Tensor:
        self.model.train()
        loss = self.loss_on([self.train_ids[i] for i in self.batch_indices(self.step)])
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        return loss.detach()

    @torch.no_grad()
    def heldout_loss(self, batch_size: int = 256) -> float:
        """Token-weighted mean LM loss on the held-out documents (eval mode)."""
        self.model.eval()
        total, tokens = 0.0, 0
        for s in range(0, len(self.heldout_ids), batch_size):
            rows = self.heldout_ids[s : s + batch_size]
            n = sum(len(r) + 1 for r in rows)  # scored tokens: the document and [EOS]
            total += float(self.loss_on(rows)) * n
            tokens += n
        return total / tokens

    def fit(self, steps: Optional[int] = None) -> Dict[str, List[float]]:
        """Train to `steps` (default: the config's), logging every `log_every` steps."""
        c, end = self.config, steps or self.config.steps
        while self.step < end:
            loss = self.train_step()
            if self.step <= c.first_steps:
                self.first_losses.append(float(loss))
            if self.step % c.log_every == 0 or self.step == c.steps:
                value = float(loss)
                if not math.isfinite(value):
                    raise FloatingPointError(f"the loss became {value} at step {self.step}; lower --lr")
                self.history["step"].append(self.step)
                self.history["loss"].append(value)
                self.log(f"step {self.step:5d}  loss {value:.4f}")
        return self.history

    def save(self, out_dir: Path, seconds: float) -> dict:
        """Write the model (safetensors), its tokenizer and recipe.json into `out_dir`; return the recipe."""
        import transformers
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        heldout = self.heldout_loss()
        tail = self.history["loss"][-5:]
        recipe = {
            "kind": "jepa_lite.pretrain",
            "command": "python -m jepa_lite.paired.pretrain " + " ".join(config_to_args(self.config)),
            "config": dataclasses.asdict(self.config),
            "corpus": {
                "documents": len(self.train_docs) + len(self.heldout_docs),
                "train_documents": len(self.train_docs),
                "heldout_documents": len(self.heldout_docs),
                "train_tokens": sum(len(r) + 1 for r in self.train_ids),
                "fingerprint": self.fingerprint,
            },
            "vocab_size": len(self.tokenizer),
            "parameters": sum(p.numel() for p in {id(p): p for p in self.model.parameters()}.values()),
            "first_losses": self.first_losses,
            "history": self.history,
            "final_train_loss": sum(tail) / len(tail),  # mean of the last 5 logged training losses
            "heldout_loss": heldout,
            "seconds": seconds,
            "device": str(self.device),
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        }
        with replacing_folder(out_dir, RECIPE, "--out", "a pretraining folder") as tmp:  # written beside, swapped in
            self.model.to("cpu").save_pretrained(tmp)
            self.tokenizer.save_pretrained(tmp)
            (tmp / RECIPE).write_text(json.dumps(recipe, indent=1) + "\n", encoding="utf-8")
        return recipe


def config_to_args(config: PretrainConfig) -> List[str]:
    """The flags that differ from the defaults, so `recipe["command"]` re-runs the recipe."""
    d, args = PretrainConfig(), []
    for f in dataclasses.fields(config):
        v = getattr(config, f.name)
        if v == getattr(d, f.name) or f.name == "device":
            continue
        args += [f"--no_{f.name}"] if isinstance(v, bool) else [f"--{f.name}", str(v)]
    return args


def load_recipe(model_dir: Path = KIT_LM) -> dict:
    """The recipe.json of a pretrained folder (raises PretrainError if there is none)."""
    path = Path(model_dir) / RECIPE
    if not path.is_file():
        raise PretrainError(
            f"{path} not found: run `python -m jepa_lite.paired.pretrain --out {shlex.quote(str(model_dir))}` first"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def reproduce_first_steps(recipe: dict, steps: int) -> List[float]:
    """Re-run the recipe's first `steps` optimizer steps on the CPU; their losses (compare with
    `recipe["first_losses"]`)."""
    config = PretrainConfig(**{**recipe["config"], "device": "cpu"})
    trainer = Pretrainer(config, log=lambda s: None)
    if trainer.fingerprint != recipe["corpus"]["fingerprint"]:
        raise PretrainError("the corpus this code builds is not the corpus of the recipe")
    return [float(trainer.train_step()) for _ in range(steps)]


def check_out_dir(out: Path, overwrite: bool) -> None:
    """Refuse an output folder that holds anything but a kit pretraining result (users' files are sacred)."""
    if out.exists() and not out.is_dir():
        raise PretrainError(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not (out / RECIPE).is_file():
            raise PretrainError(f"--out {out} is a folder that holds other files; name a new or empty folder")
        if not overwrite:
            raise PretrainError(f"--out {out} already holds a pretrained model; add --overwrite to replace it")
    try:
        check_folder_output(out, RECIPE, "--out", "a pretraining folder")  # writable, no dangling link
    except WriteError as e:
        raise PretrainError(str(e)) from None


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from ..cli import _Parser  # one-line argparse errors, exit 2

    d = PretrainConfig()
    p = _Parser(
        prog="python -m jepa_lite.paired.pretrain",
        description="LM-only pretraining of the kit's small causal LM, offline.",
    )
    p.add_argument("--out", default=str(KIT_LM), help=f"model folder to write (default {KIT_LM})")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier pretraining result in --out")
    for f in dataclasses.fields(PretrainConfig):
        v = getattr(d, f.name)
        if isinstance(v, bool):
            p.add_argument(f"--no_{f.name}", dest=f.name, action="store_false", help=f"leave out {f.name}")
        else:
            p.add_argument(f"--{f.name}", type=type(v), default=v, help=f"(default {v})")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = vars(build_parser().parse_args(argv))
    out, overwrite = Path(args.pop("out")), args.pop("overwrite")
    try:
        config = PretrainConfig(**args)
        config.validate()
        check_out_dir(out, overwrite)
        trainer = Pretrainer(config)
        n = sum(p.numel() for p in {id(p): p for p in trainer.model.parameters()}.values())
        print(
            f"{len(trainer.train_docs)} training documents, {len(trainer.heldout_docs)} held out; vocabulary "
            f"{len(trainer.tokenizer)}; {n / 1e6:.2f} M parameters; device {trainer.device}"
        )
        start = time.perf_counter()
        trainer.fit()
        recipe = trainer.save(out, time.perf_counter() - start)
        print(
            f"final training loss {recipe['final_train_loss']:.4f}, held-out loss {recipe['heldout_loss']:.4f}; "
            f"{recipe['seconds']:.0f} s; wrote {out}"
        )
    except PretrainError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (FloatingPointError, WriteError) as e:  # after training started
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
