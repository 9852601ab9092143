"""The training loop shared by all tasks: epochs, checkpoints, exact resume, logs, DDP.

Per epoch: the sampler prepares this rank's ``(epoch, index)`` keys, each batch goes through
``task.train_step``; at the end of the epoch the learning rates step (constant, then linear
decay), rank 0 validates on full held-out volumes, writes a PNG grid and ``checkpoints/last.pt``.
A run stops early at ``train.max_steps`` or ``train.max_wall_time_s`` (a checkpoint is written
first), so ``--resume OUT/checkpoints/last.pt`` continues exactly where it stopped.
"""

import os
import random
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from CrossModalitySynthLib.errors import ConfigError

from .checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .config import Config, trained_seg_loss
from .data import EpochSampler, default_cache_dir
from .distributed import DistInfo, barrier, broadcast_object, gather_objects, init_distributed, mean_over_ranks
from .logs import RunLogger
from .task import Task, cpu_amp_warning


def task_class(name: str):
    if name == "cyclegan":
        from .cyclegan import CycleGANTask

        return CycleGANTask
    if name == "essnet":
        from .essnet import EssNetTask

        return EssNetTask
    if name == "unet":
        from .unet import UNetTask

        return UNetTask
    raise ConfigError("The {!r} task has no training loop of its own; use cyclegan, essnet or unet.".format(name))


@dataclass
class RunResult:
    """What a run did: per-step losses (when kept), the last validation, the checkpoint."""

    out: str
    checkpoint: Optional[str]
    global_step: int
    epoch: int
    finished: bool
    wall_time_s: float
    metrics: Dict[str, float] = field(default_factory=dict)
    history: List[Dict[str, float]] = field(default_factory=list)
    task: Optional[Task] = field(default=None, repr=False)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


def build_task(cfg: Config, dist: Optional[DistInfo] = None, out: str = "", log: Optional[RunLogger] = None,
               cache_dir: Optional[str] = None, length: Optional[int] = None) -> Task:
    """Seeded task with its data set (the cache is built by rank 0 first); no optimisers yet."""
    dist = dist or DistInfo(device=torch.device("cpu"))
    seed_everything(cfg.seed)
    task = task_class(cfg.task)(cfg, dist, log)
    cache = cache_dir or default_cache_dir(cfg, out or ".")
    if dist.is_main:
        task.build_data(cache, length)
    barrier(dist)
    if not dist.is_main:
        task.build_data(cache, length)
    return task


def _epoch_length(cfg: Config, dist: DistInfo) -> Optional[int]:
    """Virtual data set length giving ``steps_per_epoch`` batches on every rank (None = natural)."""
    spe = cfg.train.steps_per_epoch
    return spe * cfg.train.batch_size * dist.world_size if spe else None


#: The train keys that fix a run's schedule: a resumed run must keep them (max_steps and
#: max_wall_time_s only stop a run, so they may change).
SCHEDULE_KEYS = ("epochs", "epochs_decay", "steps_per_epoch", "batch_size", "lr")


def _check_schedule(ckpt: Dict[str, Any], t: Any, resume: str) -> None:
    """Refuse to resume ``ckpt`` under another schedule (it would not continue the same run)."""
    saved = (ckpt.get("config") or {}).get("train") or {}
    changed = [k for k in SCHEDULE_KEYS if k in saved and saved[k] != getattr(t, k)]
    if changed:
        raise ConfigError(
            "{} was trained with {}; resume it with the same schedule, or train into a new folder (now {}).".format(
                resume, ", ".join("train.{} {}".format(k, saved[k]) for k in changed),
                ", ".join("train.{} {}".format(k, getattr(t, k)) for k in changed)))


def train(cfg: Config, out: str, resume: Optional[str] = None, keep_history: bool = False,
          echo: bool = True) -> RunResult:
    """Run (or resume) the training of ``cfg.task`` into folder ``out``; returns a :class:`RunResult`."""
    t = cfg.train
    if t.num_threads:
        torch.set_num_threads(t.num_threads)
    dist = init_distributed(t.device)
    ckpt = load_checkpoint(resume) if resume else None
    if ckpt is not None:
        if ckpt["task"] != cfg.task:
            raise ConfigError("{} is a '{}' checkpoint; resume it with the '{}' task.".format(resume, ckpt["task"], ckpt["task"]))
        if int(ckpt.get("world_size", 1)) != dist.world_size:
            raise ConfigError(
                "{} was written by a run with {} process(es); resume it with the same number (now {}).".format(
                    resume, ckpt.get("world_size", 1), dist.world_size
                )
            )
        _check_schedule(ckpt, t, resume)
        trained = trained_seg_loss(ckpt)
        if trained is not None and t.seg_loss is not None and trained != t.seg_loss:
            raise ConfigError(
                "{} was trained with train.seg_loss {}; resume it with the same loss (set train.seg_loss: {}), "
                "not {}.".format(resume, trained, trained, t.seg_loss)
            )
    if t.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    elif dist.device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    log = RunLogger(out, enabled=dist.is_main, tensorboard=t.tensorboard,
                    resume_step=int(ckpt["global_step"]) if ckpt else None, echo=echo)
    task = build_task(cfg, dist, out, log, length=_epoch_length(cfg, dist))
    task.setup_training()
    total_epochs = t.epochs + t.epochs_decay
    epoch, step_in_epoch, global_step, wall_before = 0, 0, 0, 0.0
    metrics: Dict[str, float] = {}
    val_history: List[Dict[str, Any]] = []
    if ckpt is not None:
        for name, net in task.nets.items():
            net.load_state_dict(ckpt["nets"][name])
        for name, opt in task.optimizers.items():
            opt.load_state_dict(ckpt["optimizers"][name])
        for name, sch in task.schedulers.items():
            sch.load_state_dict(ckpt["schedulers"][name])
        task.load_extra_state(ckpt["extra"][dist.rank])
        epoch, step_in_epoch, global_step = int(ckpt["epoch"]), int(ckpt["step_in_epoch"]), int(ckpt["global_step"])
        wall_before = float(ckpt.get("wall_time_s", 0.0))
        metrics = dict(ckpt.get("metrics") or {})
        val_history = list(ckpt.get("history") or [])
        set_rng_state(ckpt["rng"][dist.rank])
        log.info("resumed from {} at epoch {}, step {} (global step {})".format(resume, epoch + 1, step_in_epoch, global_step))
    else:
        log.info("task {} on {} (world size {}, bf16 autocast {}); output {}".format(
            cfg.task, dist.device, dist.world_size, "on" if task.amp else "off", out))
        log.info("data: {}".format(task.data_summary))
        if dist.enabled:
            log.info("DDP: effective batch {} x {} ranks = {}; learning rate {:g} (train.lr_scaling {})".format(
                t.batch_size, dist.world_size, t.batch_size * dist.world_size, task.base_lr, t.lr_scaling))
    note = cpu_amp_warning(task.amp, dist.device)
    if note:
        log.info(note)

    sampler = EpochSampler(task.dataset, dist.world_size, dist.rank, cfg.seed, t.batch_size)
    workers = cfg.data.num_workers
    loader = DataLoader(
        task.dataset,
        batch_size=t.batch_size,
        sampler=sampler,
        num_workers=workers,
        pin_memory=dist.device.type == "cuda",
        persistent_workers=workers > 0,
        drop_last=True,
        # the iterator's base seed comes from this generator, not the global torch RNG, whose
        # state the checkpoint restores (worker seeds do not matter: samples are keyed)
        generator=torch.Generator().manual_seed(cfg.seed),
    )
    if sampler.batches_per_epoch() < 1:
        raise ConfigError("An epoch has no full batch: lower train.batch_size or add data.")

    history: List[Dict[str, float]] = []
    start = time.time()
    finished = False
    stop = False
    ckpt_dir = os.path.join(out, "checkpoints")
    last_path = os.path.join(ckpt_dir, "last.pt")

    def elapsed() -> float:
        return wall_before + time.time() - start

    def save(path: str, finished_flag: bool = False) -> str:
        extra = gather_objects(task.extra_state(), dist)
        rngs = gather_objects(rng_state(), dist)
        if not dist.is_main:
            return path
        payload = {
            "task": cfg.task,
            "config": cfg.to_dict(),
            "epoch": epoch,
            "step_in_epoch": step_in_epoch,
            "global_step": global_step,
            "finished": finished_flag,
            "wall_time_s": elapsed(),
            "device": str(dist.device) + (" (bf16 autocast)" if task.amp else ""),
            "device_name": torch.cuda.get_device_name(dist.device) if dist.device.type == "cuda" else "CPU",
            "world_size": dist.world_size,
            "total_epochs": total_epochs,
            "nets": {k: v.state_dict() for k, v in task.nets.items()},
            "optimizers": {k: v.state_dict() for k, v in task.optimizers.items()},
            "schedulers": {k: v.state_dict() for k, v in task.schedulers.items()},
            "extra": extra,
            "rng": rngs,
            "metrics": metrics,
            "history": val_history,
            "data": task.data_summary,
            "grid": task.spec.to_dict(),
        }
        return save_checkpoint(path, payload)

    def should_stop(epoch_end: bool = False) -> bool:
        if t.max_steps is not None and global_step >= t.max_steps:
            return True
        if t.max_wall_time_s is not None:
            if not dist.enabled:
                return elapsed() >= t.max_wall_time_s
            # every rank must take the same decision: rank 0's clock, asked at the same steps on
            # every rank (every train.stop_check_every steps and at each epoch end), so the
            # collective call is not paid on every step
            if not epoch_end and global_step % t.stop_check_every:
                return False
            return bool(broadcast_object(elapsed() >= t.max_wall_time_s, dist))
        return False

    try:
        if epoch >= total_epochs or (t.max_steps is not None and global_step >= t.max_steps):
            stop = True
            finished = epoch >= total_epochs
        while not stop and epoch < total_epochs:
            n_batches = sampler.set_epoch(epoch, step_in_epoch)
            per_epoch = sampler.batches_per_epoch()
            bar = tqdm(total=per_epoch, initial=step_in_epoch, desc="epoch {}/{}".format(epoch + 1, total_epochs),
                       disable=not (dist.is_main and t.progress), dynamic_ncols=True, leave=False,
                       mininterval=1.0 if os.isatty(2) else 30.0)
            acc: Dict[str, torch.Tensor] = {}
            acc_n, acc_t = 0, time.time()
            for i, batch in enumerate(loader):
                losses = task.train_step(batch)
                global_step += 1
                step_in_epoch += 1
                bar.update(1)
                for k, v in losses.items():
                    acc[k] = acc.get(k, 0) + v
                acc_n += 1
                if keep_history:
                    history.append({k: float(v) for k, v in losses.items()})
                if acc_n >= t.log_every or step_in_epoch == per_epoch:
                    means = mean_over_ranks({k: float(v) / acc_n for k, v in acc.items()}, dist)
                    log.train(global_step, epoch, task.lr, means, (time.time() - acc_t) / acc_n)
                    bar.set_postfix({k: "{:.3g}".format(v) for k, v in list(means.items())[:4]})
                    acc, acc_n, acc_t = {}, 0, time.time()
                last_of_epoch = step_in_epoch == per_epoch
                if not last_of_epoch:
                    if t.checkpoint_every_steps and global_step % t.checkpoint_every_steps == 0:
                        save(last_path)
                    if should_stop():
                        save(last_path)
                        log.info("stopped at global step {} (epoch {}, step {}); checkpoint {}".format(
                            global_step, epoch + 1, step_in_epoch, last_path))
                        stop = True
                        break
            bar.close()
            if stop:
                break
            if n_batches and step_in_epoch != per_epoch:  # pragma: no cover - defensive
                raise RuntimeError("epoch ended after {} of {} batches".format(step_in_epoch, per_epoch))
            # ---- end of epoch ------------------------------------------------------------
            for sch in task.schedulers.values():
                sch.step()
            if dist.is_main:
                if cfg.val.root is not None and (epoch + 1) % cfg.val.every == 0:
                    v0 = time.time()
                    m = task.validate()
                    if m:
                        metrics = dict(m)
                        val_history.append({"epoch": epoch + 1, "step": global_step, **metrics})
                        log.validation(global_step, epoch, {**metrics, "seconds": time.time() - v0})
                if t.preview_every and (epoch + 1) % t.preview_every == 0:
                    rows, titles = task.preview()
                    log.image_grid(epoch, rows, titles, global_step)
            epoch += 1
            step_in_epoch = 0
            finished = epoch >= total_epochs
            save(last_path, finished)
            if dist.is_main and t.keep_epoch_checkpoints:
                save(os.path.join(ckpt_dir, "epoch_{:03d}.pt".format(epoch)), finished)
            barrier(dist)
            if not finished and should_stop(epoch_end=True):
                log.info("stopped after epoch {} (global step {}); checkpoint {}".format(epoch, global_step, last_path))
                stop = True
        if finished:
            log.info("finished {} epochs, {} steps, {:.0f} s; checkpoint {}".format(total_epochs, global_step, elapsed(), last_path))
    finally:
        log.close()
    return RunResult(out, last_path if dist.is_main else None, global_step, epoch, finished, elapsed(), metrics, history, task)
