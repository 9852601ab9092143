"""The fake-image pool of the CycleGAN reference (Shrivastava et al.): size 50.

Until the pool is full every generated image is stored and returned. Afterwards each image is,
with probability 0.5, swapped with a random stored one (the stored one is returned and the new
one kept), otherwise returned as is. The discriminators therefore see a history of generator
outputs, which damps oscillation.

The pool draws from its own :class:`random.Random`, whose state is part of
:meth:`state_dict`, so a resumed run continues bit for bit.
"""

import random
from typing import Any, Dict, List

import torch


class ImagePool:
    """History buffer of generated images; ``size`` 0 disables it (query returns its input)."""

    def __init__(self, size: int = 50, seed: int = 0):
        self.size = int(size)
        self.images: List[torch.Tensor] = []
        self.rng = random.Random(int(seed))

    def __len__(self) -> int:
        return len(self.images)

    @torch.no_grad()
    def query(self, images: torch.Tensor) -> torch.Tensor:
        """``images`` (N, C, H, W) -> a batch of the same shape (detached)."""
        images = images.detach()
        if self.size == 0:
            return images
        out = []
        for img in images:
            img = img.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(img.clone())
                out.append(img)
            elif self.rng.uniform(0, 1) > 0.5:
                k = self.rng.randint(0, self.size - 1)
                old = self.images[k].clone()
                self.images[k] = img.clone()
                out.append(old)
            else:
                out.append(img)
        return torch.cat(out, 0)

    def state_dict(self) -> Dict[str, Any]:
        """Stored images (on the CPU) and the RNG state, loadable with ``weights_only=True``."""
        version, internal, gauss = self.rng.getstate()
        return {
            "size": self.size,
            "images": [t.detach().cpu() for t in self.images],
            "rng": [int(version), [int(v) for v in internal], gauss],
        }

    def load_state_dict(self, state: Dict[str, Any], device=None) -> None:
        self.size = int(state["size"])
        self.images = [t.to(device) if device is not None else t for t in state["images"]]
        version, internal, gauss = state["rng"]
        self.rng.setstate((int(version), tuple(int(v) for v in internal), gauss))
