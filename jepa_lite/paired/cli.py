"""`python -m jepa_lite.paired`: fine-tune a causal LM with LM + λ·JEPA from the command line.

    python -m jepa_lite.paired --steps 800 --lbd 1                      # built-in regex pairs, tiny model
    python -m jepa_lite.paired --data train.jsonl --test_data test.jsonl --model random:llama-135m \\
        --save_path run.pt --save_every 200 --save_dir my_model        # checkpoints, then a HF folder
    python -m jepa_lite.paired --resume run.pt                          # continue exactly where it stopped
    python -m jepa_lite.paired --model my_model --test_data test.jsonl --steps 0   # evaluate only

Exit codes, as `python -m jepa_lite.train` (the same code, `cli.run_cli`): 0 done; 2 bad input, one
`error:` line before any work; 1 the run failed after it started (the loss diverged, a save failed);
130 / 143 stopped early by Ctrl-C / SIGTERM, which end the step (stopping.py), checkpoint and say how to continue.
`--save_path` follows the kit's save-path rules (`checkpoint.SaveTarget`): only a jepa_lite checkpoint
of this run is replaced (another run's with `--overwrite`), one process per path, room checked before
step 1, finite weights before each save.
"""

from __future__ import annotations

import argparse
from typing import List, Optional, Sequence

from ..checkpoint import CheckpointError, read_header
from ..checkpoint import check_save_path as kit_check_save_path
from ..cli import _Parser, run_cli  # _Parser: one-line argparse errors, exit 2
from ..errors import ConfigError
from . import PairedConfig, PairedTrainer, check_compatible, load_paired_checkpoint
from .causal_lm import CausalLMError, count_parameters
from .pairs import PairsError

EXAMPLES = """examples:
  jepa-lite-paired --model kit_lm --steps 50                     # the kit's pretrained small LM on the built-in pairs
  jepa-lite-paired --model kit_lm --data train.jsonl --test_data test.jsonl --lbd 0.3 --save_dir my_model
(jepa-lite-paired is the same as python -m jepa_lite.paired; the data format is in docs/paper.md)"""


def build_parser() -> argparse.ArgumentParser:
    d = PairedConfig()
    p = _Parser(
        prog="python -m jepa_lite.paired",
        argument_default=argparse.SUPPRESS,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Fine-tune a causal LM with next-token loss + λ·JEPA on (Text, Code) pairs, offline by default.",
    )
    a = p.add_argument
    a("--data", help="JSONL file in the paper's chat format (default: the built-in regex pairs)")
    a(
        "--test_data",
        help="separate JSONL test file (then all of --data trains; without it the last --test_fraction "
        "of --data tests)",
    )
    a(
        "--model",
        help="'tiny' (default), 'random:llama-135m' (SmolLM2-135M shape, random init), 'kit_lm' "
        "(the kit's pretrained small LM, shipped), a folder written by --save_dir, or a hub "
        "name",
    )
    a("--steps", type=int, help=f"optimizer steps; 0 = only evaluate (default {d.steps})")
    a("--lbd", type=float, help=f"λ, weight of the JEPA term; 0 = plain fine-tuning (default {d.lbd:g})")
    a(
        "--predictors",
        type=int,
        help=f"k, distinct [PRED_1]…[PRED_k] tokens appended to Text, 0..16 (default {d.predictors})",
    )
    a("--gamma", type=float, help=f"γ, weight of the LM loss (default {d.gamma:g})")
    a("--distance", choices=("cosine", "l2"), help="JEPA distance (default cosine)")
    a("--loss_dropout", type=float, help=f"fraction of steps without the JEPA term (default {d.loss_dropout:g})")
    a(
        "--lm_tokens",
        choices=("code", "all"),
        help="tokens the LM loss scores: code (Code + [EOS], default) or all (what the official runs trained)",
    )
    a(
        "--code_position",
        choices=("last", "eos"),
        help="Enc(Code) at the last Code token (default, the official Llama setting) or at [EOS]",
    )
    a(
        "--views",
        choices=("separate", "packed"),
        help="separate rows (default, readable) or one packed row per pair with a block-causal mask (faster)",
    )
    a(
        "--pack_length",
        type=int,
        help="with --views packed: several pairs per row of exactly this many tokens (default 0: one row per pair)",
    )
    a(
        "--compile",
        action="store_true",
        help="torch.compile the training forward pass: the packed rows' with --pack_length (one shape), else the "
        "transformer for any length (CPU only; it needs a C++ compiler)",
    )
    a(
        "--cuda_graphs",
        action="store_true",
        help="CUDA: record each step (one packed row per pair, or the LM rows at λ = 0) as a CUDA graph per "
        "padded length, replayed with one launch: for small models, whose steps wait on the host",
    )
    a(
        "--length_groups",
        type=int,
        help="cut each batch, its pairs sorted by length, into this many forward passes, each padded to its own "
        "longest row: the same step with less padding (default 1; 3 pays on a CPU)",
    )
    a(
        "--attention",
        choices=("default", "flex"),
        help="default: the model's own attention kernel; flex: FlexAttention block masks on the packed rows "
        "(CUDA, with --pack_length)",
    )
    a(
        "--objective",
        choices=("llm_jepa", "stp"),
        help="llm_jepa (default): λ·(1 − cos(Pred(Enc(Text)), Enc(Code))) over two or three rows; "
        "stp: Semantic Tube Prediction (arXiv 2602.22617), λ·(1 − cos(before + after, patch)) "
        "over a random span of the LM row's "
        "Text and Code tokens, one forward pass (the paper's runs: --lbd 0.02)",
    )
    a(
        "--stp_span",
        choices=("start_end", "uniform"),
        help="STP span rule: start_end (default, the official one: s, then t after it) or uniform over all spans",
    )
    a("--stp_max_span", type=int, help="STP: longest span in tokens, 0 = no cap (default 0)")
    a(
        "--stp_weighting",
        choices=("none", "cosine_like", "jaccard_like"),
        help="STP length weighting of each row's term (default none, as the official runs)",
    )
    a(
        "--batch_size",
        type=int,
        help=f"pairs per forward pass (default {d.batch_size}); an optimizer step trains on batch_size × grad_accum "
        "pairs, under torchrun in all processes together (the global batch)",
    )
    a(
        "--grad_accum",
        type=int,
        help="micro-batches per optimizer step: a step sees batch_size × grad_accum pairs (default 1); under torchrun "
        "that global batch must be a multiple of the processes, each process takes an equal "
        "share of it, in passes of at most batch_size pairs",
    )
    a("--lr", type=float, help=f"peak learning rate (default {d.lr:g})")
    a("--warmup_steps", type=int, help=f"(default {d.warmup_steps})")
    a("--test_fraction", type=float, help=f"share of a JSONL file held out for testing (default {d.test_fraction:g})")
    a("--max_length", type=int, help=f"tokens per row (default {d.max_length})")
    a(
        "--precision",
        choices=("auto", "fp32", "bf16", "fp16"),
        help="auto (default): bf16 on CUDA with native bf16, fp16 + loss scaling on older CUDA GPUs, fp32 on CPU/MPS",
    )
    a("--device", help="auto (default: CUDA, else MPS, else CPU), cpu, cuda, cuda:N or mps")
    a("--save_path", help="checkpoint file, written atomically every --save_every steps and at the end")
    a("--save_every", type=int, help="checkpoint interval in steps, 0 = only at the end (default 0)")
    a(
        "--overwrite",
        action="store_true",
        help="may replace another run's checkpoint at --save_path (never a file that is not a checkpoint)",
    )
    a(
        "--resume",
        metavar="PATH",
        help="continue the run saved in this checkpoint (its settings fill the flags not given)",
    )
    a("--save_dir", help="at the end, write the model and tokenizer here (save_pretrained, safetensors)")
    a("--log_every", type=int, help=f"(default {d.log_every})")
    a("--seed", type=int, help=f"(default {d.seed})")
    a("--no_progress", dest="progress", action="store_false", help="no progress bar")
    return p


def config_from_args(given: dict) -> PairedConfig:
    """PairedConfig from the flags given; on --resume the checkpoint's config fills the rest."""
    if given.get("resume"):
        saved = load_paired_checkpoint(given["resume"])["config"]
        check_compatible(saved, {**saved, **given}, given["resume"])
        return PairedConfig(**{**saved, **given})
    return PairedConfig(**given)


def check_save_path(config: PairedConfig) -> None:
    """The kit's save-path rules before any work (`checkpoint.check_save_path`): only a jepa_lite
    checkpoint may be replaced at --save_path, and another run's (another `run_id`; on --resume the
    resumed run is this run) only with --overwrite."""
    if not config.save_path:
        return
    run_id = (read_header(config.resume) or {}).get("run_id") if config.resume else None
    kit_check_save_path(config.save_path, run_id, config.overwrite)


def report(trainer: PairedTrainer) -> List[str]:
    """The end-of-run summary: accuracy and the geometry of the two views on the test split."""
    from ..diagnostics import pair_geometry

    result = trainer.evaluate()
    x, y = trainer.embed(trainer.test_pairs, predictors=0)
    g = pair_geometry(x, y, seed=trainer.config.seed)
    s = g["spectrum"]
    if g["residual_heldout"] is None:
        linear = f"not measured: {g['linear_map_note']}"
    elif g["relative_residual_heldout"] is None:
        linear = f"residual {g['residual_heldout']:.3g}; relative: {g['linear_map_note']}"
    else:
        linear = (
            f"held-out residual {g['residual_heldout']:.3g}, relative {g['relative_residual_heldout']:.3f} "
            f"(unrelated views would score ≈ {g['relative_residual_unrelated']:.2f} with this "
            "many pairs; 0 = a perfect map)"
        )
    return [
        f"exact match on {result['total']} test pairs: "
        f"{result['exact_match']:.3f} ({result['correct']}/{result['total']})",
        f"retrieval@1 Text → Code among the {g['n']} test pairs: {g['retrieval_at_1']:.3f} (chance {g['chance']:.3f})",
        f"cosine of true pairs {g['cos_true']:.3f}, of shuffled pairs {g['cos_shuffled']:.3f}: gap {g['cos_gap']:.3f} "
        "(near 0 with both near 1 = collapse)",
        f"Enc(Text) − Enc(Code): largest singular value {s[0]:.3g}, 10th {s[min(9, len(s) - 1)]:.3g}, "
        f"sum {float(s.sum()):.3g}",
        f"best linear map Enc(Text) → Enc(Code), fitted on half the test pairs, scored on the other half: {linear}",
    ]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command line (`cli.run_cli`, shared with jepa_lite.train); its exit codes are in the module docstring."""
    args = vars(build_parser().parse_args(argv))

    def build() -> PairedTrainer:
        config = config_from_args(args)
        config.validate()
        check_save_path(config)
        trainer = PairedTrainer(config)
        n = count_parameters(trainer.model)
        print(
            f"{len(trainer.train_pairs)} train / {len(trainer.test_pairs)} test pairs; model '{config.model}' "
            f"({n / 1e6:.2f} M parameters) on {trainer.device.type} in {trainer.precision.name}; λ={config.lbd:g}, "
            f"k={config.predictors}, γ={config.gamma:g}, views {config.views}"
        )
        if config.resume:
            print(f"resumed from {config.resume} at step {trainer.step}")
        return trainer

    def done(trainer: PairedTrainer) -> None:
        config = trainer.config
        for line in report(trainer):
            print(line)
        if config.save_path and config.steps > 0:
            print(f"checkpoint {config.save_path} (step {trainer.step})")
        if config.save_dir:
            print(f"model and tokenizer saved to {config.save_dir} (AutoModelForCausalLM.from_pretrained reloads it)")

    return run_cli("jepa_lite.paired", build, done, (ConfigError, PairsError, CausalLMError, CheckpointError))


if __name__ == "__main__":
    from ..distributed import exit_process

    exit_process(main())  # sys.exit, or under torchrun os._exit (distributed.exit_process says why)
