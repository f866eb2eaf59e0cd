"""jepa_lite — a small, readable LLM-JEPA training core for teaching, in three rooms.

The training core (jepa_lite/, one concept per file; it imports neither room below):
    nano          the whole algorithm on one page (read it after the course), tested equal to the trainer
    masking       span masking (readable loop + vectorised batch version)
    data          corpora, streamed tokenisation, the token cache, the two views of a batch
    encoders      backbones: offline MiniLM, tiny random encoder, any HF masked encoder
    ema           the EMA target update and momentum schedules
    losses        cosine distance (and L2 / MSE / smooth-L1 for comparison)
    model         JEPA: context encoder + predictor + EMA target encoder
    diagnostics   collapse metrics; for two views: retrieval@1, cosine gap, SVD spectrum, held-out linear map
    checkpoint    atomic, safely loadable checkpoints and the save-path rules
    validation    typed config fields, ranges, memory and position-limit checks
    precision     which number format a step computes in, by device
    errors        ConfigError and TrainingDiverged, shared by every trainer
    config        TrainConfig: every setting with its default, validation, the resume rules
    train         Trainer: nano's step plus precision, scaling, DDP, checkpoints, logging (`python -m jepa_lite.train`)
    cli           the command lines and their signals (run_cli, shared by both trainers)
    fastpath      the fast paths, off the reading path: CUDA-graph gating, fused AdamW, padding, prefetching
    distributed   torchrun / DDP set-up shared by both trainers
    graphs        whole training steps as CUDA graphs
    bench         the benchmark: `python -m jepa_lite.bench`
    export        a trained encoder as a Hugging Face / sentence-transformers folder

The paper's objective (jepa_lite.paired, notebook 06): next-token loss + λ·JEPA between two views
    paired        the index (`from jepa_lite.paired import PairedConfig, PairedTrainer`),
                  CLI `python -m jepa_lite.paired`
    paired.nano, paired.trainer   the objective on one page; PairedTrainer
    paired.rows, paired.config, paired.cli, paired.pairs, paired.causal_lm, paired.nlrx
    paired.pretrain, paired.study, paired.nlrx_study, paired.stats
                  the kit's pretrained small LM and notebook 06's studies

The course's helpers (jepa_lite.course, used by the notebooks only):
    course        set-up, fast mode (JEPA_LITE_FAST=1), Colab's first cell, the repository address
    course.explore, course.runs, course.viz, course.widgets, course.study_view   data, cached runs, figures, panels
    course.exercises, course.implement, course.solutions   exercises, implement-it-yourself checks, solutions
    course.probe, course.lab   sentence embeddings and the linear probe; the JupyterLab launcher
"""

__version__ = "0.1.0"
