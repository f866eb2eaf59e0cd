"""Text in, training batches out.

    lines of text ──tokenise once──▶ TokenizedCorpus ──(seed, epoch)──▶ batches of indices ──collate──▶ Batch

A `Batch` carries both views of the same lines: the target view (`input_ids`, the text as is) and the
context view (`masked_input_ids`, spans replaced by [MASK]), plus `pred_mask`, the positions where
the loss is computed.

Every line is tokenised once, up front, with the fast tokenizer in batched mode; a training step only
pads and masks token ids, which is cheap. Which lines go into the batch of step s, and how they are
masked, is a pure function of (seed, s): a resumed run sees exactly the batches the uninterrupted run
would have seen, and a GPU run sees the same batches as a CPU run.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import itertools
import json
import os
import zlib
from collections.abc import Sequence as SequenceABC
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, List, Optional, Sequence

import numpy as np
import torch

from .masking import mask_batch
from .writer import WriteError, atomic_file, check_writable

RESOURCES_DIR = Path(__file__).resolve().parent / "resources"  # package data: ships inside the wheel
BUILTIN_CORPUS = RESOURCES_DIR / "corpus" / "sentences.tsv"


class DataError(ValueError):
    """Input text that cannot be used; the message says what is wrong and what to do."""


# ---------------------------------------------------------------------------------------------
# Corpora
# ---------------------------------------------------------------------------------------------
def builtin_labelled_corpus() -> tuple[List[str], List[str]]:
    """The kit's own corpus: 480 short sentences on 8 topics, and each sentence's topic.

    Returns (sentences, topics). The topics are not used by JEPA training (it is self-supervised);
    they serve the linear probe that checks what the representations learned.
    """
    if not BUILTIN_CORPUS.is_file():
        raise DataError(
            f"the built-in corpus {BUILTIN_CORPUS} is missing: the installed jepa_lite lacks its package data; "
            "reinstall it (pip install --force-reinstall jepa_lite, or pip install -e . in a clone)"
        )
    with open(BUILTIN_CORPUS, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [r["sentence"] for r in rows], [r["topic"] for r in rows]


def builtin_corpus() -> List[str]:
    """The sentences of the built-in corpus (see `builtin_labelled_corpus`)."""
    return builtin_labelled_corpus()[0]


def load_text_file(path: str | os.PathLike, max_lines: Optional[int] = None) -> List[str]:
    """Non-blank lines of a UTF-8 text file, stripped, at most `max_lines` of them.

    Raises DataError for a missing path, a directory, a binary or non-UTF-8 file, or a file with no
    text, so that a bad `--text_file` ends with one clear line instead of a failure later on.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"text file not found: {p}")
    if not p.is_file():
        raise DataError(f"text file is not a regular file: {p}")
    try:
        raw = p.read_bytes()
    except OSError as e:  # no permission, an I/O error, …
        raise DataError(f"cannot read the text file {p}: {e.strerror or e}") from None
    if b"\x00" in raw[:65536]:
        raise DataError(
            f"{p} looks like a binary file (it contains NUL bytes); give a UTF-8 text file, one example per line"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{p} is not valid UTF-8 (byte {e.start}); re-save it as UTF-8 text") from None
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        raise DataError(f"{p} has no text: it is empty or holds only blank lines")
    if max_lines is not None:
        lines = lines[:max_lines]
    return lines


# ---------------------------------------------------------------------------------------------
# Big text files, streamed
# ---------------------------------------------------------------------------------------------
def texts_fingerprint(lines: Iterable[str]) -> str:
    """A short hash of the training lines (sha256 of each line + "\\n"), stored in checkpoints to catch
    resuming on other text, and in token caches to catch a text file that changed."""
    h = hashlib.sha256()
    for t in lines:
        h.update(t.encode("utf-8") + b"\n")
    return h.hexdigest()[:16]


class TextFile:
    """The lines `load_text_file` would return (non-blank, stripped, at most `max_lines`), read from
    disk each time they are iterated instead of held in memory: for files of millions of lines.

    Opening reads the file once, before any other work: it refuses what `load_text_file` refuses (a
    missing path, a folder, a binary or non-UTF-8 file, a file with no text) with one DataError
    line, counts the lines (`len`) and computes `fingerprint` (`texts_fingerprint` of the lines).
    `cut` is True when `max_lines` stopped the reading while the file had more non-blank lines.
    """

    def __init__(self, path: str | os.PathLike, max_lines: Optional[int] = None, progress: bool = False):
        from tqdm.auto import tqdm

        self.path, self.max_lines = Path(path), max_lines
        self.cut = False  # set by _lines on meeting a line past max_lines
        if not self.path.exists():
            raise DataError(f"text file not found: {self.path}")
        if not self.path.is_file():
            raise DataError(f"text file is not a regular file: {self.path}")
        h, n = hashlib.sha256(), 0
        size = self.path.stat().st_size
        with (
            self._open() as f,
            tqdm(total=size, disable=not progress, desc="reading", unit="B", unit_scale=True, leave=False) as bar,
        ):
            try:
                if b"\x00" in f.read(65536):
                    raise DataError(
                        f"{self.path} looks like a binary file (it contains NUL bytes); give a UTF-8 text "
                        "file, one example per line"
                    )
                f.seek(0)
                for line in self._lines(f, bar.update):
                    h.update(line.encode("utf-8") + b"\n")
                    n += 1
            except OSError as e:  # an I/O error, or a file that only looks regular (/proc/self/mem)
                raise DataError(f"cannot read the text file {self.path}: {e.strerror or e}") from None
        if n == 0:
            raise DataError(f"{self.path} has no text: it is empty or holds only blank lines")
        self.n_lines, self.fingerprint = n, h.hexdigest()[:16]

    def _open(self):
        try:
            return open(self.path, "rb")
        except OSError as e:
            raise DataError(f"cannot read the text file {self.path}: {e.strerror}") from None

    def _lines(self, f, advance=lambda n: None) -> Iterator[str]:
        # Split on b"\n" (a byte that never occurs inside a multi-byte UTF-8 character), then as
        # str.splitlines does, so the lines equal load_text_file's for any line endings.
        n = 0
        for number, raw in enumerate(f, 1):
            advance(len(raw))
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(
                    f"{self.path} is not valid UTF-8 (line {number}, byte {e.start}); re-save it as UTF-8 text"
                ) from None
            for line in text.splitlines():
                line = line.strip()
                if line:
                    if self.max_lines is not None and n >= self.max_lines:
                        self.cut = True
                        return
                    n += 1
                    yield line

    def __iter__(self) -> Iterator[str]:
        with self._open() as f:
            yield from self._lines(f)

    def __len__(self) -> int:
        return self.n_lines

    def __bool__(self) -> bool:
        return True  # never empty: opening refuses a file without text


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned integer type that holds every token id: uint16 up to 65,536 ids, else uint32."""
    return np.dtype(np.uint16) if vocab_size <= 1 << 16 else np.dtype(np.uint32)


MAX_CHARS_PER_TOKEN = 256  # a line is cut to max_length × this many characters before it is tokenised


def clip_chars(line: str, max_length: int) -> str:
    """`line` cut to `max_length` × MAX_CHARS_PER_TOKEN characters, so that a pathological line (a
    10 MB string) is never tokenised whole only for its first `max_length` tokens to be kept. Exact
    unless the tokens before the cut average more than MAX_CHARS_PER_TOKEN characters each."""
    return line[: max_length * MAX_CHARS_PER_TOKEN]


def tokenize_lines(
    lines: Iterable[str],
    tokenizer,
    max_length: int,
    write: Callable[[np.ndarray], object],
    n_lines: Optional[int] = None,
    batch_lines: int = 4096,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Tokenise `lines` `batch_lines` at a time (fewer when they hold BATCH_CHARS characters), with
    the tokenizer's special tokens, truncated to `max_length`, and hand each batch's ids to `write`
    as one flat array of `token_dtype`.

    Only one batch is ever held as Python lists (the tokenizer's output costs ~100 bytes per
    token; the flat array 2 or 4). Lines that tokenise to special tokens only are dropped (they
    have nothing to mask). Returns (lengths of the kept lines, int32 (N,); keep, bool, one entry
    per line read).
    """
    from tqdm.auto import tqdm

    dtype = token_dtype(len(tokenizer))
    special = np.array(sorted(set(tokenizer.all_special_ids)), dtype=np.int64)
    lengths, keeps = [], []
    with tqdm(
        total=n_lines, disable=not progress, desc="tokenising", unit=" lines", unit_scale=True, leave=False
    ) as bar:
        for batch in _batched((clip_chars(line, max_length) for line in lines), batch_lines, BATCH_CHARS):
            enc = tokenizer(
                batch,
                truncation=True,
                max_length=max_length,
                padding=False,
                return_attention_mask=False,
                return_token_type_ids=False,
            )["input_ids"]
            n = np.fromiter(map(len, enc), np.int64, len(enc))  # (b,) tokens per line
            ids = np.fromiter(itertools.chain.from_iterable(enc), np.int64, int(n.sum()))  # (tokens of the batch,)
            if ids.size and (ids.min() < 0 or ids.max() >= np.iinfo(dtype).max + 1):
                raise DataError(
                    f"token ids outside 0..{np.iinfo(dtype).max}: the tokenizer's vocabulary is larger than it reports"
                )
            line_of = np.repeat(np.arange(len(n)), n)  # (tokens,) which line each token belongs to
            real = np.bincount(line_of, weights=~np.isin(ids, special), minlength=len(n))  # (b,) non-special tokens
            keep = real > 0
            write(ids[keep[line_of]].astype(dtype))
            lengths.append(n[keep].astype(np.int32))
            keeps.append(keep)
            bar.update(len(batch))
    return np.concatenate(lengths), np.concatenate(keeps)


BATCH_CHARS = 1 << 20  # characters per call of the tokenizer: a call holds off a stop signal (~0.1-0.5 s per MiB)


def _batched(lines: Iterable[str], size: int, max_chars: int) -> Iterator[List[str]]:
    """`lines` in lists of `size` lines, or fewer where they reach `max_chars` characters together."""
    batch, chars = [], 0
    for line in lines:
        batch.append(line)
        chars += len(line)
        if len(batch) == size or chars >= max_chars:
            yield batch
            batch, chars = [], 0
    if batch:
        yield batch


# ---------------------------------------------------------------------------------------------
# Tokenisation, batching
# ---------------------------------------------------------------------------------------------
class TokenizedCorpus:
    """Lines tokenised once, with [CLS]/[SEP] (or the model's own special tokens) added and truncated
    to `max_length`.

    Stored as one flat array of ids (`flat`, uint16 or uint32: `token_dtype`) plus where each line
    starts (`offsets`) and how long it is (`lengths`): 50,000 lines take one array, not 50,000
    Python lists, and a batch is cut out with a few array operations (`padded`). `ids[i]` gives line
    i as a list. Lines that tokenise to nothing but special tokens are dropped (they have nothing to
    mask). `texts` holds the kept lines when the corpus was built from a list, else None.

    `flat` lives in memory, or in a memory-mapped token cache on disk (`TokenCache`, for files
    larger than memory): then only the rows of each batch are read.
    """

    def __init__(self, texts: Iterable[str], tokenizer, max_length: int, progress: bool = False):
        if max_length < 4:
            raise DataError(f"max_length must be at least 4; got {max_length}")
        chunks: List[np.ndarray] = []
        n_lines = len(texts) if hasattr(texts, "__len__") else None
        lengths, keep = tokenize_lines(texts, tokenizer, max_length, chunks.append, n_lines, progress=progress)
        self._set(tokenizer, max_length, np.concatenate(chunks), lengths)
        self.texts = [t for t, k in zip(texts, keep) if k] if isinstance(texts, SequenceABC) else None

    @classmethod
    def from_arrays(cls, flat, lengths: np.ndarray, tokenizer, max_length: int) -> "TokenizedCorpus":
        """A corpus over ids already tokenised: `flat` (an array, or `MappedTokens`) and line lengths."""
        corpus = cls.__new__(cls)
        corpus._set(tokenizer, max_length, flat, lengths)
        corpus.texts = None
        return corpus

    def _set(self, tokenizer, max_length: int, flat, lengths: np.ndarray) -> None:
        if len(lengths) == 0:
            raise DataError("no line has any token to mask after tokenisation")
        self.tokenizer, self.max_length, self.flat = tokenizer, max_length, flat
        self.lengths = torch.from_numpy(np.asarray(lengths, dtype=np.int64))  # (N,)
        self.offsets = torch.cumsum(self.lengths, 0) - self.lengths  # (N,) start of each line in `flat`
        self.ids = _Lines(self)

    def __len__(self) -> int:
        return len(self.lengths)

    def n_tokens(self) -> int:
        """Total number of tokens, special tokens included."""
        return int(self.lengths.sum())

    def padded(self, rows: Sequence[int], pad_to_multiple_of: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Lines `rows`, right-padded: input_ids (B, L) and attention_mask (B, L). Same as `pad_ids`."""
        rows = torch.as_tensor(rows, dtype=torch.long)
        lengths = self.lengths[rows]  # (B,)
        L = -(-int(lengths.max()) // pad_to_multiple_of) * pad_to_multiple_of
        col = torch.arange(L)
        attention_mask = col[None, :] < lengths[:, None]  # (B, L)
        index = (self.offsets[rows][:, None] + col[None, :]).clamp_(max=len(self.flat) - 1)  # (B, L) into flat
        input_ids = torch.from_numpy(self.flat[index.numpy()].astype(np.int64))  # (B, L)
        input_ids.masked_fill_(~attention_mask, self.tokenizer.pad_token_id)
        return input_ids, attention_mask.long()


class _Lines(SequenceABC):
    """Read-only list view of a TokenizedCorpus: `ids[i]` is line i's token ids as a list."""

    def __init__(self, corpus: TokenizedCorpus):
        self.c = corpus

    def __len__(self) -> int:
        return len(self.c)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        start = int(self.c.offsets[i])
        return np.asarray(self.c.flat[start : start + int(self.c.lengths[i])]).tolist()


# ---------------------------------------------------------------------------------------------
# The token cache: tokenise a big file once, memory-map it in every later run
# ---------------------------------------------------------------------------------------------
CACHE_MAGIC = b"jepa_lite-tokens-v1\n"
CACHE_HEADER_BYTES = 4096  # magic + JSON description, padded; the token ids start here


class MappedTokens:
    """The token ids of a cache file, read through a memory map opened anew for each access
    (nanoGPT's habit): the pages a batch touched leave the process with the map, so resident
    memory stays flat however many lines the run visits. The file stays open (and so readable)
    for the corpus's lifetime, even if another run replaces the cache meanwhile."""

    def __init__(self, path: Path, dtype: np.dtype, n_tokens: int):
        self.path, self.dtype, self.n_tokens = path, np.dtype(dtype), n_tokens
        self.file = open(path, "rb")

    def __len__(self) -> int:
        return self.n_tokens

    def __getitem__(self, index) -> np.ndarray:
        tokens = np.memmap(self.file, dtype=self.dtype, mode="r", offset=CACHE_HEADER_BYTES, shape=(self.n_tokens,))
        out = np.array(tokens[index])  # a copy, so the map can close
        del tokens
        return out


@dataclass
class TokenCache:
    """Where the tokens of one text file live on disk, and what they must match.

    The file name comes from the text file's path, the tokenizer's name and `max_length` (so one
    cache per file and model, replaced when the text changes); the header records the text's
    fingerprint (`texts_fingerprint` of its lines), a hash of the whole tokenizer, `max_length`
    and the sizes. A cache whose header does not match is rebuilt, with a notice.

    Layout: CACHE_MAGIC + JSON header, padded to CACHE_HEADER_BYTES; the ids (`token_dtype`),
    padded to 8 bytes; then N + 1 int64 line offsets. Written through `writer.atomic_file` (a
    temporary name of the kit's own, fsync, rename), so a killed run never leaves half a cache.

    The header carries a CRC-32 of the ids and the offsets, computed while they are written. Each
    open reads the file once to check it (`damage`), in 8 MiB pieces (no resident memory beyond the
    piece; 0.37 s for a 440 MB cache already in the page cache on a busy 2-core machine, about 0.7 s
    for the 783 MB cache of the 10 M-line benchmark, plus the disk read if it is cold), with the ids' range
    and the offsets' order: a cache damaged on disk is rebuilt, with a notice, instead of training on
    other data.
    """

    path: Path
    header: dict  # what the cache must hold: fingerprint, tokenizer, max_length, dtype

    @classmethod
    def for_text(cls, folder: str | os.PathLike, text: TextFile, tokenizer, max_length: int) -> "TokenCache":
        name = (
            f"{text.path.resolve()}|{text.max_lines}|{type(tokenizer).__name__}|{tokenizer.name_or_path}|{max_length}"
        )
        key = hashlib.sha256(name.encode("utf-8")).hexdigest()[:12]
        header = {
            "format": CACHE_MAGIC.decode().strip(),
            "text": str(text.path),
            "fingerprint": text.fingerprint,
            "tokenizer": tokenizer_fingerprint(tokenizer),
            "max_length": max_length,
            "dtype": token_dtype(len(tokenizer)).name,
        }
        return cls(Path(folder) / f"{text.path.stem}.{key}.tokens", header)

    def read_header(self) -> Optional[dict]:
        """The header of the file at `path`; None if there is none. DataError if a file there is not a
        token cache (the kit never replaces a file it did not write)."""
        if not self.path.exists():
            return None
        try:
            with open(self.path, "rb") as f:
                head = f.read(CACHE_HEADER_BYTES)
        except OSError as e:
            raise DataError(f"cannot read the token cache {self.path}: {e.strerror}") from None
        if not head.startswith(CACHE_MAGIC):
            raise DataError(
                f"{self.path} exists and is not a jepa_lite token cache; move it away or name another "
                "--token_cache folder"
            )
        try:
            return json.loads(head[len(CACHE_MAGIC) :].rstrip(b"\0 ").decode("utf-8"))
        except ValueError:
            return {}

    def mismatch(self, found: dict) -> Optional[str]:
        """Why a cache with header `found` cannot serve this text (None if it can)."""
        for key, what in (
            ("fingerprint", "different text (the file changed)"),
            ("tokenizer", "another tokenizer"),
            ("max_length", "another max_length"),
            ("dtype", "another id type"),
        ):
            if found.get(key) != self.header[key]:
                return f"it was built from {what}"
        itemsize = np.dtype(self.header["dtype"]).itemsize
        n_lines, n_tokens = found.get("n_lines", -1), found.get("n_tokens", -1)
        if self.path.stat().st_size != CACHE_HEADER_BYTES + _pad8(n_tokens * itemsize) + 8 * (n_lines + 1):
            return "it is truncated or damaged"
        return None

    def load(self, tokenizer, log: Callable[[str], None] = print) -> Optional[TokenizedCorpus]:
        """The cached corpus, memory-mapped; None (with a notice if a stale cache is there) to rebuild."""
        found = self.read_header()
        if found is None:
            return None
        why = self.mismatch(found) or self.damage(found, len(tokenizer))
        if why:
            log(f"note: the token cache {self.path} does not match this run ({why}); rebuilding it")
            return None
        n_lines, n_tokens = found["n_lines"], found["n_tokens"]
        flat = MappedTokens(self.path, np.dtype(found["dtype"]), n_tokens)
        start = CACHE_HEADER_BYTES + _pad8(n_tokens * flat.dtype.itemsize)
        offsets = np.fromfile(self.path, dtype=np.int64, count=n_lines + 1, offset=start)  # (N + 1,)
        return TokenizedCorpus.from_arrays(flat, np.diff(offsets), tokenizer, self.header["max_length"])

    def damage(self, found: dict, vocab_size: int) -> Optional[str]:
        """Why the ids and offsets of the cache (header `found`) are not what was written (None if they
        are): the CRC-32 differs, an id lies outside the vocabulary, or the offsets are out of order."""
        if "crc32" not in found:
            return "it was built by an older jepa_lite, without a checksum"
        n_tokens, dtype = found["n_tokens"], np.dtype(found["dtype"])
        crc, top, ordered, last = 0, -1, True, 0
        with open(self.path, "rb") as f:
            f.seek(CACHE_HEADER_BYTES)
            for chunk in _pieces(f, n_tokens * dtype.itemsize):  # the ids
                crc = zlib.crc32(chunk, crc)
                top = max(top, int(np.frombuffer(chunk, dtype=dtype).max()))
            f.seek(CACHE_HEADER_BYTES + _pad8(n_tokens * dtype.itemsize))
            for chunk in _pieces(f, 8 * (found["n_lines"] + 1)):  # the offsets, (N + 1,) int64
                crc = zlib.crc32(chunk, crc)
                o = np.frombuffer(chunk, dtype=np.int64)
                ordered = ordered and bool(o[0] >= last) and not (np.diff(o) < 0).any()
                last = int(o[-1])
        if found.get("crc32") != crc:
            return "its checksum does not match: the file was changed or damaged on disk"
        if top >= vocab_size or not ordered or last != n_tokens:
            return "it holds ids outside the vocabulary or offsets out of order"
        return None

    def build(self, text: TextFile, tokenizer, progress: bool = False) -> None:
        """Tokenise `text` straight into a new cache file (only the offsets are held in memory), with a
        running CRC-32 of what is written (`damage` checks it)."""
        self.read_header()  # refuses a file that is not a cache, before any work
        folder = self.path.parent
        if os.path.lexists(folder) and not folder.is_dir():
            raise DataError(f"--token_cache {folder} is a file, not a folder; name a folder (or auto, or off)")
        try:
            check_writable(folder, "the token cache", "--token_cache folder (or auto, or off)")
        except WriteError as e:
            raise DataError(f"--token_cache {folder}: {e}") from None
        folder.mkdir(parents=True, exist_ok=True)
        crc = 0

        def write(ids: np.ndarray) -> None:
            nonlocal crc
            ids = np.ascontiguousarray(ids)
            crc = zlib.crc32(ids, crc)
            f.write(ids)

        try:
            with atomic_file(self.path, "wb", "the token cache") as f:
                f.write(b"\0" * CACHE_HEADER_BYTES)
                lengths, _ = tokenize_lines(
                    text, tokenizer, self.header["max_length"], write, len(text), progress=progress
                )
                if len(lengths) == 0:
                    raise DataError("no line has any token to mask after tokenisation")
                n_tokens = int(lengths.sum(dtype=np.int64))
                f.write(b"\0" * (_pad8(f.tell()) - f.tell()))
                offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int64)  # (N + 1,)
                crc = zlib.crc32(offsets, crc)
                f.write(offsets)
                head = CACHE_MAGIC + json.dumps(
                    {**self.header, "n_lines": len(lengths), "n_tokens": n_tokens, "crc32": crc}
                ).encode("utf-8")
                if len(head) > CACHE_HEADER_BYTES:
                    raise DataError(
                        f"the token cache header is too long (text path of {len(str(text.path))} characters)"
                    )
                f.seek(0)
                f.write(head)
        except WriteError as e:
            raise DataError(f"{e}; free some space, or choose another --token_cache folder (or off)") from None


def _pieces(f, nbytes: int, piece: int = 8 << 20) -> Iterator[bytes]:
    """The next `nbytes` of file `f`, in pieces of at most `piece` bytes (a multiple of 8)."""
    while nbytes > 0:
        chunk = f.read(min(piece, nbytes))
        if not chunk:
            return
        nbytes -= len(chunk)
        yield chunk


def _pad8(n: int) -> int:
    return -(-n // 8) * 8


def tokenizer_fingerprint(tokenizer) -> str:
    """A hash of everything that decides a tokenizer's ids: its full serialisation (fast tokenizers),
    else its vocabulary; plus its class and special tokens. Stable across calls of the tokenizer."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:  # without the truncation and padding settings, which each call may change
        body = json.dumps(
            {k: v for k, v in json.loads(backend.to_str()).items() if k not in ("truncation", "padding")},
            sort_keys=True,
        )
    else:
        body = json.dumps(sorted(tokenizer.get_vocab().items()))
    extra = json.dumps([type(tokenizer).__name__, sorted(tokenizer.all_special_ids)])
    return hashlib.sha256((body + extra).encode("utf-8")).hexdigest()[:16]


def load_corpus(
    texts: Iterable[str],
    tokenizer,
    max_length: int,
    cache_folder: Optional[str | os.PathLike] = None,
    progress: bool = False,
    log: Callable[[str], None] = print,
) -> TokenizedCorpus:
    """The tokenised corpus of `texts`: in memory, or, for a `TextFile` with a `cache_folder`, from
    its token cache there (built first if missing or stale, reused by later runs and resumes)."""
    if max_length < 4:
        raise DataError(f"max_length must be at least 4; got {max_length}")
    if cache_folder is None or not isinstance(texts, TextFile):
        return TokenizedCorpus(texts, tokenizer, max_length, progress=progress)
    cache = TokenCache.for_text(cache_folder, texts, tokenizer, max_length)
    corpus = cache.load(tokenizer, log)
    if corpus is None:
        cache.build(texts, tokenizer, progress=progress)
        corpus = cache.load(tokenizer, log)
    return corpus


@dataclass
class Batch:
    """Both views of B lines, padded to the longest line L of the batch."""

    input_ids: torch.Tensor  # (B, L) target view: the text as is
    attention_mask: torch.Tensor  # (B, L) 1 = real token, 0 = padding
    masked_input_ids: torch.Tensor  # (B, L) context view: [MASK] at the masked spans
    pred_mask: torch.Tensor  # (B, L) bool: positions where the loss is computed
    # (N,) the same positions as flat indices into B·L, listed on the host: the trainer gathers the masked
    # rows with it without a host sync, and pads it for CUDA graphs (fastpath.FastJEPA, fastpath.with_pred_capacity)
    pred_index: torch.Tensor

    def tensors(self) -> tuple:
        """The fields, in order, as the tensors themselves (`dataclasses.astuple` would deep-copy each)."""
        return tuple(getattr(self, f.name) for f in dataclasses.fields(self))

    def to(self, device) -> "Batch":
        """Copy to `device`. To a GPU the tensors go through pinned (page-locked) host memory first:
        a copy from ordinary memory makes the host wait until the GPU has finished all the work
        queued before it, a copy from pinned memory is only queued, so the next batch can be
        prepared while the GPU still runs the current step."""
        device = torch.device(device)
        pin = device.type == "cuda" and self.input_ids.device.type == "cpu"
        return Batch(*((t.pin_memory() if pin else t).to(device, non_blocking=True) for t in self.tensors()))

    @property
    def n_real_tokens(self) -> int:
        """Non-padding tokens in the batch (what throughput is counted in)."""
        return int(self.attention_mask.sum())


def pad_ids(
    id_lists: Sequence[Sequence[int]], pad_id: int, pad_to_multiple_of: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id lists to the longest one (rounded up to a multiple of `pad_to_multiple_of`).

    Returns input_ids (B, L) and attention_mask (B, L).
    """
    lengths = torch.tensor([len(x) for x in id_lists])  # (B,)
    L = int(lengths.max())
    L = -(-L // pad_to_multiple_of) * pad_to_multiple_of
    attention_mask = (torch.arange(L)[None, :] < lengths[:, None]).long()  # (B, L)
    input_ids = torch.full((len(id_lists), L), pad_id, dtype=torch.long)
    # one flat tensor of all ids, scattered row by row into the real positions (row-major order)
    input_ids[attention_mask.bool()] = torch.tensor([i for ids in id_lists for i in ids], dtype=torch.long)
    return input_ids, attention_mask


def collate(
    id_lists: Sequence[Sequence[int]],
    tokenizer,
    mask_ratio: float,
    mean_span_len: float,
    generator: Optional[torch.Generator] = None,
    pad_to_multiple_of: int = 1,
) -> Batch:
    """Pad token ids, then mask spans (`masking.mask_batch`) to build the context view. On the host.

    Masking on the host (vectorised, about a millisecond for 64 rows of 128 tokens) lets a GPU run
    the previous step meanwhile, and gives the GPU the masked positions as ready-made indices: the
    GPU never has to stop and report how many tokens were masked.
    """
    input_ids, attention_mask = pad_ids(id_lists, tokenizer.pad_token_id, pad_to_multiple_of)
    return make_batch(input_ids, attention_mask, tokenizer, mask_ratio, mean_span_len, generator)


def make_batch(input_ids, attention_mask, tokenizer, mask_ratio: float, mean_span_len: float, generator=None) -> Batch:
    """Padded target view (B, L) → Batch with the context view, `pred_mask` and `pred_index`."""
    masked_input_ids, pred_mask = mask_batch(
        input_ids,
        attention_mask,
        tokenizer.all_special_ids,
        tokenizer.mask_token_id,
        mask_ratio,
        mean_span_len,
        generator,
    )
    pred_index = pred_mask.flatten().nonzero().squeeze(1)  # (N,)
    return Batch(input_ids, attention_mask, masked_input_ids, pred_mask, pred_index)


def epoch_batches(
    lengths: Sequence[int], batch_size: int, seed: int, epoch: int, group_by_length: bool = False
) -> List[List[int]]:
    """The batches of one epoch, as lists of line indices (`epoch_batch_table`, as lists)."""
    return epoch_batch_table(torch.as_tensor(lengths), batch_size, seed, epoch, group_by_length).tolist()


def epoch_batch_table(
    lengths: torch.Tensor, batch_size: int, seed: int, epoch: int, group_by_length: bool = False
) -> torch.Tensor:
    """The batches of one epoch: a (batches, batch_size) tensor of line indices.

    A fresh permutation of the lines per epoch, drawn from a generator seeded with (seed, epoch); the
    incomplete last batch is dropped. With `group_by_length`, the permutation is cut into chunks of
    64 batches, each chunk sorted by line length (stable) and split into batches, and the batches
    shuffled: lines of similar length share a batch, so little compute goes to padding, and batches
    still come in random order. Tensors, not lists: 10 million lines take 80 MB, not a gigabyte.
    """
    n_items = len(lengths)
    if batch_size > n_items:
        raise DataError(f"batch_size {batch_size} is larger than the data ({n_items} lines)")
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    n_batches = n_items // batch_size
    perm = torch.randperm(n_items, generator=g)[: n_batches * batch_size]  # (batches · B,)
    if group_by_length:
        chunk = 64 * batch_size
        for c in range(0, len(perm), chunk):
            part = perm[c : c + chunk]
            perm[c : c + chunk] = part[torch.sort(lengths[part], stable=True).indices]
    batches = perm.view(n_batches, batch_size)  # (batches, B)
    if group_by_length:
        batches = batches[torch.randperm(n_batches, generator=g)]
    return batches


def step_generator(seed: int, step: int) -> torch.Generator:
    """The random generator that masks the batch of step `step`: seeded with (seed, step)."""
    return torch.Generator().manual_seed(seed * 1_000_003 + 7919 * step + 1)


class StepBatches:
    """The batches of a training run, indexed by optimizer step: `plan[step]` is the host-side Batch
    of step `step`, and `plan.lines(step)` the corpus lines in it.

    Step s is batch s mod E of epoch s div E (E = batches per epoch, see `epoch_batches`), masked with
    `step_generator(seed, s)`: a pure function of (seed, s), so the batches can be made in any order
    and by any thread.
    """

    def __init__(
        self,
        corpus: TokenizedCorpus,
        batch_size: int,
        seed: int,
        mask_ratio: float,
        mean_span_len: float,
        group_by_length: bool,
        pad_to_multiple_of: int = 1,
    ):
        self.corpus, self.batch_size, self.seed = corpus, batch_size, seed
        self.mask_ratio, self.mean_span_len = mask_ratio, mean_span_len
        self.group_by_length, self.pad_to_multiple_of = group_by_length, pad_to_multiple_of
        self.per_epoch = len(corpus) // batch_size
        self._epoch: tuple[int, torch.Tensor] = (-1, torch.empty(0))  # the batches of the last epoch asked for

    def lines(self, step: int) -> List[int]:
        """Indices of the corpus lines in the batch of step `step`."""
        epoch, k = divmod(step, self.per_epoch)
        if self._epoch[0] != epoch:
            self._epoch = (
                epoch,
                epoch_batch_table(self.corpus.lengths, self.batch_size, self.seed, epoch, self.group_by_length),
            )
        return self._epoch[1][k].tolist()

    def __getitem__(self, step: int) -> Batch:
        input_ids, attention_mask = self.corpus.padded(self.lines(step), self.pad_to_multiple_of)
        generator = step_generator(self.seed, step)
        batch = make_batch(
            input_ids, attention_mask, self.corpus.tokenizer, self.mask_ratio, self.mean_span_len, generator
        )
        return batch
