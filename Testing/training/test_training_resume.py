"""Exact resume: a run stopped and resumed takes the same next steps as an uninterrupted run;
the run folder holds the CSV logs, PNG grids and checkpoint."""

import csv
import os

import pytest
import torch

from testsupport.training import one_torch_thread, tiny_config, training_cache, training_phantom  # noqa: F401

from cmsynth_training.checkpoint import load_checkpoint
from cmsynth_training.trainer import train


def _losses(history):
    return [{k: v for k, v in sorted(h.items())} for h in history]


@pytest.mark.parametrize("task, paired", [("cyclegan", 0.0), ("cyclegan", 10.0), ("unet", 0.0)],
                         ids=["cyclegan", "cyclegan-paired", "unet"])
def test_resume_matches_uninterrupted_run(tmp_path, training_phantom, training_cache, task, paired):
    # 2 epochs x 3 steps; the learning rate decays after epoch 1; stop mid-epoch 1 at step 2
    sections = {"train": {"steps_per_epoch": 3, "epochs": 1, "epochs_decay": 1, "preview_every": 1}}
    if paired:
        sections["train"]["lambda_paired"] = paired
    full = train(tiny_config(task, training_phantom, training_cache, **sections), str(tmp_path / "full"),
                 keep_history=True, echo=False)
    assert full.finished and full.global_step == 6 and len(full.history) == 6

    stop = tiny_config(task, training_phantom, training_cache, **sections)
    stop.train.max_steps = 2
    first = train(stop, str(tmp_path / "split"), keep_history=True, echo=False)
    assert not first.finished and first.global_step == 2
    ck = load_checkpoint(first.checkpoint)
    assert (ck["epoch"], ck["step_in_epoch"], ck["global_step"]) == (0, 2, 2)
    assert set(ck["rng"][0]) == {"python", "numpy", "torch", "cuda"}
    if task == "cyclegan":
        assert len(ck["extra"][0]["pool_A"]["images"]) == 2  # the image pools travel too

    resumed = train(tiny_config(task, training_phantom, training_cache, **sections), str(tmp_path / "split"),
                    resume=first.checkpoint, keep_history=True, echo=False)
    assert resumed.finished and resumed.global_step == 6
    assert _losses(first.history + resumed.history) == _losses(full.history)  # bitwise
    if paired:
        assert all("paired" in h for h in full.history) and ck["config"]["train"]["lambda_paired"] == paired

    a = load_checkpoint(full.checkpoint)
    b = load_checkpoint(resumed.checkpoint)
    for name in a["nets"]:
        for k, v in a["nets"][name].items():
            assert torch.equal(v, b["nets"][name][k]), (name, k)
    assert a["schedulers"] == b["schedulers"]

    # logs: the resumed run's CSV reads like one run; a PNG grid per epoch
    with open(os.path.join(str(tmp_path / "split"), "train_log.csv")) as f:
        steps = [int(r["step"]) for r in csv.DictReader(f)]
    assert steps == [1, 2, 3, 4, 5, 6]
    assert os.path.isfile(str(tmp_path / "split" / "images" / "epoch_001.png"))
    assert os.path.isfile(str(tmp_path / "split" / "images" / "epoch_002.png"))
    assert os.path.isfile(str(tmp_path / "split" / "log.txt"))


def test_resume_rejects_other_task(tmp_path, training_phantom, training_cache):
    from CrossModalitySynthLib.errors import ConfigError

    cfg = tiny_config("unet", training_phantom, training_cache, train={"max_steps": 1, "preview_every": 1})
    r = train(cfg, str(tmp_path / "u"), echo=False)
    other = tiny_config("cyclegan", training_phantom, training_cache)
    with pytest.raises(ConfigError, match="is a 'unet' checkpoint"):
        train(other, str(tmp_path / "c"), resume=r.checkpoint, echo=False)


def test_resume_rejects_another_schedule(tmp_path, training_phantom, training_cache):
    """A longer schedule would restart the decayed learning rate: refused, naming the keys; a new
    max_steps only moves the stop, so it is allowed."""
    from CrossModalitySynthLib.errors import ConfigError

    sections = {"train": {"steps_per_epoch": 2, "epochs": 1, "epochs_decay": 1, "max_steps": 1, "preview_every": 1}}
    r = train(tiny_config("unet", training_phantom, training_cache, **sections), str(tmp_path / "u"), echo=False)
    longer = tiny_config("unet", training_phantom, training_cache, **sections)
    longer.train.epochs, longer.train.epochs_decay = 3, 3
    with pytest.raises(ConfigError) as e:
        train(longer, str(tmp_path / "u"), resume=r.checkpoint, echo=False)
    assert str(e.value) == (
        "{} was trained with train.epochs 1, train.epochs_decay 1; resume it with the same schedule, or train "
        "into a new folder (now train.epochs 3, train.epochs_decay 3).".format(r.checkpoint))
    more = tiny_config("unet", training_phantom, training_cache, **sections)
    more.train.max_steps = 2
    assert train(more, str(tmp_path / "u"), resume=r.checkpoint, echo=False).global_step == 2


def test_validation_and_tensorboard(tmp_path, training_phantom, training_cache):
    """Validation runs on full held-out volumes each epoch and is logged to CSV and TensorBoard."""
    cfg = tiny_config("unet", training_phantom, training_cache, validation=True,
                      train={"epochs": 1, "epochs_decay": 0, "steps_per_epoch": 2, "tensorboard": True})
    r = train(cfg, str(tmp_path / "v"), echo=False)
    assert set(r.metrics) >= {"liver_dice", "liver_iou", "liver_hd95_mm", "n_cases"}
    assert r.metrics["n_cases"] == 2 and 0.0 <= r.metrics["liver_dice"] <= 1.0
    with open(str(tmp_path / "v" / "val_log.csv")) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and float(rows[0]["liver_dice"]) == pytest.approx(r.metrics["liver_dice"], rel=1e-5)
    assert any(n.startswith("events.out.tfevents") for n in os.listdir(str(tmp_path / "v" / "tb")))


def test_worker_processes_do_not_change_the_data(tmp_path, training_phantom, training_cache):
    """Samples are keyed by (seed, epoch, index): DataLoader workers give the same losses."""
    runs = []
    for workers in (0, 2):
        cfg = tiny_config("unet", training_phantom, training_cache,
                          data={"num_workers": workers}, train={"max_steps": 2, "preview_every": 1})
        runs.append(train(cfg, str(tmp_path / "w{}".format(workers)), keep_history=True, echo=False).history)
    assert runs[0] == runs[1] and len(runs[0]) == 2
