"""DDP with 2 real processes (gloo on the CPU, torch.multiprocessing.spawn): the run completes,
the replicas' parameters stay identical, each rank trains on its own shard, only rank 0 writes."""

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from testsupport.training import one_torch_thread, tiny_dict, training_cache, training_phantom  # noqa: F401

from cmsynth_training.data import EpochSampler, UnpairedSlices


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, cfg_dict: dict, out: str, dump: str) -> None:
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                       "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank)})
    torch.set_num_threads(1)
    from cmsynth_training.config import config_from_dict
    from cmsynth_training.distributed import DistInfo, shutdown
    from cmsynth_training.trainer import train

    result = train(config_from_dict(cfg_dict, "cyclegan"), out, keep_history=True, echo=False)
    torch.save({
        "params": {n: {k: v.clone() for k, v in net.state_dict().items()} for n, net in result.task.nets.items()},
        "checkpoint": result.checkpoint,
        "history": result.history,
    }, os.path.join(dump, "rank{}.pt".format(rank)))
    shutdown(DistInfo(rank, world))


def test_ddp_two_processes_keep_replicas_identical(tmp_path, training_phantom, training_cache):
    cfg = tiny_dict("cyclegan", training_phantom, training_cache,
                    train={"steps_per_epoch": 2, "epochs": 1, "epochs_decay": 0, "preview_every": 1})
    out, dump = str(tmp_path / "run"), str(tmp_path / "dump")
    os.makedirs(dump)
    mp.spawn(_worker, args=(2, _free_port(), cfg, out, dump), nprocs=2, join=True)
    r0 = torch.load(os.path.join(dump, "rank0.pt"), weights_only=False)
    r1 = torch.load(os.path.join(dump, "rank1.pt"), weights_only=False)
    for name, params in r0["params"].items():
        for k, v in params.items():
            assert torch.equal(v, r1["params"][name][k]), (name, k)
    # each rank computed its own losses (different data) and only rank 0 wrote the checkpoint
    assert len(r0["history"]) == len(r1["history"]) == 2
    assert r0["history"][0]["cycle_A"] != r1["history"][0]["cycle_A"]
    assert r0["checkpoint"] and r1["checkpoint"] is None
    assert os.path.isfile(os.path.join(out, "checkpoints", "last.pt"))
    from cmsynth_training.checkpoint import load_checkpoint

    ck = load_checkpoint(os.path.join(out, "checkpoints", "last.pt"))
    assert ck["world_size"] == 2 and len(ck["rng"]) == 2 and len(ck["extra"]) == 2  # every rank's state


def test_distributed_sampler_shards_are_disjoint(training_phantom, training_cache):
    from testsupport.training import tiny_config
    from cmsynth_training.trainer import build_task

    task = build_task(tiny_config("cyclegan", training_phantom, training_cache), cache_dir=training_cache)
    ds = task.dataset
    assert isinstance(ds, UnpairedSlices)
    shards = []
    for rank in range(2):
        s = EpochSampler(ds, 2, rank, seed=0, batch_size=1)
        s.set_epoch(3)
        shards.append({i for _, i in s})
    assert shards[0] and not (shards[0] & shards[1])
    # the same epoch gives the same keys; another epoch another order
    s = EpochSampler(ds, 2, 0, seed=0, batch_size=1)
    s.set_epoch(3)
    first = list(s)
    s.set_epoch(3)
    assert list(s) == first
    s.set_epoch(4)
    assert list(s) != first


def test_ddp_logs_rank_means_scales_lr_and_agrees_on_the_stop_every_n_steps(tmp_path, training_phantom, training_cache):
    # stop as soon as any check is made (a wall-time limit already passed); the ranks ask every
    # 3 steps, so the run must stop at global step 3 of an epoch of 5, not at step 1
    cfg = tiny_dict("cyclegan", training_phantom, training_cache,
                    train={"steps_per_epoch": 5, "epochs": 1, "epochs_decay": 0, "log_every": 1,
                           "max_wall_time_s": 1e-9, "stop_check_every": 3, "lr_scaling": "linear",
                           "lr": 1e-4})
    out, dump = str(tmp_path / "run"), str(tmp_path / "dump")
    os.makedirs(dump)
    mp.spawn(_worker, args=(2, _free_port(), cfg, out, dump), nprocs=2, join=True)
    r0 = torch.load(os.path.join(dump, "rank0.pt"), weights_only=False)
    r1 = torch.load(os.path.join(dump, "rank1.pt"), weights_only=False)
    assert len(r0["history"]) == len(r1["history"]) == 3

    import csv

    with open(os.path.join(out, "train_log.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    for row, h0, h1 in zip(rows, r0["history"], r1["history"]):
        for key in ("G", "cycle_A", "D_A"):
            # the log has 6 significant digits; the ranks' own values lie outside that tolerance
            mean = (h0[key] + h1[key]) / 2
            assert h0[key] != pytest.approx(mean, rel=1e-5), key  # the ranks saw different data
            assert float(row[key]) == pytest.approx(mean, rel=1e-5), key
        assert float(row["lr"]) == pytest.approx(2e-4)  # linear scaling: 1e-4 x 2 ranks

    from cmsynth_training.checkpoint import load_checkpoint

    ck = load_checkpoint(os.path.join(out, "checkpoints", "last.pt"))
    assert ck["global_step"] == 3 and not ck["finished"]
    assert ck["optimizers"]["G"]["param_groups"][0]["lr"] == pytest.approx(2e-4)
    with open(os.path.join(out, "log.txt")) as f:
        log = f.read()
    assert "effective batch 1 x 2 ranks = 2; learning rate 0.0002 (train.lr_scaling linear)" in log
