"""Device selection and seeding."""

from __future__ import annotations

import pytest
import torch

from model.device import make_runtime, resolve_device, seed_everything


def test_auto_picks_cuda_only_when_available() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_explicit_cuda_without_a_gpu_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="CUDA is not available.*use device 'auto' or 'cpu'"):
        resolve_device("cuda")


def test_unknown_device_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        resolve_device("tpu")


def test_cpu_runtime_is_plain_float32() -> None:
    runtime = make_runtime("cpu", amp=True, compile=True)
    assert runtime.amp_dtype is None and not runtime.channels_last and not runtime.pin_memory
    assert runtime.num_workers == 0 and not runtime.compile
    model = runtime.maybe_compile(runtime.prepare_model(torch.nn.Linear(2, 2)))
    assert isinstance(model, torch.nn.Linear)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_runtime_uses_bf16_channels_last_and_pinned_memory() -> None:
    runtime = make_runtime("cuda")
    assert runtime.channels_last and runtime.pin_memory
    assert runtime.amp_dtype == (torch.bfloat16 if torch.cuda.is_bf16_supported() else None)
    x = runtime.to_device(torch.zeros(2, 3, 8, 8))
    assert x.is_cuda and x.is_contiguous(memory_format=torch.channels_last)


def test_seed_everything_repeats_random_streams() -> None:
    first = seed_everything(5)
    a = (torch.rand(3), torch.randperm(10, generator=first))
    second = seed_everything(5)
    b = (torch.rand(3), torch.randperm(10, generator=second))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
