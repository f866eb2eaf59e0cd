import pytest
import torch

from jepa_lite.data import TokenizedCorpus, builtin_corpus
from jepa_lite.encoders import build_local_tokenizer


@pytest.fixture(scope="session")
def corpus_texts():
    return builtin_corpus()


@pytest.fixture(scope="session")
def local_tokenizer(corpus_texts):
    return build_local_tokenizer(corpus_texts)


@pytest.fixture(scope="session")
def tokenized(corpus_texts, local_tokenizer):
    return TokenizedCorpus(corpus_texts, local_tokenizer, max_length=64)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
