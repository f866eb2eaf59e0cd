"""NL-RX-SYNTH, the paper's own data: the official split, unchanged, and the kit's validation carve-out.

LLM-JEPA (arXiv 2509.14252) reports its headline fine-tuning gains on NL-RX-SYNTH (Locascio et al.,
EMNLP 2016): English descriptions of regular expressions (Text) and the regexes (Code), 8,000 training
and 2,000 test pairs in the official repository's chat JSONL. The kit ships both files as package data
(`jepa_lite/resources/nl_rx_synth/`, Apache-2.0, see NOTICE.md there) and checks their sha256 on load.

    lines with words with a number and a character or the string 'dog'   →   \\b(([0-9])&(.))|(dog)\\b

Choices (λ, learning rate) need a split the test set never takes part in, so `splits()` carves a
**validation** set out of the training file: `n_val` pairs drawn with a fixed seed from the training
pairs that (a) occur once in the file and (b) share neither their Text nor their Code with the kit's
pretraining corpus (`SEEN_IN_PRETRAINING`, recomputed by the tests), so the pretrained start has never
seen a validation pair. The rest of the training file is the training split; the test file is the test
split, scored once per run.

    from jepa_lite.paired import nlrx
    s = nlrx.splits()                       # {"train": 7000 pairs, "val": 1000, "test": 2000}
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from pathlib import Path
from typing import Dict, List

from ..data import RESOURCES_DIR
from .pairs import Pair, PairsError, load_jsonl

FOLDER = RESOURCES_DIR / "nl_rx_synth"
FILES = {"train": FOLDER / "synth_train.jsonl", "test": FOLDER / "synth_test.jsonl"}
# sha256 of the files as published at galilai-group/llm-jepa@6d7d0d1 (datasets/synth_{train,test}.jsonl)
SHA256 = {
    "train": "ca959f108fb5a9c363910bca46cd9de69ead3bac016ed2564c74be39ba634e46",
    "test": "acfce67c9284bb97dc0b89ad9412b00f6464faf2dfbd2581dd4930140716e45d",
}
SIZES = {"train": 8000, "test": 2000}
# 0-based lines of synth_train.jsonl whose Text or Code is a document of the kit's pretraining corpus
# (jepa_lite/resources/kit_lm's recipe; tests/test_nlrx.py recomputes the list). None of the test file's 2,000 is.
SEEN_IN_PRETRAINING = (729, 1145, 2341, 2361, 3928, 3938, 4371, 4965, 5741, 7001, 7567, 7659, 7898)
N_VAL = 1000  # validation pairs carved from the training file
VAL_SEED = 2509  # the carve-out's seed (the paper's arXiv number)


def sha256(path: Path) -> str:
    """The hex sha256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load(split: str) -> List[Pair]:
    """The official "train" or "test" file as pairs, in file order, after checking its sha256."""
    if split not in FILES:
        raise ValueError(f"split must be 'train' or 'test'; got {split!r}")
    path = FILES[split]
    if not path.is_file():
        raise PairsError(f"{path} is missing: reinstall jepa_lite (the NL-RX-SYNTH files ship with it)")
    if sha256(path) != SHA256[split]:
        raise PairsError(f"{path} is not the official NL-RX-SYNTH {split} file (sha256 differs): reinstall jepa_lite")
    return load_jsonl(path)


def val_indices(train: List[Pair], n_val: int = N_VAL, seed: int = VAL_SEED) -> List[int]:
    """The lines of the training file that form the validation split, sorted.

    Candidates: pairs that occur exactly once in the file and are not in `SEEN_IN_PRETRAINING`;
    `n_val` of them are drawn with `random.Random(seed)`.
    """
    counts = Counter(train)
    seen = set(SEEN_IN_PRETRAINING)
    candidates = [i for i, p in enumerate(train) if counts[p] == 1 and i not in seen]
    if not 1 <= n_val <= len(candidates):
        raise ValueError(f"n_val must lie between 1 and {len(candidates)}; got {n_val}")
    return sorted(random.Random(seed).sample(candidates, n_val))


def splits(n_val: int = N_VAL, seed: int = VAL_SEED) -> Dict[str, List[Pair]]:
    """{"train", "val", "test"}: the training file less the validation carve-out, the carve-out, the test file."""
    train = load("train")
    chosen = set(val_indices(train, n_val, seed))
    return {
        "train": [p for i, p in enumerate(train) if i not in chosen],
        "val": [train[i] for i in sorted(chosen)],
        "test": load("test"),
    }
