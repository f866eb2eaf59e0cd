"""Corpora, batching and the Batch the trainer consumes."""

import torch

from jepa_lite.data import collate, epoch_batches, pad_ids


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
    batch = collate(tokenized.ids[:12], tokenized.tokenizer, 0.4, 3, torch.Generator().manual_seed(1), pad_to_multiple_of=8)
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
    assert all(a is b for a, b in zip(batch.tensors(), (batch.input_ids, batch.attention_mask, batch.masked_input_ids, batch.pred_mask, batch.pred_index)))
    assert all(a is b for a, b in zip(batch.to("cpu").tensors(), batch.tensors()))
