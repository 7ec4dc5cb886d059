"""Event data: digits → ON/OFF frames, and the DVS loaders on small files written here in the
distribution formats (AEDAT 3.1 + labels CSV, AEDAT 2.0, N-Caltech101 .bin)."""

import struct

import numpy as np
import pytest
import torch

from spikehq.search import data


def test_digits_conversion_semantics():
    img = np.zeros((1, 8, 8), dtype=np.int64)
    img[0, 2, 3] = 16
    img[0, 5, 5] = 3                       # below the contrast: never an event
    f = data.digits_events(img, 4)
    assert f.shape == (1, 4, 2, 8, 8) and f.dtype == np.uint8
    assert f[0, 0, 1].sum() == 1 and f[0, 0, 1, 2, 3] == 1 and f[0, 0, 0].sum() == 0     # step 0: ON of the digit
    # step 1 shifts by (0, 1): ON at the new place, OFF at the old one
    assert f[0, 1, 1, 2, 4] == 1 and f[0, 1, 0, 2, 3] == 1 and f[0, 1].sum() == 2
    assert f[0, :, :, 5, 5].sum() == 0


def test_digits_dataset_split_and_frames():
    train, test = data.load_dataset("digits", time_steps=4)
    assert len(train) == 1437 and len(test) == 360
    assert train.frames.shape[1:] == (4, 2, 8, 8)
    assert set(train.frames.unique().tolist()) == {0, 1}
    assert sorted(test.labels.unique().tolist()) == list(range(10))
    # the split is fixed: same data on a second call
    train2, _ = data.load_dataset("digits", time_steps=4)
    assert torch.equal(train.frames, train2.frames)
    x, y = train[0]
    assert x.dtype == torch.float32 and y.dtype == torch.int64


def test_events_to_frames_binning_and_downsampling():
    x = np.array([0, 127, 64, 10])
    y = np.array([0, 127, 64, 10])
    p = np.array([1, 0, 1, 1])
    t = np.array([0, 99, 50, 24])
    f = data.events_to_frames(x, y, p, t, time_steps=4, sensor=(128, 128), image_size=(32, 32))
    assert f.shape == (4, 2, 32, 32)
    assert f[0, 1, 0, 0] == 1 and f[3, 0, 31, 31] == 1 and f[2, 1, 16, 16] == 1 and f[0, 1, 2, 2] == 1
    assert f.sum() == 4
    with pytest.raises(data.DataError, match="outside"):
        data.events_to_frames([200], [0], [1], [0], time_steps=2, sensor=(128, 128), image_size=(8, 8))


def _aedat31(path, events):
    """events: list of (x, y, p, t) → AEDAT 3.1 file with one polarity packet."""
    header = b"#!AER-DAT3.1\r\n#Format: RAW\r\n#!END-HEADER\r\n"
    body = b"".join(struct.pack("<Ii", (x << 17) | (y << 2) | (p << 1) | 1, t) for x, y, p, t in events)
    packet = struct.pack("<hhiiiiii", 1, 1, 8, 4, 0, len(events), len(events), len(events))
    other = struct.pack("<hhiiiiii", 0, 1, 12, 4, 0, 1, 1, 1) + b"\0" * 12    # a special-event packet, skipped
    path.write_bytes(header + other + packet + body)


def test_dvs128_gesture_loader(tmp_path):
    root = tmp_path / "DvsGesture"
    root.mkdir()
    for user, label_rows in (("user01_led", [(1, 0, 1000), (3, 1000, 2000)]), ("user02_led", [(11, 0, 500)])):
        ev = [(5, 6, 1, 10), (120, 7, 0, 900), (64, 64, 1, 1500), (3, 3, 1, 1999), (9, 9, 0, 300)]
        _aedat31(root / f"{user}.aedat", ev)
        (root / f"{user}_labels.csv").write_text("class,startTime_usec,endTime_usec\n" +
                                                  "".join(f"{c},{s},{e}\n" for c, s, e in label_rows))
    (root / "trials_to_train.txt").write_text("user01_led.aedat\n")
    (root / "trials_to_test.txt").write_text("user02_led.aedat\n")
    train, test = data.load_dataset("dvs128", time_steps=2, root=root, image_size=(16, 16))
    assert train.labels.tolist() == [0, 2] and test.labels.tolist() == [10]
    assert train.frames.shape == (2, 2, 2, 16, 16) and len(train.classes) == 11
    s0 = train.frames[0]
    # sample 0 covers t in [0, 1000): events at t=10 (ON, x5 y6), 900 (OFF, x120 y7); span 10..900
    assert s0[0, 1, 6 * 16 // 128, 5 * 16 // 128] == 1 and s0[1, 0, 7 * 16 // 128, 120 * 16 // 128] == 1
    assert s0[0, 0, 1, 1] == 1 and int(s0.sum()) == 3          # and t=300 (OFF, x9 y9)
    assert int(test.frames[0].sum()) == 2      # t=10 and t=300 within [0, 500)


def test_dvs128_errors(tmp_path):
    with pytest.raises(data.DataError, match="trials_to_train.txt"):
        data.load_dataset("dvs128", time_steps=2, root=tmp_path)
    (tmp_path / "trials_to_train.txt").write_text("missing.aedat\n")
    (tmp_path / "trials_to_test.txt").write_text("")
    with pytest.raises(data.DataError, match="missing.aedat: file not found"):
        data.load_dataset("dvs128", time_steps=2, root=tmp_path)
    bad = tmp_path / "bad.aedat"
    bad.write_bytes(b"#!AER-DAT3.1\r\n" + b"\1\0" * 5)
    with pytest.raises(data.DataError, match="bad.aedat: truncated"):
        data.read_aedat31_polarity(bad)


def test_cifar10dvs_loader(tmp_path):
    for label, name in enumerate(data.CIFAR10_CLASSES):
        d = tmp_path / name
        d.mkdir()
        for i in range(3):
            x, y, p = label, 100 - label, i % 2
            events = [((y << 8) | (x << 1) | p, 5), (((y + 1) << 8) | ((x + 1) << 1) | p, 50)]
            body = b"".join(struct.pack(">II", a, t) for a, t in events)
            (d / f"cifar10_{name}_{i}.aedat").write_bytes(b"#!AER-DAT2.0\r\n# This is a raw AE data file\r\n" + body)
    train, test = data.load_dataset("cifar10dvs", time_steps=2, root=tmp_path, image_size=(128, 128))
    assert len(train) == 20 and len(test) == 10                        # last 10 % (≥1) of each class
    assert test.labels.tolist() == list(range(10))
    f = train.frames[train.labels.tolist().index(3)]
    assert f[0, 0, 97, 3] == 1 and f[1, 0, 98, 4] == 1 and int(f.sum()) == 2
    (tmp_path / "truck" / "broken.aedat").write_bytes(b"#h\n" + b"\0" * 7)
    with pytest.raises(data.DataError, match="broken.aedat"):
        data.load_dataset("cifar10dvs", time_steps=2, root=tmp_path)


def test_ncaltech101_loader(tmp_path):
    def event(x, y, p, t):
        return bytes([x, y, (p << 7) | ((t >> 16) & 0x7F), (t >> 8) & 0xFF, t & 0xFF])
    for name in ("accordion", "airplanes"):
        d = tmp_path / name
        d.mkdir()
        for i in range(2):
            (d / f"image_{i:04d}.bin").write_bytes(event(239, 179, 1, 0) + event(0, 0, 0, 70000 + i))
    x, y, p, t = data.read_ncaltech_bin(tmp_path / "accordion" / "image_0001.bin")
    assert x.tolist() == [239, 0] and y.tolist() == [179, 0] and p.tolist() == [1, 0] and t.tolist() == [0, 70001]
    train, test = data.load_dataset("ncaltech101", time_steps=3, root=tmp_path, image_size=(18, 24))
    assert train.classes == ("accordion", "airplanes") and len(train) == 2 and len(test) == 2
    f = test.frames[1]
    assert f[0, 1, 17, 23] == 1 and f[2, 0, 0, 0] == 1 and int(f.sum()) == 2
    (tmp_path / "accordion" / "image_0009.bin").write_bytes(b"\0" * 6)
    with pytest.raises(data.DataError, match="image_0009.bin: size"):
        data.load_dataset("ncaltech101", time_steps=3, root=tmp_path)


def test_bad_dataset_arguments(tmp_path):
    with pytest.raises(data.DataError, match="dataset: expected one of"):
        data.load_dataset("mnist", time_steps=2, root=tmp_path)
    with pytest.raises(data.DataError, match="--data-root"):
        data.load_dataset("cifar10dvs", time_steps=2)
    with pytest.raises(data.DataError, match="folder not found"):
        data.load_dataset("ncaltech101", time_steps=2, root=tmp_path / "nope")
