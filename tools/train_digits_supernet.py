#!/usr/bin/env python3
"""Train the digits supernet (an elastic-width CNN) in numpy and export each width to .tflite.

    .venv/bin/pip install scikit-learn          # only this tool needs it
    .venv/bin/python tools/train_digits_supernet.py [--epochs 40] [--seed 0] [--no-write]

Data: scikit-learn's digits (1797 8x8 images, 10 classes), pixels scaled to [0, 1] (value / 16), a stratified
held-out split of 25% (fixed seed). Network (NHWC, SAME padding, ReLU):

    conv3x3(1 -> 16) -> conv3x3(16 -> 32) -> maxpool 2x2 -> conv3x3(32 -> 64) -> mean(H, W) -> FC(64 -> 10) -> softmax

Widths 1.0 / 0.75 / 0.5 / 0.25 share weights: width w uses the first round(w * C) channels of every hidden layer
(the narrower sub-networks are slices of the larger). Training follows the sandwich rule: each step sums the
gradients of the largest, the smallest and one random middle width, then takes one Adam step.

Each width is written to edge_sdrm3/data/models/digits/digits_w{100,75,50,25}.tflite with edge_sdrm3.tflite.writer
(float32, input [1, 8, 8, 1], output [1, 10] probabilities). Held-out accuracy is measured twice, by the numpy
forward pass and by the exported file in the LiteRT interpreter; the tool fails if they disagree. The digits block
of edge_sdrm3/data/models/manifest.toml (between its BEGIN/END markers) is rewritten with the files' sha256, sizes
and accuracies.
The committed .tflite files are the output of this tool: `make` never trains.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_sdrm3.tflite.writer import GraphBuilder

WIDTHS = (1.0, 0.75, 0.5, 0.25)
CHANNELS = (16, 32, 64)
CLASSES = 10
OUT_DIR = ROOT / "edge_sdrm3" / "data" / "models" / "digits"
MANIFEST = OUT_DIR.parent / "manifest.toml"
BEGIN = "# BEGIN digits (written by tools/train_digits_supernet.py; do not edit by hand)"
END = "# END digits"


def width_tag(w: float) -> str:
    return f"w{round(w * 100)}"


def channels(w: float) -> tuple[int, int, int]:
    return tuple(max(1, round(w * c)) for c in CHANNELS)  # type: ignore[return-value]


# ---- layers (NHWC, 3x3 SAME convolutions by im2col) -------------------------------------------------------
def im2col(x: np.ndarray) -> np.ndarray:
    """[N, H, W, C] -> [N, H, W, 9*C], patch order (kh, kw, c) to match TFLite weights [O, kh, kw, I]."""
    _, h, w, _ = x.shape
    p = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    cols = [p[:, i:i + h, j:j + w, :] for i in range(3) for j in range(3)]
    return np.concatenate(cols, axis=-1)


def col2im(dcols: np.ndarray, c: int) -> np.ndarray:
    n, h, w, _ = dcols.shape
    dp = np.zeros((n, h + 2, w + 2, c), dtype=dcols.dtype)
    k = 0
    for i in range(3):
        for j in range(3):
            dp[:, i:i + h, j:j + w, :] += dcols[..., k * c:(k + 1) * c]
            k += 1
    return dp[:, 1:-1, 1:-1, :]


def init_params(rng: np.random.Generator) -> dict[str, np.ndarray]:
    c1, c2, c3 = CHANNELS
    def he(shape, fan_in):
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
    return {
        "w1": he((c1, 3, 3, 1), 9), "b1": np.zeros(c1, np.float32),
        "w2": he((c2, 3, 3, c1), 9 * c1), "b2": np.zeros(c2, np.float32),
        "w3": he((c3, 3, 3, c2), 9 * c2), "b3": np.zeros(c3, np.float32),
        "wf": he((CLASSES, c3), c3), "bf": np.zeros(CLASSES, np.float32),
    }


def sub_params(p: dict[str, np.ndarray], w: float) -> dict[str, np.ndarray]:
    """The weights of the width-``w`` sub-network: the first k channels of every hidden layer."""
    k1, k2, k3 = channels(w)
    return {
        "w1": p["w1"][:k1], "b1": p["b1"][:k1],
        "w2": p["w2"][:k2, :, :, :k1], "b2": p["b2"][:k2],
        "w3": p["w3"][:k3, :, :, :k2], "b3": p["b3"][:k3],
        "wf": p["wf"][:, :k3], "bf": p["bf"],
    }


def conv_fwd(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cols = im2col(x)
    return cols @ w.reshape(w.shape[0], -1).T + b, cols


def forward(sp: dict[str, np.ndarray], x: np.ndarray, keep: bool = False):
    a1, c1 = conv_fwd(x, sp["w1"], sp["b1"])
    h1 = np.maximum(a1, 0)
    a2, c2 = conv_fwd(h1, sp["w2"], sp["b2"])
    h2 = np.maximum(a2, 0)
    n, hh, ww, k = h2.shape
    blocks = h2.reshape(n, hh // 2, 2, ww // 2, 2, k)
    p2 = blocks.max(axis=(2, 4))
    a3, c3 = conv_fwd(p2, sp["w3"], sp["b3"])
    h3 = np.maximum(a3, 0)
    g = h3.mean(axis=(1, 2))
    logits = g @ sp["wf"].T + sp["bf"]
    if not keep:
        return logits
    return logits, {"c1": c1, "a1": a1, "h1": h1, "c2": c2, "a2": a2, "h2": h2, "blocks": blocks, "p2": p2, "c3": c3, "a3": a3, "g": g}


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def backward(sp: dict[str, np.ndarray], cache: dict, dlogits: np.ndarray) -> dict[str, np.ndarray]:
    g = {}
    g["wf"] = dlogits.T @ cache["g"]
    g["bf"] = dlogits.sum(0)
    dg = dlogits @ sp["wf"]
    _, h3h, h3w, k3 = cache["a3"].shape
    dh3 = np.broadcast_to(dg[:, None, None, :] / (h3h * h3w), cache["a3"].shape)
    da3 = dh3 * (cache["a3"] > 0)
    g["w3"] = (da3.reshape(-1, k3).T @ cache["c3"].reshape(-1, cache["c3"].shape[-1])).reshape(sp["w3"].shape)
    g["b3"] = da3.sum((0, 1, 2))
    dp2 = col2im(da3 @ sp["w3"].reshape(k3, -1), cache["p2"].shape[-1])
    blocks, p2 = cache["blocks"], cache["p2"]
    mask = blocks == p2[:, :, None, :, None, :]
    mask = mask / mask.sum(axis=(2, 4), keepdims=True)  # ties share the gradient
    dh2 = (mask * dp2[:, :, None, :, None, :]).reshape(cache["h2"].shape)
    da2 = dh2 * (cache["a2"] > 0)
    k2 = da2.shape[-1]
    g["w2"] = (da2.reshape(-1, k2).T @ cache["c2"].reshape(-1, cache["c2"].shape[-1])).reshape(sp["w2"].shape)
    g["b2"] = da2.sum((0, 1, 2))
    dh1 = col2im(da2 @ sp["w2"].reshape(k2, -1), cache["h1"].shape[-1])
    da1 = dh1 * (cache["a1"] > 0)
    k1 = da1.shape[-1]
    g["w1"] = (da1.reshape(-1, k1).T @ cache["c1"].reshape(-1, cache["c1"].shape[-1])).reshape(sp["w1"].shape)
    g["b1"] = da1.sum((0, 1, 2))
    return g


def add_sub_grad(full: dict[str, np.ndarray], sub: dict[str, np.ndarray], w: float) -> None:
    k1, k2, k3 = channels(w)
    full["w1"][:k1] += sub["w1"]
    full["b1"][:k1] += sub["b1"]
    full["w2"][:k2, :, :, :k1] += sub["w2"]
    full["b2"][:k2] += sub["b2"]
    full["w3"][:k3, :, :, :k2] += sub["w3"]
    full["b3"][:k3] += sub["b3"]
    full["wf"][:, :k3] += sub["wf"]
    full["bf"] += sub["bf"]


def accuracy(p: dict[str, np.ndarray], w: float, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    probs = softmax(forward(sub_params(p, w), x))
    return float((probs.argmax(1) == y).mean()), probs


def train(x: np.ndarray, y: np.ndarray, epochs: int, seed: int, batch: int = 32, lr: float = 3e-3,
          weight_decay: float = 1e-4) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = init_params(rng)
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(v) for k, v in p.items()}
    b1, b2, eps, t = 0.9, 0.999, 1e-8, 0
    steps_per_epoch = int(np.ceil(len(x) / batch))
    total = epochs * steps_per_epoch
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        for s in range(steps_per_epoch):
            idx = order[s * batch:(s + 1) * batch]
            xb, yb = x[idx], y[idx]
            grads = {k: np.zeros_like(val) for k, val in p.items()}
            for w in (WIDTHS[0], WIDTHS[-1], WIDTHS[1 + rng.integers(len(WIDTHS) - 2)]):  # sandwich rule
                sp = sub_params(p, w)
                logits, cache = forward(sp, xb, keep=True)
                d = softmax(logits)
                d[np.arange(len(yb)), yb] -= 1.0
                add_sub_grad(grads, backward(sp, cache, d / len(yb)), w)
            t += 1
            rate = lr * 0.5 * (1 + np.cos(np.pi * t / total))  # cosine decay
            for k in p:
                gk = grads[k] + weight_decay * p[k]
                m[k] = b1 * m[k] + (1 - b1) * gk
                v[k] = b2 * v[k] + (1 - b2) * gk * gk
                mh, vh = m[k] / (1 - b1 ** t), v[k] / (1 - b2 ** t)
                p[k] = (p[k] - rate * mh / (np.sqrt(vh) + eps)).astype(np.float32)
    return p


def export(p: dict[str, np.ndarray], w: float, path: Path) -> Path:
    sp = sub_params(p, w)
    g = GraphBuilder(name=f"digits_{width_tag(w)}", description=f"edge-sdrm3 digits supernet, width {w}")
    x = g.input("image", (1, 8, 8, 1))
    h = g.conv2d(x, sp["w1"], sp["b1"], padding="SAME", activation="relu", name="conv1")
    h = g.conv2d(h, sp["w2"], sp["b2"], padding="SAME", activation="relu", name="conv2")
    h = g.max_pool2d(h, 2, name="pool2")
    h = g.conv2d(h, sp["w3"], sp["b3"], padding="SAME", activation="relu", name="conv3")
    h = g.mean(h, (1, 2), name="gap")
    h = g.fully_connected(h, sp["wf"], sp["bf"], name="logits")
    g.outputs(g.softmax(h, name="probs"))
    return g.write(path)


def tflite_probs(path: Path, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=1)
    it.allocate_tensors()
    i, o = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
    out = np.empty((len(x), CLASSES), np.float32)
    for n in range(len(x)):
        it.set_tensor(i, x[n:n + 1])
        it.invoke()
        out[n] = it.get_tensor(o)[0]
    return out


def load_digits(seed: int):
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split

    d = sk_digits()
    x = (d.images / 16.0).astype(np.float32)[..., None]
    return train_test_split(x, d.target.astype(np.int64), test_size=0.25, stratify=d.target, random_state=seed)


def manifest_block(rows: list[dict], seed: int, epochs: int, n_train: int, n_test: int) -> str:
    lines = [
        BEGIN,
        "[models.digits]",
        'task = "classification"',
        'description = "elastic-width CNN (weight-sharing widths 1.0/0.75/0.5/0.25) trained on scikit-learn digits"',
        'location = "repo"',
        (f'training = "tools/train_digits_supernet.py --seed {seed} --epochs {epochs}; '
        f'{n_train} train / {n_test} held-out images (stratified 25%)"'),
        "segments = 1",
        'inputs = [{ name = "image", shape = [1, 8, 8, 1], dtype = "float32", layout = "NHWC", channels = "gray", range = [0.0, 1.0], note = "pixel value / 16, in [0, 1]" }]',
        'outputs = [{ name = "probs", shape = [1, 10], dtype = "float32", note = "softmax over digits 0-9" }]',
        "",
    ]
    for r in rows:
        lines += [
            "[[models.digits.variants]]",
            f'name = "{r["name"]}"',
            f"width = {r['width']}",
            f'file = "{r["file"]}"',
            f'sha256 = "{r["sha256"]}"',
            f"size = {r['size']}",
            f"accuracy = {r['accuracy']:.4f}",
            (f'accuracy_source = "measured: held-out top-1 on {n_test} digits images, numpy {r["acc_numpy"]:.4f}, '
            f'LiteRT interpreter {r["acc_tflite"]:.4f} (tools/train_digits_supernet.py)"'),
            "",
        ]
    lines.append(END)
    return "\n".join(lines)


def update_manifest(block: str) -> None:
    text = MANIFEST.read_text() if MANIFEST.exists() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        text = head + block + tail
    else:
        text = text.rstrip() + ("\n\n" if text else "") + block + "\n"
    MANIFEST.write_text(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=OUT_DIR)
    ap.add_argument("--no-write", action="store_true", help="train and measure, but leave manifest.toml alone")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    xtr, xte, ytr, yte = load_digits(args.seed)
    p = train(xtr, ytr, args.epochs, args.seed)
    print(f"trained {args.epochs} epochs on {len(xtr)} images in {time.perf_counter() - t0:.1f} s")
    rows = []
    for w in WIDTHS:
        acc_np, probs_np = accuracy(p, w, xte, yte)
        path = export(p, w, args.out / f"digits_{width_tag(w)}.tflite")
        probs_tfl = tflite_probs(path, xte)
        acc_tfl = float((probs_tfl.argmax(1) == yte).mean())
        gap = float(np.abs(probs_tfl - probs_np).max())
        if acc_tfl != acc_np or gap > 1e-4:
            print(f"width {w}: numpy and LiteRT disagree (accuracy {acc_np:.4f} vs {acc_tfl:.4f}, "
                  f"max prob difference {gap:.2e})", file=sys.stderr)
            return 1
        data = path.read_bytes()
        rel = path.resolve().relative_to(OUT_DIR.parent.resolve()).as_posix() if args.out == OUT_DIR else str(path)
        rows.append({"name": width_tag(w), "width": w, "file": rel, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
                         "accuracy": acc_tfl, "acc_numpy": acc_np, "acc_tflite": acc_tfl})
        print(f"width {w:<4}  channels {channels(w)}  held-out accuracy numpy {acc_np:.4f}  LiteRT {acc_tfl:.4f}  "
              f"(max |prob diff| {gap:.1e})  {path} {len(data)} bytes")
    if not args.no_write and args.out == OUT_DIR:
        update_manifest(manifest_block(rows, args.seed, args.epochs, len(xtr), len(xte)))
        print(f"updated {MANIFEST}")
    print(f"total {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
