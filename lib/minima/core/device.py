"""Device selection: ``"auto"`` means CUDA when present, else CPU."""
from __future__ import annotations

import torch


def resolve(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"``/``None`` -> ``cuda`` if available else ``cpu``; anything else is passed to torch."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
