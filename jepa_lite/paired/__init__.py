"""The paper's own objective: next-token loss + λ·JEPA between two natural views (arXiv 2509.14252).

The course so far taught masked-span JEPA: one text, two views made by masking, an EMA target. The
LLM-JEPA paper keeps a decoder LLM and its usual next-token (LM) loss, and adds a JEPA term between
two views that the data already has — a description (Text) and the program it describes (Code):

    L = γ · L_LM(Text ⊕ Code) + λ · (1 − cos(Pred(Enc(Text)), Enc(Code)))          (paper, eq. 2)

* L_LM is the ordinary fine-tuning loss: the model reads `[BOS] Text [SEP]` and must produce
  `Code [EOS]` token by token; by default only the Code tokens are scored (`lm_tokens="all"` scores
  every token, as the official runs did).
* Enc(x) is the hidden state (last layer) at the end of x, with x run through the model on its own:
  Enc(Text) from `[BOS] Text [SEP]`, Enc(Code) from `[BOS] Code [EOS]`, read at the last Code token
  (`code_position="last"`, the official Llama setting) or at [EOS].
* Pred is not a separate network: k distinct tokens `[PRED_1]` … `[PRED_k]` are appended to Text,
  and Enc is read at the last of them — the LM itself does the predicting, with its own weights.
  k = 0 means no predictor: Enc(Text) is read at `[SEP]`.
* No EMA target and no stop-gradient: both views get gradients. The LM loss is what keeps this
  from collapsing (set γ = 0 to watch it collapse).
* Loss dropout: on a random fraction of steps the JEPA term, and its two extra views, are skipped,
  to save compute.

Where each part lives (this file is the index: it holds no code of its own):

    nano.py        the objective on one page, for one batch (read it first; tested equal to the trainer)
    stp.py         Semantic Tube Prediction (arXiv 2602.22617, `objective="stp"`) on one page: the LM row
                   alone, λ·(1 − cos(before + after, patch)) over a random span of its Text and Code
    trainer.py     PairedTrainer: batches, gradient accumulation, loss dropout, checkpoints, evaluation
    rows.py        the rows each pair becomes, their packed form (block-causal mask), the LM loss
                   with the head only where it scores
    packing.py     the fast path: several pairs whole in rows of N tokens (`pack_length`), FlexAttention
    graphed.py     small models on a GPU: each step recorded once as a CUDA graph and replayed (`cuda_graphs`)
    config.py      PairedConfig, the data it names, which checkpoints may be resumed
    cli.py         the command line (`python -m jepa_lite.paired`, __main__.py) and the end-of-run report
    pairs.py       (Text, Code) pairs: the built-in regex pairs, the paper's JSONL format
    causal_lm.py   the causal LM and its tokenizer ([SEP], [PRED_1] … [PRED_16]), the kept model folder
    nlrx.py        the official NL-RX-SYNTH split shipped with the kit
    pretrain.py    the kit's own small pretrained LM (notebook 06's pretrained start)
    study.py, stats.py   notebook 06's study on the kit's own pairs, and its paired statistics
    nlrx_study.py  notebook 06's study on NL-RX-SYNTH (learning rate per λ, seeds, data sizes)
    bench.py       the paired trainer's benchmark (`python -m jepa_lite.bench --objective paired`)

    trainer = PairedTrainer(PairedConfig(lbd=1.0, predictors=0, steps=800))
    history = trainer.fit()                # lm_loss, jepa_loss, jepa_monitor per log step
    print(trainer.evaluate())              # exact-match accuracy of greedy decoding on the test split
    trainer.save_pretrained("my_model")    # a Hugging Face folder: AutoModelForCausalLM reloads it

Command line: `python -m jepa_lite.paired --steps 800 --lbd 1 --predictors 0` (built-in regex pairs),
or `--data FILE.jsonl` for your own pairs in the paper's format.
"""

from __future__ import annotations

from ..errors import ConfigError
from .config import (
    KIND,
    RESUMABLE_CHANGES,
    PairedConfig,
    check_compatible,
    encode,
    load_paired_checkpoint,
    load_pairs,
    pairs_fingerprint,
)
from .pairs import Pair
from .rows import (
    CUSTOM_MASK_IMPLEMENTATIONS,
    IGNORE,
    attention_implementation,
    block_causal_mask,
    code_back,
    code_view,
    jepa_distance,
    last_hidden,
    last_token_index,
    lm_loss,
    lm_loss_sum,
    lm_row,
    pack_rows,
    packed_enc_index,
    packed_pair_rows,
    pad_rows,
    position_ids,
    run_model,
    text_view,
)
from .trainer import PairedTrainer, check_custom_mask

__all__ = [
    "PairedTrainer",
    "PairedConfig",
    "Pair",
    "ConfigError",
    "check_custom_mask",
    "KIND",
    "RESUMABLE_CHANGES",
    "check_compatible",
    "encode",
    "load_paired_checkpoint",
    "load_pairs",
    "pairs_fingerprint",
    "CUSTOM_MASK_IMPLEMENTATIONS",
    "IGNORE",
    "attention_implementation",
    "block_causal_mask",
    "code_back",
    "code_view",
    "jepa_distance",
    "last_hidden",
    "last_token_index",
    "lm_loss",
    "lm_loss_sum",
    "lm_row",
    "pack_rows",
    "packed_enc_index",
    "packed_pair_rows",
    "pad_rows",
    "position_ids",
    "run_model",
    "text_view",
]
