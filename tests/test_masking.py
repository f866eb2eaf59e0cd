"""Span masking: the ratio is met, specials are safe, and the two versions agree in distribution."""

import math

import pytest
import torch

from jepa_lite.course.explore import run_lengths  # Counter of masked-run lengths over all rows
from jepa_lite.data import pad_ids
from jepa_lite.masking import mask_batch, mask_spans, sample_span_length, sample_span_mask, special_tokens_mask


def maskable_rows(tokenized, n_rows):
    """(B, L) maskable flags of the first n_rows lines of the corpus, cycling if needed."""
    ids = [tokenized.ids[i % len(tokenized)] for i in range(n_rows)]
    input_ids, attention_mask = pad_ids(ids, tokenized.tokenizer.pad_token_id)
    special = special_tokens_mask(input_ids, tokenized.tokenizer.all_special_ids)
    return input_ids, attention_mask, attention_mask.bool() & ~special


def readable_batch(maskable, ratio, span, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.stack([sample_span_mask(row.tolist(), ratio, span, g) for row in maskable])


@pytest.mark.parametrize("ratio,span", [(0.15, 3), (0.3, 5), (0.5, 2), (0.3, 1)])
def test_masked_fraction_within_002_of_mask_ratio_over_1000_rows(tokenized, ratio, span):
    _, _, maskable = maskable_rows(tokenized, 1000)
    for mask in (
        readable_batch(maskable, ratio, span, 1),
        mask_spans(maskable, ratio, span, torch.Generator().manual_seed(1)),
    ):
        frac = (mask.sum(1).float() / maskable.sum(1).float()).mean().item()
        assert abs(frac - ratio) <= 0.02, (ratio, span, frac)


def test_specials_and_padding_never_masked_and_every_row_has_a_mask(tokenized):
    input_ids, attention_mask, maskable = maskable_rows(tokenized, 300)
    tok = tokenized.tokenizer
    masked_ids, pred_mask = mask_batch(
        input_ids, attention_mask, tok.all_special_ids, tok.mask_token_id, 0.3, 5, torch.Generator().manual_seed(0)
    )
    assert not (pred_mask & ~maskable).any()
    assert (pred_mask.sum(1) >= 1).all()
    assert (masked_ids[pred_mask] == tok.mask_token_id).all()
    assert torch.equal(masked_ids[~pred_mask], input_ids[~pred_mask])
    readable = readable_batch(maskable, 0.3, 5, 0)
    assert not (readable & ~maskable).any()
    assert (readable.sum(1) >= 1).all()


def test_exact_budget_per_row():
    """Each row masks exactly its budget b = max(1, floor(r·n + U)) tokens: floor(r·n) or floor(r·n) + 1."""
    maskable = torch.ones(500, 40, dtype=torch.bool)
    maskable[:, 0] = maskable[:, 30:] = False  # [CLS] and padding
    n = 29
    for mask in (readable_batch(maskable, 0.3, 4, 3), mask_spans(maskable, 0.3, 4, torch.Generator().manual_seed(3))):
        counts = set(mask.sum(1).tolist())
        assert counts <= {math.floor(0.3 * n), math.floor(0.3 * n) + 1}


def test_spans_do_not_cross_special_tokens():
    maskable = torch.ones(200, 21, dtype=torch.bool)
    maskable[:, 10] = False  # a [SEP] in the middle
    for mask in (readable_batch(maskable, 0.6, 8, 0), mask_spans(maskable, 0.6, 8, torch.Generator().manual_seed(0))):
        assert not mask[:, 10].any()


def test_rows_without_maskable_tokens_stay_unmasked():
    maskable = torch.zeros(3, 5, dtype=torch.bool)
    maskable[1, 2] = True
    mask = mask_spans(maskable, 0.3, 3)
    assert mask.tolist() == [[False] * 5, [False, False, True, False, False], [False] * 5]
    assert not sample_span_mask([False] * 4, 0.3, 3).any()


def test_span_lengths_follow_geometric_law_with_requested_mean():
    g = torch.Generator().manual_seed(0)
    for mean in (1.0, 3.0, 5.0):
        lengths = [sample_span_length(mean, g) for _ in range(20000)]
        assert min(lengths) >= 1
        assert abs(sum(lengths) / len(lengths) - mean) < 0.03 * mean
        assert abs(lengths.count(1) / len(lengths) - 1 / mean) < 0.015  # P(ℓ = 1) = p = 1 / mean


def test_readable_and_vectorised_versions_agree_in_distribution(tokenized):
    """Same masked fraction, same distribution of masked-run lengths, same position profile."""
    _, _, maskable = maskable_rows(tokenized, 2000)
    a = readable_batch(maskable, 0.3, 4, 11)
    b = mask_spans(maskable, 0.3, 4, torch.Generator().manual_seed(12))
    assert abs(a.float().sum() / maskable.sum() - b.float().sum() / maskable.sum()) < 0.005
    ra, rb = run_lengths(a), run_lengths(b)
    na, nb = sum(ra.values()), sum(rb.values())
    tv = 0.5 * sum(abs(ra[k] / na - rb[k] / nb) for k in set(ra) | set(rb))
    assert tv < 0.03, tv  # total-variation distance of the run-length histograms
    # probability of being masked, by position (first 16 positions, where every row has tokens)
    pa, pb = a[:, :16].float().mean(0), b[:, :16].float().mean(0)
    assert (pa - pb).abs().max() < 0.05


def test_distribution_test_can_fail(tokenized):
    """The statistics above do tell different span laws apart (mean span 1 vs 4)."""
    _, _, maskable = maskable_rows(tokenized, 2000)
    ra = run_lengths(mask_spans(maskable, 0.3, 1, torch.Generator().manual_seed(0)))
    rb = run_lengths(mask_spans(maskable, 0.3, 4, torch.Generator().manual_seed(0)))
    na, nb = sum(ra.values()), sum(rb.values())
    assert 0.5 * sum(abs(ra[k] / na - rb[k] / nb) for k in set(ra) | set(rb)) > 0.2


@pytest.mark.parametrize("ratio,span", [(1.5, 3), (0.0, 3), (1.0, 3), (0.3, 0.5), (-0.1, 2)])
def test_bad_arguments_raise(ratio, span):
    with pytest.raises(ValueError):
        mask_spans(torch.ones(1, 5, dtype=torch.bool), ratio, span)
    with pytest.raises(ValueError):
        sample_span_mask([True] * 5, ratio, span)
