"""Shared fixtures and helpers of the training tests (no tests here).

``training_phantom``: 6 small phantom cases written once per test session (shared by pytest-xdist
workers through an atomic rename); ``tiny_config``: a configuration of the given task with tiny
networks, 32 x 32 crops of a 6 mm grid and a few steps, so each run takes seconds on a CPU.
"""

import os
import shutil
import tempfile

import pytest

N_CASES = 6
PHANTOM_SEED = 4242
TRAIN_CASES = ["case_000", "case_001", "case_002", "case_003"]
VAL_CASES = ["case_004", "case_005"]


def _write_phantom(target: str) -> str:
    if os.path.isdir(target):
        return target
    from CrossModalitySynthLib.phantom import write_cases

    parent = os.path.dirname(target)
    tmp = tempfile.mkdtemp(prefix=".phantom-", dir=parent)
    try:
        write_cases(os.path.join(tmp, "cases"), n_cases=N_CASES, seed=PHANTOM_SEED, size="small")
        try:
            os.rename(os.path.join(tmp, "cases"), target)
        except OSError:  # another xdist worker was first
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


@pytest.fixture(scope="session")
def training_phantom(tmp_path_factory) -> str:
    """Folder with case_000 ... case_005 (small phantom), shared by all training tests."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if base.name.startswith("popen-gw") else base
    return _write_phantom(str(shared / "training_phantom_{}".format(PHANTOM_SEED)))


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Training tests run with one torch thread: with two pytest workers on two cores, more
    threads only oversubscribe the CPU (several times slower)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def training_cache(tmp_path_factory) -> str:
    """A preprocessing cache shared by the tests of one worker (keys include the grid spec)."""
    return str(tmp_path_factory.mktemp("training_cache"))


def tiny_dict(task: str, root: str, cache: str, validation: bool = False, **sections) -> dict:
    """The dict form of a tiny configuration; ``sections`` update single sections."""
    d = {
        "seed": 0,
        "data": {
            "root": root,
            "cases": list(TRAIN_CASES),
            "mr_sequences": ["t1_in"],
            "grid": {"spacing": [6.0, 6.0, None]},
            "load_size": 36,
            "crop_size": 32,
            "cache_dir": cache,
        },
        "val": {"root": root if validation else None, "cases": list(VAL_CASES)},
        "model": {"ngf": 8, "n_blocks": 2, "ndf": 8, "unet_channels": [4, 8, 16], "unet_strides": [2, 2], "num_res_units": 1},
        "train": {
            "epochs": 1,
            "epochs_decay": 1,
            "steps_per_epoch": 3,
            "batch_size": 2 if task == "unet" else 1,
            "log_every": 1,
            "tensorboard": False,
            "num_threads": 1,
            "progress": False,
            "preview_every": 1,
        },
    }
    if task == "unet":
        d["train"].update({"lr": 1e-3, "beta1": 0.9})
    for key, value in sections.items():
        if isinstance(value, dict):
            d.setdefault(key, {}).update(value)
        else:
            d[key] = value
    return d


def tiny_config(task: str, root: str, cache: str, validation: bool = False, **sections):
    from cmsynth_training.config import config_from_dict

    return config_from_dict(tiny_dict(task, root, cache, validation, **sections), task)
