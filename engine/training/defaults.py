"""Default training hyper-parameters per network; light to import (the CLI's --help reads them).

Learning rates are low on purpose: the pretrained networks move fast under AdamW (their gradients
are large), and the aim is to adapt them, not to retrain them.
"""

from __future__ import annotations

DEFAULTS: dict[str, dict[str, float | int]] = {
    "rec": {"epochs": 10, "batch_size": 16, "lr": 1e-4},
    "det": {"epochs": 10, "batch_size": 4, "lr": 2e-5},
}
