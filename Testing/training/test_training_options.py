"""Training options of the step and of DDP runs: bad values are refused with one sentence,
linear lr scaling, and ``train.compile`` wrapping the CycleGAN step's modules."""

import pytest
import torch

from testsupport.training import one_torch_thread, tiny_config, tiny_dict, training_cache, training_phantom  # noqa: F401

from CrossModalitySynthLib.errors import ConfigError
from cmsynth_training.config import config_from_dict


@pytest.mark.parametrize("key, value, words", [
    ("lr_scaling", "sqrt", "train.lr_scaling 'sqrt' is unknown; use none or linear."),
    ("compile", "max", "train.compile 'max' is unknown; use off, default or reduce-overhead."),
    ("stop_check_every", 0, "train.stop_check_every must be a whole number of steps, 1 or more (got 0)."),
    ("stop_check_every", 2.5, "Configuration key 'train.stop_check_every' must be int, got 2.5."),
])
def test_bad_step_options_are_refused_with_one_sentence(training_phantom, training_cache, key, value, words):
    with pytest.raises(ConfigError) as err:
        config_from_dict(tiny_dict("cyclegan", training_phantom, training_cache, train={key: value}), "cyclegan")
    assert str(err.value) == words


def test_compile_is_refused_for_tasks_without_it(training_phantom, training_cache):
    with pytest.raises(ConfigError, match="train.compile is offered for the cyclegan task only; set it to off for unet."):
        config_from_dict(tiny_dict("unet", training_phantom, training_cache, train={"compile": "default"}), "unet")


def test_linear_lr_scaling_is_the_plain_lr_in_one_process(training_phantom, training_cache):
    from cmsynth_training.trainer import build_task

    task = build_task(tiny_config("cyclegan", training_phantom, training_cache, train={"lr_scaling": "linear", "lr": 3e-4}),
                      cache_dir=training_cache)
    task.setup_training()
    assert task.base_lr == 3e-4 and task.optimizers["G"].param_groups[0]["lr"] == 3e-4


def test_compile_option_wraps_the_step_modules(training_phantom, training_cache):
    # Only the wiring is checked: compiling and running a step on this 2-core CPU took 7.8
    # minutes (Inductor's C++ compile), too long for CI; the option is for GPU runs and is
    # documented as not measured.
    from cmsynth_training.trainer import build_task

    for mode, compiled in (("off", False), ("reduce-overhead", True)):
        t = build_task(tiny_config("cyclegan", training_phantom, training_cache, train={"compile": mode}),
                       cache_dir=training_cache)
        t.setup_training()
        assert hasattr(t.gen, "_orig_mod") is compiled and hasattr(t.dis, "_orig_mod") is compiled
        if compiled:
            assert t.gen._orig_mod.G_A is t.nets["G_A"]
