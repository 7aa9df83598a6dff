"""Our torch modules as a :class:`engine.backends.Runner` (CPU or CUDA; fp16 or bf16 on CUDA).

On CUDA the input is staged through a pinned host buffer that is reused (grown when a batch is
larger), so the host-to-device copy is a DMA without a fresh page-locked allocation per call, and
16-bit precision is autocast: convolutions and matrix products in fp16/bf16, normalisation and
softmax kept in fp32 by torch's autocast rules, weights kept in fp32.
"""

from __future__ import annotations

import threading

import numpy as np
import torch
from torch import nn

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


class PinnedStaging:
    """A page-locked host buffer reused across calls (CUDA only)."""

    def __init__(self) -> None:
        self._buffer: torch.Tensor | None = None
        self._lock = threading.Lock()

    def to_device(self, batch: np.ndarray, device: torch.device) -> torch.Tensor:
        """Copy a float32 array to ``device`` through the pinned buffer."""
        n = batch.size
        with self._lock:
            if self._buffer is None or self._buffer.numel() < n:
                self._buffer = torch.empty(n, dtype=torch.float32, pin_memory=True)
            staged = self._buffer[:n].view(batch.shape)
            staged.numpy()[...] = batch
            out = staged.to(device, non_blocking=True)
            # the buffer is reused by the next call: wait until this copy has left it
            torch.cuda.current_stream(device).synchronize()
        return out


class TorchRunner:
    """Our torch module on one device; 16-bit autocast where asked (the engine asks on CUDA only;
    the tests run the same autocast path with bf16 on the CPU)."""

    def __init__(self, module: nn.Module, device: torch.device, half: str | bool | None = None) -> None:
        self.device = device
        if half is True:
            half = "fp16"
        self.dtype = DTYPES[half] if half else None
        self.module = module.to(device).eval()
        self.staging = PinnedStaging() if device.type == "cuda" else None
        suffix = {torch.float16: "-fp16", torch.bfloat16: "-bf16"}.get(self.dtype, "") if self.dtype else ""
        self.name = f"torch-{device.type}{suffix}"

    @property
    def half(self) -> bool:
        return self.dtype is not None

    @torch.inference_mode()
    def __call__(self, batch: np.ndarray) -> np.ndarray:
        if self.staging is None:
            x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
        else:
            x = self.staging.to_device(np.ascontiguousarray(batch, dtype=np.float32), self.device)
        if self.dtype is None:
            return self.module(x).cpu().numpy()
        with torch.autocast(device_type=self.device.type, dtype=self.dtype):
            y = self.module(x)
        return y.float().cpu().numpy()
