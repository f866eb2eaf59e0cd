"""Keep what you trained: a masked-span checkpoint → a Hugging Face folder and a sentence-transformers model.

    python -m jepa_lite.export checkpoints/llm_jepa.pt my_encoder/               # the target (EMA) encoder
    python -m jepa_lite.export checkpoints/llm_jepa.pt my_encoder/ --encoder context

The folder holds the encoder and its tokenizer, written with `save_pretrained` (weights as
safetensors), so that

    from transformers import AutoModel, AutoTokenizer
    model, tokenizer = AutoModel.from_pretrained("my_encoder"), AutoTokenizer.from_pretrained("my_encoder")

gives the kit's token embeddings (`last_hidden_state`), and — when sentence-transformers is
installed, an optional dependency — the same folder is a sentence-transformers model with mean
pooling: `SentenceTransformer("my_encoder").encode(texts)` equals the kit's mean-pooled embedding
(`probe.sentence_embeddings`).

Which encoder? JEPA trains two: the context encoder (gradients) and the target encoder (its EMA,
I-JEPA's choice for downstream use: a smoothed average of the context encoder's recent weights).
The default is the target.

The `tiny` encoder is the kit's own architecture, not a `transformers` one: it is exported as a
`transformers` model whose code is the kit's (`JepaLiteTinyModel` below, model type
"jepa_lite_tiny"). The folder carries a two-line `modeling_jepa_lite_tiny.py` pointing at it, so it
loads with `AutoModel.from_pretrained(folder, trust_remote_code=True)` wherever jepa_lite is
installed (with sentence-transformers: `SentenceTransformer(folder, trust_remote_code=True)`).
Its tokenizer is rebuilt from the training text, which must be unchanged (its fingerprint is checked).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

import torch
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput

from .checkpoint import CheckpointError, first_nonfinite, load_checkpoint
from .data import DataError, TextFile, builtin_corpus, texts_fingerprint
from .encoders import BackboneError, TinyConfig, TinyEncoder, load_backbone
from .writer import WriteError, check_folder_output, check_room, replacing_folder

MARKER = "jepa_lite_export.json"  # written into every export folder; only such a folder is replaced
TINY_MODELING = "modeling_jepa_lite_tiny.py"


class ExportError(ValueError):
    """A checkpoint or folder that cannot be exported to; the message says why."""


# ---------------------------------------------------------------------------------------------
# The tiny encoder as a transformers model
# ---------------------------------------------------------------------------------------------
class JepaLiteTinyConfig(PretrainedConfig):
    """`encoders.TinyConfig` as a transformers config (model type "jepa_lite_tiny")."""

    model_type = "jepa_lite_tiny"

    def __init__(self, vocab_size=2000, dim=128, layers=2, heads=4, max_len=512, dropout=0.0, **kwargs):
        self.vocab_size, self.dim, self.layers, self.heads, self.max_len, self.dropout = (
            vocab_size,
            dim,
            layers,
            heads,
            max_len,
            dropout,
        )
        kwargs.setdefault("hidden_size", dim)
        super().__init__(**kwargs)


class JepaLiteTinyModel(PreTrainedModel):
    """`encoders.TinyEncoder` behind the transformers interface: `model(input_ids, attention_mask)`
    → `.last_hidden_state` (B, L, D). Other inputs a tokenizer may send (token_type_ids) are ignored."""

    config_class = JepaLiteTinyConfig
    base_model_prefix = "encoder"

    def __init__(self, config: JepaLiteTinyConfig):
        super().__init__(config)
        fields = ("vocab_size", "dim", "layers", "heads", "max_len", "dropout")
        self.encoder = TinyEncoder(TinyConfig(**{k: getattr(config, k) for k in fields}))
        self.post_init()

    def _init_weights(self, module):  # the weights come from the checkpoint; keep TinyEncoder's own init
        pass

    def get_input_embeddings(self):
        return self.encoder.tok_emb

    def forward(self, input_ids=None, attention_mask=None, return_dict=None, **kwargs) -> BaseModelOutput:
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask)


def _register_tiny() -> None:
    from transformers import AutoConfig, AutoModel

    try:
        AutoConfig.register(JepaLiteTinyConfig.model_type, JepaLiteTinyConfig)
        AutoModel.register(JepaLiteTinyConfig, JepaLiteTinyModel)
    except ValueError:  # already registered
        pass


_register_tiny()  # importing jepa_lite.export lets AutoModel load tiny exports without trust_remote_code


def _not_custom_code() -> None:
    """Keep the kit's classes out of `save_pretrained`'s custom-code copy. Loading a tiny export with
    trust_remote_code (sentence-transformers does, below) calls `register_for_auto_class()` on the
    classes the two-line modeling file re-exports, which are the kit's own; a later save_pretrained
    then copies export.py and every module it imports into the folder and points auto_map there
    (transformers 5.0 did, and could not load that folder back: it missed the nested imports)."""
    JepaLiteTinyConfig._auto_class = None
    JepaLiteTinyModel._auto_class = None


# ---------------------------------------------------------------------------------------------
# Checkpoint → encoder + tokenizer
# ---------------------------------------------------------------------------------------------
def encoder_from_checkpoint(path: str | os.PathLike, which: str = "target"):
    """(encoder, tokenizer, config) of a masked-span checkpoint: the backbone rebuilt from the saved
    config (offline, as training did), with the weights of its `which` ("target" or "context") encoder.
    ExportError for a checkpoint of another kind or one that does not fit."""
    if which not in ("target", "context"):
        raise ExportError(f"--encoder must be target or context; got '{which}'")
    state = load_checkpoint(path)
    config = state.get("config")
    kind = state.get("kind", "masked_span" if isinstance(config, dict) and "mask_ratio" in config else None)
    if kind != "masked_span":
        what = (
            "a paired (jepa_lite.paired) checkpoint"
            if kind == "paired"
            else f"not a masked-span checkpoint (kind {kind!r})"
        )
        raise ExportError(
            f"{path} is {what}; export takes checkpoints of jepa_lite.train (a paired run's model "
            "is saved with --save_dir)"
        )
    cfg = _checked_config(state, path)
    if cfg.get("model_name") == "tiny":
        texts = _training_text(cfg, state.get("fingerprint"), path)
        tiny = TinyConfig(dim=cfg["tiny_dim"], layers=cfg["tiny_layers"], heads=4, max_len=max(512, cfg["max_length"]))
        encoder, tokenizer, _ = load_backbone("tiny", texts, tiny)
        encoder = JepaLiteTinyModel(JepaLiteTinyConfig(**{k: v for k, v in vars(encoder.config).items()}))
        prefix, inner = f"{which}_encoder.", "encoder."
    else:
        encoder, tokenizer, _ = load_backbone(cfg.get("model_name"))
        prefix, inner = f"{which}_encoder.", ""
    weights = {inner + k[len(prefix) :]: v for k, v in state["model"].items() if k.startswith(prefix)}
    try:
        encoder.load_state_dict(weights, strict=True)
    except RuntimeError as e:
        raise ExportError(
            f"{path} does not fit the backbone {cfg.get('model_name') or 'minilm'}: {str(e).splitlines()[0][:200]}"
        ) from None
    return encoder.eval(), tokenizer, cfg


def _checked_config(state: dict, path) -> dict:
    """The checkpoint's training config, checked as a resumed run checks it (its keys, every field's
    type) and its weights a dict of tensors: ExportError in one line for a crafted or damaged file."""
    from .config import TrainConfig, check_resumable
    from .errors import ConfigError
    from .validation import check_types

    try:
        check_resumable(state, path)
        check_types(TrainConfig(**state["config"]))
    except (CheckpointError, ConfigError) as e:
        raise ExportError(f"{path}: {e}" if str(path) not in str(e) else str(e)) from None
    model = state.get("model")
    if not isinstance(model, dict) or not all(isinstance(v, torch.Tensor) for v in model.values()):
        raise ExportError(f"{path} is damaged or was not written by jepa_lite: its model is not a dict of tensors")
    return state["config"]


def _training_text(cfg: dict, fingerprint: Optional[str], path) -> Sequence[str]:
    """The text the tiny tokenizer was built from, checked against the checkpoint's fingerprint."""
    try:
        texts = TextFile(cfg["text_file"], cfg.get("max_lines")) if cfg.get("text_file") else builtin_corpus()
    except DataError as e:
        raise ExportError(f"the tiny tokenizer is rebuilt from the training text, and it cannot be read: {e}") from None
    found = texts.fingerprint if isinstance(texts, TextFile) else texts_fingerprint(texts)
    if fingerprint and found != fingerprint:
        raise ExportError(
            "the tiny tokenizer is rebuilt from the training "
            f"text, and {cfg.get('text_file') or 'the built-in corpus'} "
            f"has changed since {path} was trained"
        )
    return texts


# ---------------------------------------------------------------------------------------------
# Writing the folder
# ---------------------------------------------------------------------------------------------
def check_out_dir(out_dir: str | os.PathLike) -> Path:
    """The export folder, checked before any work (`writer.check_folder_output`): new, empty, or an
    earlier export (holds MARKER), in a writable folder; a dangling symbolic link is refused. Anything
    else is refused: the kit never replaces files it did not write."""
    try:
        check_folder_output(out_dir, MARKER, "DIR", "an export folder")
    except WriteError as e:
        raise ExportError(str(e)) from None
    return Path(out_dir)


def export(
    checkpoint: str | os.PathLike,
    out_dir: str | os.PathLike,
    which: str = "target",
    sentence_transformers: bool = True,
    log=print,
) -> Path:
    """Write the `which` encoder of a masked-span checkpoint and its tokenizer to `out_dir` as a Hugging
    Face folder (safetensors) and, if sentence-transformers is installed, as a sentence-transformers
    model with mean pooling in the same folder. Returns the folder.

    The folder is written beside `out_dir` and swapped in (`writer.replacing_folder`): a failure (a full
    disk) leaves an earlier export whole and no half-written folder. Non-finite weights are refused."""
    out = check_out_dir(out_dir)
    encoder, tokenizer, cfg = encoder_from_checkpoint(checkpoint, which)
    bad = first_nonfinite(encoder.state_dict().items())
    if bad is not None:
        raise ExportError(f"the {which} encoder of {checkpoint} holds NaN or infinite weights ({bad}); not exported")
    nbytes = sum(t.numel() * t.element_size() for t in encoder.state_dict().values())
    try:
        check_room(
            Path(os.path.realpath(out)).parent, 2 * nbytes + (16 << 20), "the export", largest=nbytes + (1 << 20)
        )
        with replacing_folder(out, MARKER, "DIR", "an export folder") as tmp:
            wrote = _write_export(tmp, encoder, tokenizer, cfg, sentence_transformers, log)
            state = load_checkpoint(checkpoint)
            marker = {
                "checkpoint": str(checkpoint),
                "encoder": which,
                "step": state.get("step"),
                "model_name": cfg.get("model_name"),
                "max_length": cfg["max_length"],
            }
            (tmp / MARKER).write_text(json.dumps(marker, indent=1) + "\n")
    except WriteError as e:
        raise ExportError(str(e)) from None
    log(f"wrote the {which} encoder of {checkpoint} (step {state.get('step')}) to {out}: {wrote}")
    return out


def _write_export(out: Path, encoder, tokenizer, cfg: dict, sentence_transformers: bool, log) -> str:
    """The files of an export, into the (temporary) folder `out`; returns what was written, in words."""
    tiny = isinstance(encoder, JepaLiteTinyModel)
    if tiny:  # where AutoModel finds the code with trust_remote_code=True
        encoder.config.auto_map = {
            "AutoConfig": "modeling_jepa_lite_tiny.JepaLiteTinyConfig",
            "AutoModel": "modeling_jepa_lite_tiny.JepaLiteTinyModel",
        }
        (out / TINY_MODELING).write_text(
            '"""The jepa_lite tiny encoder (needs jepa_lite installed)."""\nfrom jepa_lite.export '
            "import JepaLiteTinyConfig, JepaLiteTinyModel\n"
        )
    _not_custom_code()
    encoder.save_pretrained(out, safe_serialization=True)
    tokenizer.model_max_length = cfg["max_length"]
    tokenizer.save_pretrained(out)
    wrote = "a Hugging Face folder"
    if sentence_transformers:
        try:
            _write_sentence_transformers(out, cfg["max_length"], tiny)
            wrote += " and a sentence-transformers model (mean pooling)"
        except ImportError:
            log(
                "note: sentence-transformers is not installed; wrote the Hugging Face folder only "
                "(pip install sentence-transformers)"
            )
    return wrote


def _write_sentence_transformers(out: Path, max_length: int, tiny: bool) -> None:
    """Turn the Hugging Face folder `out` into a sentence-transformers model too: Transformer → mean Pooling."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    kwargs = {"trust_remote_code": True} if tiny else {}
    transformer = Transformer(
        str(out), max_seq_length=max_length, model_kwargs=kwargs, config_kwargs=kwargs, processor_kwargs=kwargs
    )
    dim = (
        transformer.get_embedding_dimension()
        if hasattr(transformer, "get_embedding_dimension")
        else transformer.get_word_embedding_dimension()
    )
    _not_custom_code()
    SentenceTransformer(modules=[transformer, Pooling(dim, pooling_mode="mean")]).save(str(out))


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        self.exit(2, f"error: {message} (see --help)\n")


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = _Parser(
        prog="python -m jepa_lite.export",
        description="Export the encoder of a jepa_lite.train checkpoint as a Hugging Face folder and "
        "a sentence-transformers model.",
    )
    p.add_argument("checkpoint", help="a checkpoint written by python -m jepa_lite.train")
    p.add_argument("out_dir", metavar="DIR", help="the folder to write (new, empty, or an earlier export)")
    p.add_argument(
        "--encoder",
        choices=("target", "context"),
        default="target",
        help="the EMA target encoder (default) or the trained context encoder",
    )
    p.add_argument(
        "--no_sentence_transformers",
        dest="sentence_transformers",
        action="store_false",
        help="write the Hugging Face folder only",
    )
    args = p.parse_args(argv)
    try:
        export(args.checkpoint, args.out_dir, args.encoder, args.sentence_transformers)
    except (ExportError, CheckpointError, BackboneError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
