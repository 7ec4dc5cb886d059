"""Event-frame data sets: the embedded scikit-learn digits, and DVS128 Gesture, CIFAR10-DVS and
N-Caltech101 read from local files in their distribution formats. Nothing is downloaded.

Every set becomes binary event frames ``uint8 [N, T, 2, H, W]`` (channel 0 = OFF, 1 = ON):
events are binned into ``T`` equal time slices of the sample's duration, pixels are
downsampled by nearest neighbour to ``image_size``, and a frame pixel is 1 when at least one
event of that polarity fell into it (the first layer's input is binary, ``activation_bits = 1``).

**Digits → events** (``digits``): ``sklearn.datasets.load_digits`` (1,797 8×8 images, 0–16).
A simulated DVS watches the digit make a small saccade: at step ``t`` the image is shifted by
``PATH[t mod 4] = (0,0), (0,1), (1,1), (1,0)`` pixels (zero fill). A pixel emits an ON event
when its intensity rose by at least ``CONTRAST = 4`` since the previous step and an OFF event
when it fell by at least that much; before step 0 the sensor saw a blank field, so step 0 holds
the ON events of every pixel ≥ 4 (the binarized digit). The split is a fixed stratified 80/20
(``random_state = 0``), independent of the training seed: 1,437 train, 360 test.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = ["DataError", "EventDataset", "digits_events", "events_to_frames", "load_dataset", "DATASETS",
           "read_aedat31_polarity", "read_aedat2_dvs128", "read_ncaltech_bin", "DIGITS_PATH", "CONTRAST",
           "CIFAR10_CLASSES"]

DATASETS = ("digits", "dvs128", "cifar10dvs", "ncaltech101")
DIGITS_PATH = ((0, 0), (0, 1), (1, 1), (1, 0))
CONTRAST = 4
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


class DataError(ValueError):
    """A data file or folder is missing or malformed; the message names it."""


@dataclass
class EventDataset(torch.utils.data.Dataset):
    frames: torch.Tensor       # uint8 [N, T, 2, H, W]
    labels: torch.Tensor       # int64 [N]
    classes: tuple[str, ...]

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.frames[i].float(), self.labels[i]

    def subset(self, n: int) -> "EventDataset":
        return EventDataset(self.frames[:n], self.labels[:n], self.classes)


# ---- digits ------------------------------------------------------------------------------------

def digits_events(images: np.ndarray, time_steps: int) -> np.ndarray:
    """8×8 intensity images (0–16) → uint8 event frames [N, T, 2, 8, 8] (see module doc)."""
    images = np.asarray(images, dtype=np.int64)
    n, h, w = images.shape
    frames = np.zeros((n, time_steps, 2, h, w), dtype=np.uint8)
    previous = np.zeros_like(images)
    for t in range(time_steps):
        dy, dx = DIGITS_PATH[t % len(DIGITS_PATH)]
        shifted = np.zeros_like(images)
        shifted[:, dy:, dx:] = images[:, :h - dy, :w - dx]
        diff = shifted - previous
        frames[:, t, 1] = diff >= CONTRAST
        frames[:, t, 0] = diff <= -CONTRAST
        previous = shifted
    return frames


def _digits(time_steps: int):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    d = load_digits()
    idx = np.arange(len(d.target))
    train_idx, test_idx = train_test_split(idx, test_size=0.2, random_state=0, stratify=d.target)
    frames = torch.from_numpy(digits_events(d.images, time_steps))
    labels = torch.from_numpy(d.target.astype(np.int64))
    classes = tuple(str(c) for c in range(10))
    train_idx, test_idx = torch.from_numpy(np.sort(train_idx)), torch.from_numpy(np.sort(test_idx))
    return (EventDataset(frames[train_idx], labels[train_idx], classes),
            EventDataset(frames[test_idx], labels[test_idx], classes))


# ---- events → frames ---------------------------------------------------------------------------

def events_to_frames(x, y, p, t, *, time_steps: int, sensor: tuple[int, int], image_size: tuple[int, int],
                     where: str = "events") -> np.ndarray:
    """Events (x, y, polarity 0/1, timestamp) → binary frames uint8 [T, 2, h, w].

    ``sensor`` = (H, W) of the camera; time is split into ``T`` equal slices of
    [t_first, t_last]."""
    x, y, p, t = (np.asarray(a, dtype=np.int64) for a in (x, y, p, t))
    H, W = sensor
    h, w = image_size
    frames = np.zeros((time_steps, 2, h, w), dtype=np.uint8)
    if x.size == 0:
        return frames
    if x.min() < 0 or x.max() >= W or y.min() < 0 or y.max() >= H:
        raise DataError(f"{where}: event coordinates outside the {W}×{H} sensor")
    t0, span = t.min(), t.max() - t.min() + 1
    bins = np.minimum((t - t0) * time_steps // span, time_steps - 1)
    frames[bins, (p > 0).astype(np.int64), y * h // H, x * w // W] = 1
    return frames


# ---- DVS128 Gesture: AEDAT 3.1 + labels CSV ------------------------------------------------------

def _skip_header(data: bytes, path: Path) -> int:
    pos = 0
    while pos < len(data) and data[pos:pos + 1] == b"#":
        end = data.find(b"\n", pos)
        if end < 0:
            raise DataError(f"{path}: header line without a newline")
        pos = end + 1
    return pos


def read_aedat31_polarity(path: Path):
    """AEDAT 3.1 file → (x, y, p, t) of its polarity events (packet type 1, 8-byte events:
    uint32 data with bit 0 valid, bit 1 polarity, bits 2–16 y, bits 17–31 x; int32 timestamp µs
    extended by the packet's TS overflow)."""
    data = Path(path).read_bytes()
    pos = _skip_header(data, path)
    xs, ys, ps, ts = [], [], [], []
    while pos < len(data):
        if pos + 28 > len(data):
            raise DataError(f"{path}: truncated packet header at byte {pos}")
        etype, _src, esize, _tsoff, overflow, _cap, number, _valid = np.frombuffer(
            data, dtype="<i2,<i2,<i4,<i4,<i4,<i4,<i4,<i4", count=1, offset=pos)[0]
        pos += 28
        nbytes = int(esize) * int(number)
        if esize <= 0 or pos + nbytes > len(data):
            raise DataError(f"{path}: truncated or invalid packet at byte {pos - 28}")
        if etype == 1:
            if esize != 8:
                raise DataError(f"{path}: polarity events must be 8 bytes, got {esize}")
            ev = np.frombuffer(data, dtype="<u4,<i4", count=int(number), offset=pos)
            word, stamp = ev["f0"].astype(np.int64), ev["f1"].astype(np.int64)
            valid = (word & 1) == 1
            xs.append((word >> 17)[valid] & 0x7FFF)
            ys.append((word >> 2)[valid] & 0x7FFF)
            ps.append((word >> 1)[valid] & 1)
            ts.append(stamp[valid] + (int(overflow) << 31))
        pos += nbytes
    cat = lambda a: np.concatenate(a) if a else np.zeros(0, dtype=np.int64)
    return cat(xs), cat(ys), cat(ps), cat(ts)


def _dvs128(root: Path, time_steps: int, image_size):
    def read_list(name):
        f = root / name
        if not f.is_file():
            raise DataError(f"{f}: file not found (DVS128 Gesture needs trials_to_train.txt and trials_to_test.txt)")
        return [line.strip() for line in f.read_text().splitlines() if line.strip()]

    classes = tuple(f"gesture{i}" for i in range(1, 12))
    out = []
    for split in ("trials_to_train.txt", "trials_to_test.txt"):
        frames, labels = [], []
        for name in read_list(split):
            aedat = root / name
            if not aedat.is_file():
                raise DataError(f"{aedat}: file not found (listed in {split})")
            labels_csv = aedat.with_name(aedat.stem + "_labels.csv")
            if not labels_csv.is_file():
                raise DataError(f"{labels_csv}: file not found")
            x, y, p, t = read_aedat31_polarity(aedat)
            with labels_csv.open(newline="") as fh:
                rows = list(csv.reader(fh))
            for i, row in enumerate(rows[1:], start=2):
                try:
                    cls, start, end = (int(v) for v in row[:3])
                except (ValueError, IndexError):
                    raise DataError(f"{labels_csv}: line {i}: expected class,startTime_usec,endTime_usec") from None
                if not 1 <= cls <= 11:
                    raise DataError(f"{labels_csv}: line {i}: class must be 1..11, got {cls}")
                sel = (t >= start) & (t < end)
                frames.append(events_to_frames(x[sel], y[sel], p[sel], t[sel], time_steps=time_steps,
                                               sensor=(128, 128), image_size=image_size, where=str(aedat)))
                labels.append(cls - 1)
        if not frames:
            raise DataError(f"{root / split}: no labelled samples")
        out.append(EventDataset(torch.from_numpy(np.stack(frames)), torch.tensor(labels), classes))
    return tuple(out)


# ---- CIFAR10-DVS: AEDAT 2.0 (jAER, DVS128 addresses) -------------------------------------------

def read_aedat2_dvs128(path: Path):
    """AEDAT 2.0 file → (x, y, p, t): big-endian uint32 address and uint32 timestamp per event;
    DVS128 address: p = bit 0, x = bits 1–7, y = bits 8–14."""
    data = Path(path).read_bytes()
    pos = _skip_header(data, path)
    if (len(data) - pos) % 8:
        raise DataError(f"{path}: event data is not a whole number of 8-byte events")
    ev = np.frombuffer(data, dtype=">u4,>u4", offset=pos)
    addr, t = ev["f0"].astype(np.int64), ev["f1"].astype(np.int64)
    return (addr >> 1) & 0x7F, (addr >> 8) & 0x7F, addr & 1, t


def read_ncaltech_bin(path: Path):
    """N-Caltech101 ``.bin`` → (x, y, p, t): 40 bits per event, x (8), y (8), polarity (1),
    timestamp (23, µs)."""
    data = np.frombuffer(Path(path).read_bytes(), dtype=np.uint8)
    if data.size % 5:
        raise DataError(f"{path}: size is not a whole number of 5-byte events")
    ev = data.reshape(-1, 5).astype(np.int64)
    t = ((ev[:, 2] & 0x7F) << 16) | (ev[:, 3] << 8) | ev[:, 4]
    return ev[:, 0], ev[:, 1], ev[:, 2] >> 7, t


def _class_folders(root: Path, pattern: str, read, sensor, time_steps, image_size, test_fraction=0.1,
                   expected: tuple[str, ...] | None = None):
    if not root.is_dir():
        raise DataError(f"{root}: folder not found")
    classes = expected or tuple(sorted(d.name for d in root.iterdir() if d.is_dir()))
    if not classes:
        raise DataError(f"{root}: no class folders")
    train, test = ([], []), ([], [])
    for label, name in enumerate(classes):
        folder = root / name
        files = sorted(folder.glob(pattern)) if folder.is_dir() else []
        if not files:
            raise DataError(f"{folder}: no {pattern} files")
        n_test = max(1, round(len(files) * test_fraction)) if len(files) > 1 else 0
        for i, f in enumerate(files):
            x, y, p, t = read(f)
            frames = events_to_frames(x, y, p, t, time_steps=time_steps, sensor=sensor, image_size=image_size,
                                      where=str(f))
            dest = test if i >= len(files) - n_test else train
            dest[0].append(frames)
            dest[1].append(label)
    make = lambda d: EventDataset(torch.from_numpy(np.stack(d[0])), torch.tensor(d[1]), classes)
    if not test[0]:
        raise DataError(f"{root}: need at least 2 files per class for a test split")
    return make(train), make(test)


def load_dataset(name: str, *, time_steps: int, root: str | Path | None = None,
                 image_size: tuple[int, int] | None = None) -> tuple[EventDataset, EventDataset]:
    """(train, test) event-frame sets. ``root`` is required for the DVS sets.

    * ``dvs128``: the DvsGesture folder (``trials_to_train.txt``, ``trials_to_test.txt``,
      ``userXX_<light>.aedat`` and ``userXX_<light>_labels.csv``), sensor 128×128, 11 classes.
    * ``cifar10dvs``: ``<root>/<class>/*.aedat`` for the 10 CIFAR-10 class names, sensor 128×128;
      the last 10 % of each class's sorted files are the test split.
    * ``ncaltech101``: ``<root>/<class>/*.bin``, sensor 240×180 (W×H); every class folder is a
      class (sorted); the last 10 % of each class's sorted files are the test split.
    """
    if name == "digits":
        if image_size not in (None, (8, 8)):
            raise DataError(f"image_size: the digits are 8×8, got {image_size}")
        return _digits(time_steps)
    if name not in DATASETS:
        raise DataError(f"dataset: expected one of {', '.join(DATASETS)}, got {name!r}")
    if root is None:
        raise DataError(f"data root: the {name} data set is read from local files; pass --data-root")
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: folder not found")
    image_size = image_size or (128, 128)
    if name == "dvs128":
        return _dvs128(root, time_steps, image_size)
    if name == "cifar10dvs":
        return _class_folders(root, "*.aedat", read_aedat2_dvs128, (128, 128), time_steps, image_size,
                              expected=CIFAR10_CLASSES)
    return _class_folders(root, "*.bin", read_ncaltech_bin, (180, 240), time_steps, image_size)
