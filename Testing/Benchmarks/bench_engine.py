"""Inference engine speed on a CHAOS-size phantom MRI (not a test): slices/s vs a reference loop,
and end-to-end seconds for sCT + liver.

Measured in ONE process, configurations interleaved round by round (every other round in reverse
order) so that all of them see the same machine load (the load average and the CPU/wall ratio of
every measurement are recorded). The headline ratio is the median over rounds of the ratio to the
same round's reference loop, with its quartiles: this VM's speed drifts by up to 2x within minutes.

1. Throughput, per generator (the paper-size ResNet-9, 2 -> 1 channels, ngf 64, random weights,
   model grid = the MRI's own 256 x 256 grid; and the trained demo bundle when present):
   - reference loop: fp32, batch 1, eager torch, ``with torch.no_grad(): net(x)`` per slice of
     the prepared volume (network time only: preparation is not counted against it);
   - the engine's ``synthesize()`` (prepare + network in batches + restore) for every backend and
     precision: the engine default (precision auto: bf16 only for a bundle with a passing gate
     record), torch fp32 (optimised), torch fp32 eager, torch bf16 (optimised),
     torch bf16 autocast (eager), ONNX Runtime fp32; reported as slices/s and as a ratio to the
     reference loop, with |HU difference| vs the eager fp32 engine output inside the body.
2. Network-level variants on one batch (paper-size generator): eager / channels-last / torch.jit
   freeze / optimize_for_inference / autocast / optimised paths / ONNX Runtime optimisation
   levels / batch sizes / thread counts (``--compile`` adds torch.compile, with its compile time).
3. End to end, sCT + liver for a 256 x 256 x 40 MRI, both through the engine (including prepare
   and restore; model loading reported separately): (i) paper-size generator + default MONAI
   U-Net (16..256), (ii) with ``--paper-bundle``, a trained paper-size generator + the same U-Net,
   (iii) the demo bundles when present.

Targets (issue 4): engine >= 3x the reference loop; sCT + liver for 256 x 256 x 40 under 15 s.

Usage::

    .venv/bin/python Testing/Benchmarks/bench_engine.py --json bench_engine.json [--threads 2]
        [--rounds 2] [--slices N] [--batch 8] [--skip-variants] [--skip-e2e] [--skip-demo] [--compile]
        [--paper-bundle demo_output/paper_chaos_bundle] [--only-default]
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time

import numpy as np
import SimpleITK as sitk
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # Testing/ (testsupport)

from testsupport.bundles import make_test_bundle  # noqa: E402
from testsupport.machine import cpu_model  # noqa: E402
from CrossModalitySynthLib.inference import EngineOptions, load_model, segment, synthesize  # noqa: E402
from CrossModalitySynthLib.inference.precision import gate_statistics  # noqa: E402
from CrossModalitySynthLib.inference.runners import FastResnetGenerator, TorchRunner  # noqa: E402
from CrossModalitySynthLib.phantom import make_case  # noqa: E402
from CrossModalitySynthLib.preprocess import prepare  # noqa: E402
from CrossModalitySynthLib.registry import load_bundle  # noqa: E402

MODELS = os.path.join(HERE, "..", "..", "CrossModalitySynth", "Resources", "Models")
DEMO_GEN, DEMO_LIVER = "demo-t1dual-to-ct", "demo-liver-unet-t1in"
TARGET_RATIO, TARGET_E2E_S = 3.0, 15.0
ONLY_DEFAULT = False  # --only-default

def load1() -> float:
    return round(os.getloadavg()[0], 2)

def timed(fn):
    """(result, wall s, cpu s, load average before)."""
    la = load1()
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0, la

def summarise(samples):
    walls = sorted(s["wall_s"] for s in samples)
    best = min(samples, key=lambda s: s["wall_s"])
    return {"best_wall_s": best["wall_s"], "median_wall_s": walls[len(walls) // 2], "cpu_s_at_best": best["cpu_s"],
            "load_at_best": best["load"], "loads": [s["load"] for s in samples], "walls": [s["wall_s"] for s in samples]}

def demo_bundle(name):
    folder = os.path.join(MODELS, name)
    if not os.path.isfile(os.path.join(folder, "spec.json")):
        return None
    try:
        return load_bundle(folder)
    except Exception as exc:  # noqa: BLE001
        print(f"  (demo bundle {name} not usable: {exc})")
        return None

def crop_slices(img: sitk.Image, n: int) -> sitk.Image:
    z = img.GetSize()[2]
    if n is None or n >= z:
        return img
    z0 = (z - n) // 2
    return img[:, :, z0:z0 + n]

def resample_to_slices(img: sitk.Image, n: int) -> sitk.Image:
    """The same volume with exactly ``n`` slices (nearest slice, spacing adjusted): 256x256xN inputs."""
    arr = sitk.GetArrayFromImage(img)
    z = arr.shape[0]
    if z == n:
        return img
    idx = np.round(np.linspace(0, z - 1, n)).astype(int)
    out = sitk.GetImageFromArray(np.ascontiguousarray(arr[idx]))
    sp = list(img.GetSpacing())
    sp[2] = sp[2] * (z - 1) / (n - 1)
    out.SetSpacing(sp)
    out.SetOrigin(img.GetOrigin())
    out.SetDirection(img.GetDirection())
    return out

def engine_model(bundle, backend="torch", precision="fp32", optimize=True):
    model = load_model(bundle, EngineOptions(device="cpu", backend=backend, precision=precision))
    if backend == "torch" and not optimize:
        model.runner = TorchRunner(model.runner.net, "cpu", precision, optimize=False)
    return model

ENGINE_CONFIGS = [
    ("engine default (precision auto)", dict(backend="torch", precision="auto", optimize=True)),
    ("torch fp32 optimised", dict(backend="torch", precision="fp32", optimize=True)),
    ("torch fp32 eager", dict(backend="torch", precision="fp32", optimize=False)),
    ("torch bf16 optimised", dict(backend="torch", precision="bf16", optimize=True)),
    ("torch bf16 autocast (eager)", dict(backend="torch", precision="bf16", optimize=False)),
    ("onnx fp32", dict(backend="onnx", precision="fp32", optimize=True)),
]

def bench_throughput(label, bundle, images, body, rounds, batch, warmup=False):
    """Reference loop vs engine configurations on the same volume, interleaved."""
    print(f"\n== Throughput: {label} ==")
    spec = bundle.spec
    models, load_s = {}, {}
    for name, cfg in ENGINE_CONFIGS[:1] if ONLY_DEFAULT else ENGINE_CONFIGS:
        if cfg["backend"] == "onnx" and not os.path.isfile(bundle.file("model.onnx")):
            continue
        _, dt, _, _ = timed(lambda: models.__setitem__(name, engine_model(bundle, **cfg)))
        load_s[name] = dt
    if ONLY_DEFAULT:  # the reference network: the bundle's own, eager fp32
        models_ref = engine_model(bundle, precision="fp32", optimize=False)
    else:
        models_ref = models["torch fp32 eager"]
    ref_net = models_ref.runner.net

    grid = models_ref.grid_spec
    prepared = prepare(list(images), grid, modality=spec["inputs"][0]["modality"], names=models_ref.input_sequences)
    arr = prepared.array  # (C, Z, Y, X)
    z = arr.shape[1]
    slices = [torch.from_numpy(np.ascontiguousarray(arr[:, i][None])) for i in range(z)]

    def reference_loop():
        with torch.no_grad():
            return [ref_net(s) for s in slices]

    samples = {name: [] for name in ["reference loop"] + list(models)}
    outputs = {}
    for r in range(-1 if warmup else 0, rounds):  # round -1: warm-up, not recorded
        # every other round in reverse order (A B B A ...): a machine that speeds up or slows down
        # during a round does not favour whichever configuration always runs first
        for name in (list(samples) if r % 2 == 0 else list(samples)[::-1]):
            if r < 0:
                reference_loop() if name == "reference loop" else synthesize(models[name], images)
                continue
            if name == "reference loop":
                _, dt, cpu, la = timed(reference_loop)
                samples[name].append({"wall_s": dt, "cpu_s": cpu, "load": la})
            else:
                opts = EngineOptions(device="cpu", batch_size=batch) if batch else None
                res, dt, cpu, la = timed(lambda: synthesize(models[name], images, opts))
                samples[name].append({"wall_s": dt, "cpu_s": cpu, "load": la, "network_s": res.timings_s["synthesize"],
                                      "prepare_s": res.timings_s["prepare"], "restore_s": res.timings_s["restore"],
                                      "batch": res.batch_size})
                outputs[name] = res.image
            s = samples[name][-1]
            print(f"  round {r + 1} {name:32s} {s['wall_s']:7.2f} s wall  {s['cpu_s']:7.2f} s cpu  load {s['load']}",
                  flush=True)
    out = {"slices": z, "model_grid": list(arr.shape[2:][::-1]), "network": spec["network"], "configs": {}}
    ref = summarise(samples["reference loop"])
    ref_rate = z / ref["best_wall_s"]
    out["configs"]["reference loop"] = dict(ref, slices_per_s=ref_rate, ratio=1.0, load_s=0.0)
    base = outputs.get("torch fp32 eager")
    for name in models:
        s = summarise(samples[name])
        best = min(samples[name], key=lambda q: q["wall_s"])
        per_round = [q["wall_s"] for q in samples["reference loop"]]
        paired = sorted(per_round[i] / q["wall_s"] for i, q in enumerate(samples[name]))
        row = dict(s, slices_per_s=z / s["best_wall_s"], ratio=(z / s["best_wall_s"]) / ref_rate,
                   ratio_per_round=paired, ratio_median_per_round=float(np.median(paired)),
                   ratio_quartiles_per_round=[float(q) for q in np.percentile(paired, [25, 75])],
                   network_slices_per_s=z / best["network_s"], network_ratio=(z / best["network_s"]) / ref_rate,
                   prepare_s=best["prepare_s"], restore_s=best["restore_s"], batch=best["batch"],
                   load_s=load_s[name], path=getattr(models[name].runner, "path", "?"),
                   precision=models[name].precision, precision_reason=models[name].precision_reason)
        if base is not None and name != "torch fp32 eager":
            row["vs_fp32_eager_in_body"] = gate_statistics(outputs[name], base, body)
        out["configs"][name] = row
    print_table(label, out)
    return out

def print_table(label, out):
    print(f"\n  {label}: {out['slices']} slices, model grid {out['model_grid']}")
    print("  (x ref: best vs best; paired: median over rounds of the ratio to the same round's reference loop)")
    print(f"  {'configuration':34s} {'slices/s':>9s} {'x ref':>6s} {'paired':>6s} {'net sl/s':>9s} {'x ref':>6s} "
          f"{'batch':>5s} {'load':>5s} {'mean|dHU|':>9s} {'p99':>7s} {'max':>7s}")
    for name, row in out["configs"].items():
        g = row.get("vs_fp32_eager_in_body")
        gs = f"{g['mean_hu']:9.3f} {g['p99_hu']:7.2f} {g['max_hu']:7.2f}" if g else f"{'':9s} {'':7s} {'':7s}"
        net = f"{row.get('network_slices_per_s', row['slices_per_s']):9.2f} {row.get('network_ratio', 1.0):6.2f}"
        shown = f"{name[:24]} -> {row['precision']}" if name.startswith("engine default") else name
        print(f"  {shown:34s} {row['slices_per_s']:9.2f} {row['ratio']:6.2f} {row.get('ratio_median_per_round', 1.0):6.2f} "
              f"{net} {row.get('batch', 1):5d} "
              f"{row['load_at_best']:5.2f} {gs}")
    for name, row in out["configs"].items():
        if "ratio_per_round" in row and name.startswith("engine default"):
            q1, q3 = row["ratio_quartiles_per_round"]
            print(f"  {name}: paired ratio per round median {row['ratio_median_per_round']:.2f}, quartiles "
                  f"{q1:.2f}-{q3:.2f}, all {', '.join(f'{v:.2f}' for v in row['ratio_per_round'])}")

def bench_variants(net, x, rounds, batch, threads, with_compile):
    """Network-level variants on one batch of the prepared volume (paper-size generator)."""
    print(f"\n== Network variants: one batch of {batch} slices {tuple(x.shape[2:])} ==")
    import onnxruntime as ort

    from CrossModalitySynthLib.networks import export_onnx

    xb = x[:batch].contiguous()
    variants = {}
    setup = {}

    def add(name, fn, prep=None):
        variants[name] = fn
        if prep is not None:
            setup[name] = prep

    add("eager no_grad batch 1 (reference)", lambda: [net(xb[i:i + 1]) for i in range(batch)])
    add(f"eager inference_mode batch {batch}", lambda: net(xb))
    net_cl = None

    def prep_cl():
        nonlocal net_cl
        import copy

        net_cl = copy.deepcopy(net).to(memory_format=torch.channels_last)
    add(f"eager channels_last batch {batch}", lambda: net_cl(xb.contiguous(memory_format=torch.channels_last)), prep_cl)
    traced = {}

    def prep_jit():
        with torch.no_grad():
            traced["freeze"] = torch.jit.freeze(torch.jit.trace(net, xb[:1], check_trace=False))
            traced["ofi"] = torch.jit.optimize_for_inference(torch.jit.trace(net, xb[:1], check_trace=False))
    add(f"jit trace+freeze batch {batch}", lambda: traced["freeze"](xb), prep_jit)
    add(f"jit optimize_for_inference batch {batch}", lambda: traced["ofi"](xb))

    def autocast():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return net(xb)
    add(f"bf16 autocast batch {batch}", autocast)
    fast32, fast16 = FastResnetGenerator(net, "fp32"), FastResnetGenerator(net, "bf16")
    for b in sorted(b for b in {1, 4, batch} if b <= batch):
        add(f"optimised fp32 batch {b}", (lambda b=b: [fast32(xb[i:i + b]) for i in range(0, batch, b)]))
    add(f"optimised bf16 batch {batch}", lambda: fast16(xb))
    tmp = tempfile.mkdtemp(prefix="bench_onnx_")
    onnx_path = os.path.join(tmp, "g.onnx")
    _, dt, _, _ = timed(lambda: export_onnx(net, onnx_path, x.shape[1], example_hw=(64, 64)))
    setup_info = {"onnx_export_s": dt}
    xn = xb.numpy()
    sessions = {}
    for level in ("ORT_ENABLE_ALL", "ORT_ENABLE_EXTENDED", "ORT_ENABLE_BASIC"):
        so = ort.SessionOptions()
        so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
        so.intra_op_num_threads = threads
        sessions[level] = ort.InferenceSession(onnx_path, sess_options=so, providers=["CPUExecutionProvider"])
        add(f"onnxruntime {level} batch {batch}", (lambda s=sessions[level]: s.run(None, {s.get_inputs()[0].name: xn})))
    if with_compile:
        compiled = {}

        def prep_compile():
            import torch._inductor.config as icfg

            icfg.freezing = True
            compiled["m"] = torch.compile(net)
            _, cdt, _, _ = timed(lambda: compiled["m"](xb))
            setup_info["torch_compile_first_call_s"] = cdt
        add(f"torch.compile inductor (freezing) batch {batch}", lambda: compiled["m"](xb), prep_compile)

    results = {name: [] for name in variants}
    with torch.inference_mode():
        for name, fn in variants.items():
            if name in setup:
                _, dt, _, _ = timed(setup[name])
                setup_info[f"setup {name}"] = dt
            fn()  # warm-up (oneDNN primitive cache, allocator, ORT arenas; jit profiling runs)
            fn()
        for nt in sorted({threads, 1}, reverse=True):
            torch.set_num_threads(nt)
            for r in range(rounds if nt == threads else 1):
                for name, fn in variants.items():
                    if nt != threads and not (name.startswith("eager no_grad") or name.startswith("optimised fp32 batch")):
                        continue
                    _, dt, cpu, la = timed(fn)
                    results[name if nt == threads else f"{name} [{nt} thread]"] = (
                        results.get(name if nt == threads else f"{name} [{nt} thread]", []) +
                        [{"wall_s": dt, "cpu_s": cpu, "load": la}])
                    print(f"  {nt} thr round {r + 1} {name:44s} {dt:7.2f} s wall {cpu:7.2f} s cpu load {la}", flush=True)
        torch.set_num_threads(threads)
    ref_samples = results["eager no_grad batch 1 (reference)"]
    ref_rate = batch / summarise(ref_samples)["best_wall_s"]
    table = {}
    print(f"\n  {'variant':58s} {'slices/s':>9s} {'x ref':>6s} {'paired':>6s} {'load':>5s} {'cpu/wall':>8s}")
    for name, samples in results.items():
        if not samples:
            continue
        s = summarise(samples)
        rate = batch / s["best_wall_s"]
        paired = sorted(ref_samples[i]["wall_s"] / q["wall_s"] for i, q in enumerate(samples))
        table[name] = dict(s, slices_per_s=rate, ratio=rate / ref_rate, ratio_per_round=paired,
                           ratio_median_per_round=paired[len(paired) // 2])
        print(f"  {name:58s} {rate:9.2f} {rate / ref_rate:6.2f} {paired[len(paired) // 2]:6.2f} "
              f"{s['load_at_best']:5.2f} {s['cpu_s_at_best'] / s['best_wall_s']:8.2f}")
    return {"batch": batch, "variants": table, "setup_s": setup_info}

def bench_e2e(label, gen_bundle, liver_bundle, mr_in, mr_opp, rounds, warmup=False):
    """sCT + liver through the engine for one MRI, per configuration (models preloaded)."""
    print(f"\n== End to end (sCT + liver): {label}, MRI {mr_in.GetSize()} ==")
    configs = [("engine default (precision auto)", dict(backend="torch", precision="auto", optimize=True)),
               ("torch fp32 optimised", dict(backend="torch", precision="fp32", optimize=True)),
               ("torch fp32 eager", dict(backend="torch", precision="fp32", optimize=False)),
               ("onnx fp32", dict(backend="onnx", precision="fp32", optimize=True)),
               ("torch bf16 optimised", dict(backend="torch", precision="bf16", optimize=True))]
    models = {}
    for name, cfg in configs:
        if cfg["backend"] == "onnx" and not (os.path.isfile(gen_bundle.file("model.onnx"))
                                             and os.path.isfile(liver_bundle.file("model.onnx"))):
            continue
        (g, lv), dt, _, _ = timed(lambda: (engine_model(gen_bundle, **cfg), engine_model(liver_bundle, **cfg)))
        models[name] = (g, lv, dt)
    liver_inputs = [mr_in] if len(liver_bundle.spec["inputs"]) == 1 else [mr_in, mr_opp]
    samples = {name: [] for name in models}
    for r in range(-1 if warmup else 0, rounds):  # round -1: warm-up, not recorded
        for name, (g, lv, _) in models.items():
            def run():
                a = synthesize(g, [mr_in, mr_opp])
                b = segment(lv, liver_inputs)
                return a, b
            (a, b), dt, cpu, la = timed(run)
            if r < 0:
                continue
            samples[name].append({"wall_s": dt, "cpu_s": cpu, "load": la, "sct_s": sum(a.timings_s.values()),
                                  "liver_s": sum(b.timings_s.values()), "sct_network_s": a.timings_s["synthesize"],
                                  "liver_network_s": b.timings_s["segment"]})
            print(f"  round {r + 1} {name:32s} {dt:7.2f} s (sCT {samples[name][-1]['sct_s']:.2f} s, liver "
                  f"{samples[name][-1]['liver_s']:.2f} s) cpu {cpu:.2f} s load {la}", flush=True)
    out = {}
    print(f"\n  {'configuration':34s} {'total s':>8s} {'sCT s':>7s} {'liver s':>8s} {'load':>5s} {'target':>7s}")
    for name, ss in samples.items():
        s = summarise(ss)
        best = min(ss, key=lambda q: q["wall_s"])
        out[name] = dict(s, sct_s=best["sct_s"], liver_s=best["liver_s"], load_models_s=models[name][2],
                         sct_precision=models[name][0].precision, sct_path=models[name][0].runner.path,
                         meets_15s=s["best_wall_s"] < TARGET_E2E_S)
        shown = f"{name[:24]} -> {out[name]['sct_precision']}" if name.startswith("engine default") else name
        print(f"  {shown:34s} {s['best_wall_s']:8.2f} {best['sct_s']:7.2f} {best['liver_s']:8.2f} "
              f"{s['load_at_best']:5.2f} {'yes' if s['best_wall_s'] < TARGET_E2E_S else 'no':>7s}")
    return out

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--threads", type=int, default=None, help="torch/ORT threads (default: torch's, %d here)"
                    % torch.get_num_threads())
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0, help="phantom case seed")
    ap.add_argument("--slices", type=int, default=None, help="use only N central slices for the throughput runs")
    ap.add_argument("--batch", type=int, default=8, help="batch of the network-variant runs (engine: memory budget)")
    ap.add_argument("--skip-variants", action="store_true")
    ap.add_argument("--skip-e2e", action="store_true")
    ap.add_argument("--skip-demo", action="store_true")
    ap.add_argument("--compile", action="store_true", help="also measure torch.compile (slow to compile)")
    ap.add_argument("--paper-bundle", help="a TRAINED paper-size MR->CT bundle (T1 in + opp) to measure as well, e.g. "
                    "the export of training/configs/paper_size_t1dual_to_ct.yaml (its bf16 gate record decides auto)")
    ap.add_argument("--only-default", action="store_true",
                    help="throughput of the reference loop vs the engine default only, on --paper-bundle (or the random "
                         "paper-size bundle): more rounds in less time")
    args = ap.parse_args(argv)
    global ONLY_DEFAULT
    ONLY_DEFAULT = args.only_default
    if ONLY_DEFAULT:
        args.skip_variants = args.skip_e2e = args.skip_demo = True

    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    t_start = time.perf_counter()
    report = {
        "machine": {"cpu": cpu_model(), "logical_cpus": os.cpu_count(), "torch": torch.__version__, "threads": threads,
                    "python": platform.python_version(), "load_at_start": list(os.getloadavg())},
        "targets": {"ratio_vs_reference": TARGET_RATIO, "e2e_s": TARGET_E2E_S},
    }
    print(f"CPU {report['machine']['cpu']}, {os.cpu_count()} logical CPUs, torch {torch.__version__}, "
          f"{threads} threads, load {os.getloadavg()}")
    case = make_case(args.seed, size="chaos")
    mr_in, mr_opp = case.images["t1_in.nii.gz"], case.images["t1_opp.nii.gz"]
    body = case.images["body.nii.gz"]
    report["case"] = {"seed": args.seed, "size": list(mr_in.GetSize()), "spacing": list(mr_in.GetSpacing())}
    tmp = tempfile.mkdtemp(prefix="bench_engine_")
    print("writing the paper-size bundles (random weights) ...", flush=True)
    paper_gen = make_test_bundle(os.path.join(tmp, "paper_gen"), "MR->CT", ("t1_in", "t1_opp"), ngf=64, n_blocks=9,
                                 model_id="bench-paper-resnet9")
    paper_liver = make_test_bundle(os.path.join(tmp, "paper_unet"), "MR->LIVER", ("t1_in",),
                                   unet_channels=(16, 32, 64, 128, 256), unet_strides=(2, 2, 2, 2), num_res_units=2,
                                   model_id="bench-default-unet")
    demo_gen = None if args.skip_demo else demo_bundle(DEMO_GEN)
    demo_liver = None if args.skip_demo else demo_bundle(DEMO_LIVER)

    imgs = [crop_slices(mr_in, args.slices), crop_slices(mr_opp, args.slices)]
    body_t = crop_slices(body, args.slices)
    trained = load_bundle(args.paper_bundle) if args.paper_bundle else None
    report["throughput"] = {}
    if not (ONLY_DEFAULT and trained is not None):
        report["throughput"]["paper ResNet-9 ngf64 random"] = bench_throughput(
            "paper-size ResNet-9 (ngf 64, 9 blocks, 2->1), random weights", paper_gen, imgs, body_t, args.rounds, None)
    if trained is not None:
        report["throughput"]["paper-size trained " + trained.id] = bench_throughput(
            f"trained paper-size bundle {trained.id} (ngf {trained.spec['network'].get('ngf')}, "
            f"{trained.spec['network'].get('n_blocks')} blocks)", trained, imgs, body_t, args.rounds, None, warmup=True)
    if demo_gen is not None:
        report["throughput"]["demo " + DEMO_GEN] = bench_throughput(
            f"demo bundle {DEMO_GEN} (trained, ngf {demo_gen.spec['network'].get('ngf')}, "
            f"{demo_gen.spec['network'].get('n_blocks')} blocks)", demo_gen, imgs, body_t, args.rounds, None, warmup=True)
    elif not args.skip_demo:
        print(f"\n(demo bundle {DEMO_GEN} not present: skipped)")

    if not args.skip_variants:
        model = engine_model(paper_gen, optimize=False)
        prepared = prepare(imgs, model.grid_spec, modality="MR", names=model.input_sequences)
        z = prepared.array.shape[1]
        mid = max(0, z // 2 - args.batch // 2)
        x = torch.from_numpy(np.ascontiguousarray(prepared.array[:, mid:mid + args.batch].transpose(1, 0, 2, 3)))
        report["network_variants"] = bench_variants(model.runner.net, x, args.rounds, min(args.batch, x.shape[0]),
                                                    threads, args.compile)

    if not args.skip_e2e:
        mr40_in, mr40_opp = resample_to_slices(mr_in, 40), resample_to_slices(mr_opp, 40)
        report["e2e"] = {"input": list(mr40_in.GetSize()),
                         "paper ResNet-9 + default U-Net": bench_e2e("paper-size generator + default U-Net (16..256)",
                                                                     paper_gen, paper_liver, mr40_in, mr40_opp, 1)}
        if trained is not None:
            report["e2e"]["paper-size trained + default U-Net"] = bench_e2e(
                f"trained paper-size {trained.id} + default U-Net (16..256)", trained, paper_liver, mr40_in, mr40_opp, 1)
        if demo_gen is not None and demo_liver is not None:
            report["e2e"]["demo bundles"] = bench_e2e(f"demo bundles {DEMO_GEN} + {DEMO_LIVER}", demo_gen, demo_liver,
                                                      mr40_in, mr40_opp, max(1, args.rounds), warmup=True)
    report["machine"]["load_at_end"] = list(os.getloadavg())
    report["total_s"] = time.perf_counter() - t_start
    print(f"\nload average at start {report['machine']['load_at_start']}, at end {report['machine']['load_at_end']}; "
          f"{report['total_s']:.0f} s in all")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1, default=float)
        print(f"wrote {args.json}")

if __name__ == "__main__":
    main()
