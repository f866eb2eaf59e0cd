"""Corpora, batching and the Batch the trainer consumes."""

import numpy as np
import pytest
import torch

from jepa_lite.data import (
    DataError,
    TextFile,
    TokenCache,
    TokenizedCorpus,
    collate,
    epoch_batch_table,
    epoch_batches,
    load_corpus,
    load_text_file,
    pad_ids,
    texts_fingerprint,
    token_dtype,
)


def test_epoch_batches_cover_each_line_at_most_once_and_are_reproducible():
    lengths = [i % 37 + 3 for i in range(1000)]
    for grouped in (False, True):
        batches = epoch_batches(lengths, 16, seed=3, epoch=2, group_by_length=grouped)
        flat = [i for b in batches for i in b]
        assert len(batches) == 1000 // 16 and all(len(b) == 16 for b in batches)
        assert len(set(flat)) == len(flat)
        assert batches == epoch_batches(lengths, 16, seed=3, epoch=2, group_by_length=grouped)
        assert batches != epoch_batches(lengths, 16, seed=3, epoch=3, group_by_length=grouped)


def test_grouping_by_length_cuts_padding():
    lengths = [int(x) for x in torch.randint(4, 128, (4096,), generator=torch.Generator().manual_seed(0))]

    def padding(batches):
        return sum(len(b) * max(lengths[i] for i in b) - sum(lengths[i] for i in b) for b in batches) / sum(lengths)

    plain = padding(epoch_batches(lengths, 32, 0, 0, group_by_length=False))
    grouped = padding(epoch_batches(lengths, 32, 0, 0, group_by_length=True))
    assert grouped < 0.1 * plain, (plain, grouped)


def test_pred_index_points_at_pred_mask(tokenized):
    batch = collate(
        tokenized.ids[:12], tokenized.tokenizer, 0.4, 3, torch.Generator().manual_seed(1), pad_to_multiple_of=8
    )
    assert batch.input_ids.shape[1] % 8 == 0
    flat = torch.zeros(batch.pred_mask.numel(), dtype=torch.bool)
    flat[batch.pred_index] = True
    assert torch.equal(flat.view_as(batch.pred_mask), batch.pred_mask)
    assert batch.n_real_tokens == sum(len(x) for x in tokenized.ids[:12])


def test_pad_ids_shapes():
    ids, mask = pad_ids([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]


def test_corpus_padded_equals_pad_ids(tokenized):
    rows = [5, 0, 17, 3, 250]
    a = tokenized.padded(rows, pad_to_multiple_of=8)
    b = pad_ids([tokenized.ids[r] for r in rows], tokenized.tokenizer.pad_token_id, pad_to_multiple_of=8)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert tokenized.ids[3] == tokenized.tokenizer(tokenized.texts[3])["input_ids"]


def test_batch_to_and_tensors_hand_over_the_tensors_themselves(tokenized):
    """No hidden copy per step: `dataclasses.astuple` deep-copies every tensor, `Batch.tensors` must
    not (the CUDA-graph path copies new batches into the tensors it returns), and moving a batch to
    the device it is already on is free."""
    batch = collate(tokenized.ids[:4], tokenized.tokenizer, 0.3, 3, torch.Generator().manual_seed(0))
    assert all(
        a is b
        for a, b in zip(
            batch.tensors(),
            (batch.input_ids, batch.attention_mask, batch.masked_input_ids, batch.pred_mask, batch.pred_index),
        )
    )
    assert all(a is b for a, b in zip(batch.to("cpu").tensors(), batch.tensors()))


# ---------------------------------------------------------------------------------------------
# Streamed tokenisation and the token cache (issue 16)
# ---------------------------------------------------------------------------------------------


def reference_epoch_batches(lengths, batch_size, seed, epoch, group_by_length):
    """The list-based batching the kit used before the tensor version (kept here as the reference)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(len(lengths), generator=g).tolist()
    n_batches = len(lengths) // batch_size
    perm = perm[: n_batches * batch_size]
    if group_by_length:
        chunk = 64 * batch_size
        perm = [i for c in range(0, len(perm), chunk) for i in sorted(perm[c : c + chunk], key=lambda i: lengths[i])]
    batches = [perm[k * batch_size : (k + 1) * batch_size] for k in range(n_batches)]
    if group_by_length:
        batches = [batches[k] for k in torch.randperm(n_batches, generator=g).tolist()]
    return batches


def test_epoch_batch_table_equals_the_list_version():
    lengths = [int(x) for x in torch.randint(3, 60, (3000,), generator=torch.Generator().manual_seed(1))]
    for grouped in (False, True):
        for batch_size in (7, 16):
            table = epoch_batch_table(torch.tensor(lengths), batch_size, seed=5, epoch=1, group_by_length=grouped)
            assert table.tolist() == reference_epoch_batches(lengths, batch_size, 5, 1, grouped)


@pytest.fixture
def text_file(tmp_path, corpus_texts):
    """The built-in corpus with blank lines, padding spaces, CRLF and CR line ends mixed in."""
    p = tmp_path / "text.txt"
    body = "".join(
        f"  {t} \r\n" if k % 3 == 0 else (f"{t}\r" if k % 5 == 0 else f"{t}\n\n") for k, t in enumerate(corpus_texts)
    )
    p.write_bytes(body.encode("utf-8"))
    return p


def test_text_file_streams_the_lines_load_text_file_reads(text_file):
    for max_lines in (None, 100):
        lines = load_text_file(text_file, max_lines)
        streamed = TextFile(text_file, max_lines)
        assert list(streamed) == lines and len(streamed) == len(lines)
        assert streamed.fingerprint == texts_fingerprint(lines)


def test_text_file_refuses_bad_files_before_any_work(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes("fine\n".encode() * 10 + b"caf\xe9\n")
    with pytest.raises(DataError, match="line 11"):
        TextFile(bad)
    (tmp_path / "blank.txt").write_text("\n  \n")
    with pytest.raises(DataError, match="no text"):
        TextFile(tmp_path / "blank.txt")
    with pytest.raises(DataError, match="not found"):
        TextFile(tmp_path / "missing.txt")


def test_streamed_tokenisation_equals_the_tokenizer_line_by_line(text_file, local_tokenizer):
    """The flat uint16 array + offsets hold, for every kept line, exactly the tokenizer's ids of it."""
    corpus = TokenizedCorpus(TextFile(text_file), local_tokenizer, max_length=24)
    assert corpus.flat.dtype == np.uint16 and corpus.texts is None
    lines = load_text_file(text_file)
    expected = [local_tokenizer(t, truncation=True, max_length=24)["input_ids"] for t in lines]
    assert [corpus.ids[i] for i in range(len(corpus))] == expected
    in_memory = TokenizedCorpus(lines, local_tokenizer, max_length=24)
    assert torch.equal(in_memory.padded(range(40))[0], corpus.padded(range(40))[0])


def test_lines_of_special_tokens_only_are_dropped(local_tokenizer):
    corpus = TokenizedCorpus(["the cat", "[MASK] [SEP]", "a dog"], local_tokenizer, max_length=16)
    assert corpus.texts == ["the cat", "a dog"]


def test_token_dtype_is_the_smallest_that_fits():
    assert token_dtype(30_522) == np.uint16 and token_dtype(65_536) == np.uint16
    assert token_dtype(65_537) == np.uint32 and token_dtype(151_000) == np.uint32


def test_token_cache_round_trip_reuse_and_memory_map(tmp_path, text_file, local_tokenizer):
    notes = []
    text = TextFile(text_file)
    built = load_corpus(text, local_tokenizer, 32, cache_folder=tmp_path / "cache", log=notes.append)
    (cache_file,) = (tmp_path / "cache").glob("*.tokens")
    assert notes == [] and not list((tmp_path / "cache").glob("*.tmp"))
    in_memory = TokenizedCorpus(list(text), local_tokenizer, 32)
    rows = [3, 0, 77, len(in_memory) - 1]
    for a, b in zip(built.padded(rows, 8), in_memory.padded(rows, 8)):
        assert torch.equal(a, b)
    assert built.ids[5] == in_memory.ids[5] and built.n_tokens() == in_memory.n_tokens()
    # a second run maps the same file instead of tokenising again
    stamp = cache_file.stat().st_mtime_ns
    again = load_corpus(TextFile(text_file), local_tokenizer, 32, cache_folder=tmp_path / "cache", log=notes.append)
    assert cache_file.stat().st_mtime_ns == stamp and notes == []
    assert torch.equal(again.padded(rows)[0], in_memory.padded(rows)[0])


def test_a_cache_that_does_not_match_is_rebuilt_with_a_notice(tmp_path, text_file, local_tokenizer):
    folder = tmp_path / "cache"
    load_corpus(TextFile(text_file), local_tokenizer, 32, cache_folder=folder, log=print)
    (cache_file,) = folder.glob("*.tokens")
    # the text changes under the same name: same cache file, other fingerprint
    text_file.write_text("a completely different line\nand another one\n", encoding="utf-8")
    notes = []
    corpus = load_corpus(TextFile(text_file), local_tokenizer, 32, cache_folder=folder, log=notes.append)
    assert len(notes) == 1 and "different text" in notes[0] and "rebuilding" in notes[0]
    assert len(corpus) == 2 and corpus.ids[0] == local_tokenizer("a completely different line")["input_ids"]
    # a truncated cache (say a full disk when it was copied) is rebuilt too
    data = cache_file.read_bytes()
    cache_file.write_bytes(data[:-8])
    notes = []
    corpus = load_corpus(TextFile(text_file), local_tokenizer, 32, cache_folder=folder, log=notes.append)
    assert len(notes) == 1 and "truncated" in notes[0] and cache_file.read_bytes() == data


@pytest.mark.parametrize("damage", ["other valid ids", "offsets", "ids beyond the vocabulary"])
def test_a_cache_damaged_on_disk_is_caught_by_its_checksum_and_rebuilt(tmp_path, text_file, local_tokenizer, damage):
    """(Before: only the header and the size were compared; other ids or offsets trained silently on other
    data, ids of 0xFF gave an IndexError at step 1.)"""
    from jepa_lite.data import CACHE_HEADER_BYTES

    folder = tmp_path / "cache"
    first = load_corpus(TextFile(text_file), local_tokenizer, 32, cache_folder=folder, log=print)
    want = [first.ids[i] for i in range(len(first))]
    (cache_file,) = folder.glob("*.tokens")
    data = bytearray(cache_file.read_bytes())
    itemsize, n_tokens = first.flat.dtype.itemsize, first.n_tokens()
    if damage == "other valid ids":  # swap two different ids in the middle: same size, same header, valid ids
        i = CACHE_HEADER_BYTES + itemsize * next(
            k for k in range(n_tokens // 2, n_tokens) if first.flat[k] != first.flat[k + 1]
        )
        data[i : i + 2 * itemsize] = data[i + itemsize : i + 2 * itemsize] + data[i : i + itemsize]
    elif damage == "offsets":
        end = len(data) - 8 * 3
        data[end : end + 8] = (int.from_bytes(data[end : end + 8], "little") - 1).to_bytes(8, "little")
    else:
        data[CACHE_HEADER_BYTES : CACHE_HEADER_BYTES + 4 * itemsize] = b"\xff" * 4 * itemsize
    cache_file.write_bytes(bytes(data))
    notes = []
    again = load_corpus(TextFile(text_file), local_tokenizer, 32, cache_folder=folder, log=notes.append)
    assert len(notes) == 1 and "checksum" in notes[0] and "rebuilding" in notes[0]
    assert [again.ids[i] for i in range(len(again))] == want


def test_a_file_that_is_not_a_cache_is_never_replaced(tmp_path, text_file, local_tokenizer):
    folder = tmp_path / "cache"
    cache = TokenCache.for_text(folder, TextFile(text_file), local_tokenizer, 32)
    folder.mkdir()
    cache.path.write_text("my notes")
    with pytest.raises(DataError, match="not a jepa_lite token cache"):
        load_corpus(TextFile(text_file), local_tokenizer, 32, cache_folder=folder)
    assert cache.path.read_text() == "my notes"


def test_tokenizer_fingerprint_is_stable_and_tells_tokenizers_apart(local_tokenizer):
    from jepa_lite.data import tokenizer_fingerprint
    from jepa_lite.encoders import build_local_tokenizer

    before = tokenizer_fingerprint(local_tokenizer)
    local_tokenizer(["a few words", "more"], truncation=True, max_length=5, padding=True)
    assert tokenizer_fingerprint(local_tokenizer) == before
    assert tokenizer_fingerprint(build_local_tokenizer(["only these other words here"])) != before
