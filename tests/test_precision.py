"""The precision rule of both trainers: bf16 only with native bf16, fp16 + loss scaling below, fp32 elsewhere."""

import pytest
import torch

from jepa_lite.errors import ConfigError
from jepa_lite.precision import BF16, FP16, FP32, grad_scaler, resolve_precision

CUDA = torch.device("cuda")


@pytest.mark.parametrize(
    "capability, expected", [((7, 5), FP16), ((7, 0), FP16), ((8, 0), BF16), ((8, 6), BF16), ((9, 0), BF16)]
)
def test_auto_on_cuda_follows_compute_capability(capability, expected):
    assert resolve_precision("auto", CUDA, capability=capability) == expected


@pytest.mark.parametrize("device", ["cpu", "mps"])
def test_auto_is_fp32_off_cuda(device):
    assert resolve_precision("auto", torch.device(device)) == FP32


def test_explicit_choices():
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", CUDA, capability=(9, 0)) == FP32
    assert resolve_precision("bf16", cpu) == BF16
    assert resolve_precision("fp16", CUDA, capability=(9, 0)) == FP16
    with pytest.raises(ConfigError, match="fp16 needs a CUDA GPU"):
        resolve_precision("fp16", cpu)
    with pytest.raises(ConfigError, match="precision must be one of"):
        resolve_precision("int8", cpu)


def test_only_fp16_gets_a_grad_scaler():
    cpu = torch.device("cpu")
    assert grad_scaler(FP32, cpu) is None and grad_scaler(BF16, cpu) is None
    assert isinstance(grad_scaler(FP16, cpu), torch.amp.GradScaler)
