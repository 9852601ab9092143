"""Checkpoints that resume a run exactly.

A checkpoint (``torch.save`` of plain containers, readable with ``torch.load(weights_only=True)``)
holds:

- ``task``, ``config`` (the full configuration as a dict), ``format``;
- ``epoch`` (0-based, the epoch in progress), ``step_in_epoch`` (batches of it already done),
  ``global_step``, ``finished``, ``wall_time_s`` (training time so far), ``device``, ``world_size``;
- ``nets``, ``optimizers``, ``schedulers``: state dicts;
- ``extra``: per rank, the task's own state (the image pools);
- ``rng``: per rank, the states of Python's ``random``, NumPy's global generator, torch (CPU and
  every CUDA device);
- ``metrics`` (the last validation), ``history`` (validation per epoch), ``data`` (what the
  model was trained on), ``grid`` (the model-grid spec) - what the export writes into a bundle.

Data order and augmentation are functions of (seed, epoch, index), so with the states above the
next step after a resume is the step an uninterrupted run would have taken.
"""

import os
import random
from typing import Any, Dict

import numpy as np
import torch

from CrossModalitySynthLib.errors import InputError

CHECKPOINT_FORMAT = 1


def rng_state() -> Dict[str, Any]:
    """The global RNG states of Python, NumPy and torch as plain containers and tensors."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": [int(version), [int(v) for v in internal], gauss],
        "numpy": [str(name), torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((int(version), tuple(int(v) for v in internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys.numpy(), dtype=np.uint32), int(pos), int(has_gauss), float(cached)))
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def save_checkpoint(path: str, payload: Dict[str, Any]) -> str:
    """Write ``payload`` atomically (temporary file, then rename). Returns ``path``."""
    payload = dict(payload)
    payload["format"] = CHECKPOINT_FORMAT
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = "{}.tmp{}".format(path, os.getpid())
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def load_checkpoint(path: str, map_location="cpu") -> Dict[str, Any]:
    """Read a training checkpoint; a missing or unreadable file is an :class:`InputError`."""
    if not os.path.isfile(path):
        raise InputError("Checkpoint {} not found; give the .pt file a training run wrote (e.g. OUT/checkpoints/last.pt).".format(path))
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling problem means an unusable file
        raise InputError("{} is not a readable training checkpoint ({}).".format(path, type(exc).__name__)) from None
    if not isinstance(ckpt, dict) or "task" not in ckpt or "nets" not in ckpt:
        raise InputError("{} is not a CrossModalitySynth training checkpoint.".format(path))
    if int(ckpt.get("format", 0)) > CHECKPOINT_FORMAT:
        raise InputError("{} was written by a newer version of the training code; update it.".format(path))
    return ckpt
