"""Run logs (rank 0 only): a text log, CSV files, TensorBoard scalars and PNG grids.

Files in the run folder:

- ``log.txt``: what the console shows (settings, notes such as "identity loss off", validation).
- ``train_log.csv``: ``step, epoch, lr, <losses>, seconds`` averaged over ``train.log_every`` steps.
- ``val_log.csv``: ``epoch, step, <validation metrics>`` after each validation.
- ``tb/``: TensorBoard event files with the same scalars (``tensorboard --logdir OUT/tb``).
- ``images/epoch_XXX.png``: a grid of example translations / segmentations each epoch.

On resume, CSV rows after the checkpoint's step are dropped so the files read like one run.
"""

import csv
import os
import sys
import time
from typing import Dict, List, Optional, Sequence

import numpy as np


def _truncate_csv(path: str, key: str, last: int) -> None:
    if not os.path.isfile(path):
        return
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
        fields = rows[0].keys() if rows else None
    if fields is None:
        return
    keep = [r for r in rows if int(float(r[key])) <= last]
    tmp = path + ".tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(fields))
        w.writeheader()
        w.writerows(keep)
    os.replace(tmp, path)


class CsvLog:
    """Append rows to a CSV; the header is taken from the first row (new columns are appended
    to the header by rewriting the file)."""

    def __init__(self, path: str):
        self.path = path
        self.fields: Optional[List[str]] = None
        if os.path.isfile(path):
            with open(path, newline="", encoding="utf-8") as f:
                header = next(csv.reader(f), None)
            self.fields = header or None

    def write(self, row: Dict[str, object]) -> None:
        if self.fields is None:
            self.fields = list(row)
            with open(self.path, "w", newline="", encoding="utf-8") as f:
                csv.DictWriter(f, fieldnames=self.fields).writeheader()
        new = [k for k in row if k not in self.fields]
        if new:
            with open(self.path, newline="", encoding="utf-8") as f:
                old = list(csv.DictReader(f))
            self.fields += new
            with open(self.path, "w", newline="", encoding="utf-8") as f:
                w = csv.DictWriter(f, fieldnames=self.fields)
                w.writeheader()
                w.writerows(old)
        with open(self.path, "a", newline="", encoding="utf-8") as f:
            csv.DictWriter(f, fieldnames=self.fields, restval="").writerow(
                {k: _fmt(v) for k, v in row.items()}
            )


def _fmt(v):
    if isinstance(v, float):
        return "{:.6g}".format(v)
    return v


class RunLogger:
    """Logs of one run; a no-op on ranks other than 0."""

    def __init__(self, out: str, enabled: bool = True, tensorboard: bool = True, resume_step: Optional[int] = None,
                 echo: bool = True):
        self.out = out
        self.enabled = enabled
        self.echo = echo
        self.tb = None
        if not enabled:
            return
        os.makedirs(out, exist_ok=True)
        if resume_step is not None:
            _truncate_csv(os.path.join(out, "train_log.csv"), "step", resume_step)
            _truncate_csv(os.path.join(out, "val_log.csv"), "step", resume_step)
        self.train_csv = CsvLog(os.path.join(out, "train_log.csv"))
        self.val_csv = CsvLog(os.path.join(out, "val_log.csv"))
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(os.path.join(out, "tb"), purge_step=resume_step + 1 if resume_step else None)
            except Exception as exc:  # noqa: BLE001 - TensorBoard is optional
                self.info("TensorBoard logging is off ({}).".format(exc))

    def info(self, message: str) -> None:
        if not self.enabled:
            return
        line = "[{}] {}".format(time.strftime("%Y-%m-%d %H:%M:%S"), message)
        with open(os.path.join(self.out, "log.txt"), "a", encoding="utf-8") as f:
            f.write(line + "\n")
        if self.echo:
            print(line, file=sys.stderr, flush=True)

    def train(self, step: int, epoch: int, lr: float, losses: Dict[str, float], seconds: float) -> None:
        if not self.enabled:
            return
        row = {"step": step, "epoch": epoch + 1, "lr": lr}
        row.update(losses)
        row["seconds_per_step"] = seconds
        self.train_csv.write(row)
        if self.tb is not None:
            for k, v in losses.items():
                self.tb.add_scalar("train/" + k, v, step)
            self.tb.add_scalar("train/lr", lr, step)

    def validation(self, step: int, epoch: int, metrics: Dict[str, float]) -> None:
        if not self.enabled or not metrics:
            return
        row = {"epoch": epoch + 1, "step": step}
        row.update(metrics)
        self.val_csv.write(row)
        if self.tb is not None:
            for k, v in metrics.items():
                self.tb.add_scalar("val/" + k, v, step)
        self.info("validation after epoch {}: {}".format(epoch + 1, ", ".join("{} {:.4g}".format(k, v) for k, v in metrics.items())))

    def image_grid(self, epoch: int, rows: Sequence[Sequence[np.ndarray]], titles: Sequence[str], step: int = 0) -> Optional[str]:
        if not self.enabled or not rows:
            return None
        path = os.path.join(self.out, "images", "epoch_{:03d}.png".format(epoch + 1))
        grid = save_grid(path, rows, titles)
        if self.tb is not None:
            self.tb.add_image("examples", grid, step, dataformats="HW")
        return path

    def close(self) -> None:
        if self.tb is not None:
            self.tb.flush()
            self.tb.close()
            self.tb = None


def _tile(a: np.ndarray, size: int) -> np.ndarray:
    """A 2D array in [-1, 1] (images) or {0, 1, ...} (labels) -> uint8 tile of ``size`` x ``size``."""
    a = np.asarray(a, dtype=np.float32)
    if a.ndim == 3:
        a = a[0]
    t = np.clip((a + 1.0) * 127.5, 0, 255).astype(np.uint8)
    h, w = t.shape
    out = np.zeros((size, size), dtype=np.uint8)
    out[: min(h, size), : min(w, size)] = t[:size, :size]
    return out


def save_grid(path: str, rows: Sequence[Sequence[np.ndarray]], titles: Sequence[str]) -> np.ndarray:
    """Write a grayscale PNG: one row per example, one column per title, a title strip on top.

    Images are 2D arrays in [-1, 1] (first channel of multi-channel inputs); masks should be
    given as ``2 * mask - 1``. Returns the grid as a uint8 array.
    """
    from PIL import Image, ImageDraw

    native = max(max(np.asarray(a).shape[-1], np.asarray(a).shape[-2]) for r in rows for a in r)
    zoom = max(1, int(np.ceil(128.0 / native)))  # small slices are enlarged (nearest) to be readable
    rows = [[np.kron(np.asarray(a, dtype=np.float32)[0] if np.asarray(a).ndim == 3 else np.asarray(a, dtype=np.float32),
                     np.ones((zoom, zoom), dtype=np.float32)) for a in r] for r in rows]
    size = native * zoom
    ncol = max(len(r) for r in rows)
    strip = 14
    grid = np.full((strip + len(rows) * (size + 2), ncol * (size + 2)), 32, dtype=np.uint8)
    for i, r in enumerate(rows):
        for j, a in enumerate(r):
            y0, x0 = strip + i * (size + 2), j * (size + 2)
            grid[y0 : y0 + size, x0 : x0 + size] = _tile(a, size)
    img = Image.fromarray(grid)
    draw = ImageDraw.Draw(img)
    for j, t in enumerate(titles[:ncol]):
        draw.text((j * (size + 2) + 2, 1), str(t), fill=255)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp.png"
    img.save(tmp)
    os.replace(tmp, path)
    return np.asarray(img)
