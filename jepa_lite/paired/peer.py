"""The paired benchmark's peer row: the paper's objective trained the way the official code trains it.

The official `finetune.py` (galilai-group/llm-jepa, arXiv 2509.14252) trains LLM-JEPA with Hugging Face's
`Trainer`. What one of its steps does, written anew here for the kit's model, tokens and pairs so that the
benchmark compares like with like:

* each pair becomes three rows — the LM row, the Text view and the Code view — and every row is padded to
  the same `max_length` (512 by default there: `padding="max_length"` at tokenisation);
* the three groups are stacked into one batch of 3B rows and run through the model in one call; Hugging
  Face's `labels=` gives the LM loss, with every real token of every row scored (padding = −100);
* Enc(Text) and Enc(Code) are the last layer's states at each view's last real token (Code: one token before
  it, the official `last_token = −2`), and L = γ·L_LM + λ·(1 − mean cos);
* `Trainer` in bf16 with gradient checkpointing (its `TrainingArguments`), AdamW.

One difference, in the peer's favour: the official code finds each row's last token with a Python loop over
every token of every row on the host; here one `attention_mask.sum` does it. Needs `accelerate` (Hugging
Face's `Trainer` does): `pip install accelerate`.
"""

from __future__ import annotations

import tempfile
import time
from typing import Dict, List, Sequence

import torch
import torch.nn.functional as F

from .rows import code_view, lm_row, text_view

OFFICIAL_LENGTH = 512  # the official finetune.py's --max_length default: every row is padded to it


def peer_rows(texts: Sequence[List[int]], codes: Sequence[List[int]], ids: dict, length: int) -> List[Dict]:
    """One example per pair: its LM row, Text view (k = 0) and Code view, each padded on the right to
    `length` tokens, with their attention masks."""
    out = []
    for text, code in zip(texts, codes):
        rows = [lm_row(text, code, ids, "all")[0], text_view(text, 0, ids), code_view(code, ids)]
        example = {}
        for name, row in zip(("lm", "text", "code"), rows):
            padded = torch.tensor(row + [ids["pad"]] * (length - len(row)))  # padding="max_length"
            example[f"{name}_ids"], example[f"{name}_mask"] = padded, (torch.arange(length) < len(row)).long()
        out.append(example)
    return out


def peer_loss(model, batch: Dict[str, torch.Tensor], lbd: float = 1.0, gamma: float = 1.0) -> torch.Tensor:
    """γ·L_LM + λ·(1 − mean cos(Enc(Text), Enc(Code))) from one forward pass over the 3B stacked rows."""
    ids = torch.cat([batch["lm_ids"], batch["text_ids"], batch["code_ids"]])  # (3B, length)
    mask = torch.cat([batch["lm_mask"], batch["text_mask"], batch["code_mask"]])
    out = model(input_ids=ids, attention_mask=mask, labels=ids.masked_fill(mask == 0, -100), output_hidden_states=True)
    h, B = out.hidden_states[-1], batch["lm_ids"].shape[0]
    last = mask.sum(dim=1) - 1  # each row's last real token (right padding)
    rows = torch.arange(B, device=h.device)
    x = h[B : 2 * B][rows, last[B : 2 * B]]  # Enc(Text) at [SEP]
    y = h[2 * B :][rows, last[2 * B :] - 1]  # Enc(Code) at the last Code token
    return gamma * out.loss + lbd * (1 - F.cosine_similarity(x.float(), y.float(), dim=-1).mean())


def time_peer(model, examples: List[Dict], batch_size: int, warmup: int, steps: int, device: torch.device) -> float:
    """Seconds per optimizer step of Hugging Face's `Trainer` on `examples` taken in order (batch s = examples
    s·B … (s+1)·B − 1), over `steps` steps after `warmup` untimed ones (at least one: the clock starts at the
    end of a step)."""
    from transformers import Trainer, TrainerCallback, TrainingArguments

    class Ordered(torch.utils.data.IterableDataset):  # the benchmark's batches, in its order
        def __iter__(self):
            return iter(examples)

    class Loss(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            return peer_loss(model, inputs)

    class Clock(TrainerCallback):
        marks: List[float] = []

        def on_step_end(self, args, state, control, **kwargs):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            Clock.marks.append(time.perf_counter())

    warmup = max(warmup, 1)
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(
            output_dir=tmp,
            per_device_train_batch_size=batch_size,
            max_steps=warmup + steps,
            learning_rate=2e-5,
            bf16=device.type == "cuda",
            gradient_checkpointing=True,
            use_cpu=device.type == "cpu",
            save_strategy="no",
            logging_strategy="no",
            report_to="none",
            remove_unused_columns=False,
            dataloader_drop_last=True,
            disable_tqdm=True,
        )
        Loss(model=model, args=args, train_dataset=Ordered(), callbacks=[Clock()]).train()
    marks = Clock.marks[warmup - 1 :]
    return (marks[-1] - marks[0]) / (len(marks) - 1)
