"""Loaded models kept between requests (``cmsynth worker``): keyed by the bundle's spec sha256 and
the engine options, least recently used evicted beyond a count or a memory cap.

A model's memory is counted as the size of its bundle's files (the weights it holds), a floor
for what the loaded network takes.
"""

import os
from collections import OrderedDict
from typing import List, Optional, Tuple

from .engine import EngineOptions, LoadedModel, load_model


def _key(bundle, options: EngineOptions) -> Tuple:
    spec = bundle.spec
    digest = spec.get("spec_sha256") or os.path.abspath(bundle.path)
    return (digest, options.device, options.precision, options.backend, options.batch_size,
            options.memory_budget_mb, options.threads, options.force)


def bundle_bytes(bundle) -> int:
    files = bundle.spec.get("files") or {}
    return int(sum(int((f or {}).get("size", 0)) for f in files.values()))


class ModelCache:
    """``get(bundle, options)`` loads a model once and returns it again while it stays cached."""

    def __init__(self, max_models: int = 4, max_bytes: Optional[int] = None) -> None:
        if max_models < 1:
            raise ValueError("max_models must be at least 1")
        self.max_models = max_models
        self.max_bytes = max_bytes
        self._models: "OrderedDict[Tuple, Tuple[LoadedModel, int]]" = OrderedDict()
        #: ids of the models a request found already loaded (reset by :meth:`new_request`)
        self.reused: List[str] = []

    def new_request(self) -> None:
        self.reused = []

    def get(self, bundle, options: Optional[EngineOptions] = None) -> LoadedModel:
        options = options or EngineOptions()
        key = _key(bundle, options)
        if key in self._models:
            self._models.move_to_end(key)
            self.reused.append(bundle.id)
            return self._models[key][0]
        model = load_model(bundle, options)
        self._models[key] = (model, bundle_bytes(bundle))
        self._evict(keep=key)
        return model

    def _evict(self, keep: Tuple) -> None:
        def total() -> int:
            return sum(size for _, size in self._models.values())

        while len(self._models) > 1 and (
            len(self._models) > self.max_models or (self.max_bytes is not None and total() > self.max_bytes)
        ):
            oldest = next(iter(self._models))
            if oldest == keep:  # pragma: no cover - the newest is last, never the oldest with 2+
                break
            del self._models[oldest]

    def __len__(self) -> int:
        return len(self._models)
