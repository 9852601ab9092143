"""DDP with 2 real processes (gloo on the CPU, torch.multiprocessing.spawn): the run completes,
the replicas' parameters stay identical, each rank trains on its own shard, only rank 0 writes."""

import os
import socket

import torch
import torch.multiprocessing as mp

from test_training_support import one_torch_thread, tiny_dict, training_cache, training_phantom  # noqa: F401

from training.data import EpochSampler, UnpairedSlices


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, cfg_dict: dict, out: str, dump: str) -> None:
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                       "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank)})
    torch.set_num_threads(1)
    from training.config import config_from_dict
    from training.distributed import DistInfo, shutdown
    from training.trainer import train

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
    from training.checkpoint import load_checkpoint

    ck = load_checkpoint(os.path.join(out, "checkpoints", "last.pt"))
    assert ck["world_size"] == 2 and len(ck["rng"]) == 2 and len(ck["extra"]) == 2  # every rank's state


def test_distributed_sampler_shards_are_disjoint(training_phantom, training_cache):
    from test_training_support import tiny_config
    from training.trainer import build_task

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
