"""Our torch modules as a :class:`engine.backends.Runner` (CPU or CUDA, fp16 on request)."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


class TorchRunner:
    """Our torch module on one device; fp16 only where asked (CUDA)."""

    def __init__(self, module: nn.Module, device: torch.device, half: bool = False) -> None:
        self.device = device
        self.half = half and device.type == "cuda"
        self.module = module.to(device).eval()
        if self.half:
            self.module = self.module.half()
        self.name = f"torch-{device.type}{'-fp16' if self.half else ''}"

    @torch.inference_mode()
    def __call__(self, batch: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(batch)
        if self.device.type == "cuda":
            x = x.pin_memory().to(self.device, non_blocking=True)
        if self.half:
            x = x.half()
        return self.module(x).float().cpu().numpy()
