"""jepa_lite — a small, readable LLM-JEPA training core for teaching.

Modules, one concept each (the notebooks import from them):
    masking      span masking (readable loop + vectorised batch version)
    data         corpora, tokenisation, the two views of a batch
    encoders     backbones: offline MiniLM, tiny random encoder, any HF masked encoder
    ema          the EMA target update and momentum schedules
    losses       cosine distance (and L2 / MSE / smooth-L1 for comparison)
    model        JEPA: context encoder + predictor + EMA target encoder
    diagnostics  collapse metrics: effective rank, normalised std, mean pairwise cosine
    checkpoint   atomic, safely loadable checkpoints
    train        TrainConfig, Trainer, and the CLI `python -m jepa_lite.train`
    bench        throughput of the training path vs the original loop: `python -m jepa_lite.bench`

The paper's own objective (notebook 06): next-token loss + λ·JEPA between two natural views
    pairs        (Text, Code) pairs: the built-in regex grammar, the paper's JSONL format
    causal_lm    a causal LM from transformers (tiny random Llama, random:llama-135m, a kept folder, or
                 any named one), its tokenizer with [SEP] and [PRED_1]…[PRED_16], save_pretrained folders
    paired       L = γ·L_LM + λ·(1 − cos(Pred(Enc(Text)), Enc(Code))), loss dropout, gradient accumulation,
                 checkpoints and exact resume, exact-match evaluation (`python -m jepa_lite.paired`)
    paired_rows  the LM row, Text view and Code view of a pair, and their packed (block-causal) form
    paired_config  PairedConfig, the pairs, which checkpoints resume; paired_cli  the command line

The course's helpers (used by the notebooks, built on the modules above):
    course       set-up, fast mode (JEPA_LITE_FAST=1), Colab detection, the repository address
    explore      the data behind each notebook figure, computed with the library's own code
    runs         small cached training runs for live experiments
    viz          matplotlib figures
    widgets      ipywidgets panels: sliders wired to pure render functions
    exercises    the notebooks' exercises and their self-checks
"""

__version__ = "0.1.0"
