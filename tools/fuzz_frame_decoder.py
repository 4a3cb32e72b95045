#!/usr/bin/env python3
"""Coverage-guided fuzzing of the wire-protocol decoders (atheris / libFuzzer), bounded in time.

Run from the repository root:

    .venv/bin/python tools/fuzz_frame_decoder.py                 # 60 s
    .venv/bin/python tools/fuzz_frame_decoder.py --seconds 300 --jobs 4
    .venv/bin/python tools/fuzz_frame_decoder.py --runs 100000   # a fixed number of inputs instead

Needs ``atheris`` (``pip install -e '.[fuzz]'``; it builds against clang's libFuzzer, wheels exist for
x86_64 Linux). Without it the script says so and exits with status 2.

One fuzz input is one multipart message: its bytes split at ``SEP`` (``0xc1 0xc1``; ``0xc1`` is the one byte
msgpack never uses as a type, so a header never contains it by itself). The parts go through
``decode_frame``, ``decode_result``, ``decode_request`` and ``decode_reply``; the only exception allowed is
``ProtocolError`` with a code from ``ERROR_CODES`` and a non-empty message, and an accepted frame must be
self-consistent (each array's shape, dtype and byte size match its header entry and its part, and it
re-encodes to a message that decodes to the same thing). Anything else is a finding.

Half of the mutations are libFuzzer's own (bytes); the other half decode the header and change one node of it
(an interesting value, a deletion, a list grown past numpy's 32/64 dimensions...) or size the payload parts to
what the header declares, so that the search gets past msgpack and the byte-length check.

The search starts from ``tests/fuzz/corpus/frame_decoder/`` plus seeds built here (valid frames, results,
requests). Found crashes and hangs are written there (``crash-*``, ``timeout-*``, ``oom-*``); afterwards
libFuzzer's merge adds the inputs that reached new coverage (``--no-merge`` skips that). Every file there is
replayed by ``tests/fuzz/test_corpus.py``, so a finding, once fixed, stays fixed.
"""
from __future__ import annotations

import argparse
import random
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "fuzz" / "corpus" / "frame_decoder"
SEP = b"\xc1\xc1"
MAX_PARTS = 64
MAX_LEN = 4096

if str(ROOT) not in sys.path:  # runnable from a checkout without installation
    sys.path.insert(0, str(ROOT))


def split_message(data: bytes) -> list[bytes]:
    """A fuzz input as a multipart message (at most ``MAX_PARTS`` parts; the rest stays in the last)."""
    return data.split(SEP, MAX_PARTS - 1)


def join_message(parts: list[Any]) -> bytes:
    return SEP.join(bytes(memoryview(p).cast("B")) if not isinstance(p, bytes) else p for p in parts)


def check_one(data: bytes) -> None:
    """Run every decoder on one input; raise (AssertionError or the decoder's own exception) on a finding."""
    from edge_sdrm3.client import protocol as p

    parts = split_message(data)

    def typed(e: p.ProtocolError) -> None:
        assert e.code in p.ERROR_CODES, f"ProtocolError with unknown code {e.code!r}"
        assert isinstance(e.message, str) and e.message, "ProtocolError with an empty message"

    try:
        header, arrays = p.decode_frame(parts)
    except p.ProtocolError as e:
        typed(e)
    else:
        assert len(arrays) == len(header.tensors) == len(parts) - 1
        for spec, arr, part in zip(header.tensors, arrays, parts[1:]):
            assert arr.shape == spec.shape and arr.dtype == p.DTYPES[spec.dtype], (arr.shape, arr.dtype, spec)
            assert arr.nbytes == len(part) == spec.nbytes
        fields = {"stream": header.stream, "frame": header.frame, "t_capture_ms": header.t_capture_ms,
                  "models": header.models, "tensors": [{"model": t.model} for t in header.tensors]}
        again, arrays2 = p.decode_frame(p.encode_frame({k: v for k, v in fields.items() if v is not None}, arrays))
        assert (again.stream, again.frame, again.t_capture_ms, again.models, again.tensors) == \
            (header.stream, header.frame, header.t_capture_ms, header.models, header.tensors), "round trip differs"
        assert all(a.tobytes() == b.tobytes() for a, b in zip(arrays, arrays2))
    try:
        h, outs = p.decode_result(parts)
        assert isinstance(h, dict) and isinstance(h["topic"], str) and len(outs) == len(parts) - 2
    except p.ProtocolError as e:
        typed(e)
    try:
        cmd, args = p.decode_request(parts[0])
        assert cmd in p.COMMANDS and isinstance(args, dict)
    except p.ProtocolError as e:
        typed(e)
    try:
        rep = p.decode_reply(parts[0])
        assert isinstance(rep["ok"], bool)
    except p.ProtocolError as e:
        typed(e)


def seeds() -> dict[str, bytes]:
    """Valid messages of each kind, and a few near misses, as starting points for the search."""
    import msgpack
    import numpy as np

    from edge_sdrm3.client import protocol as p

    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    x = np.linspace(0, 1, 8, dtype=np.float32).reshape(1, 8)
    out: dict[str, list[Any]] = {
        "frame-image": p.encode_frame({"stream": "cam0", "frame": 1, "t_capture_ms": 3.5}, [img]),
        "frame-tagged": p.encode_frame({"stream": "cam0", "frame": 2, "models": ["digits"],
                                        "tensors": [{}, {"model": "digits"}]}, [img, x]),
        "frame-all-dtypes": p.encode_frame({"stream": "s", "frame": 0},
                                           [np.zeros(2, dtype=d) for d in p.DTYPES]),
        "frame-empty-tensor": p.encode_frame({"stream": "s", "frame": 0}, [np.zeros((0, 4), np.float32)]),
        "frame-no-tensors": p.encode_frame({"stream": "s", "frame": 0}),
        "result": p.encode_result({"model": "digits", "stream": "s", "frame": 3, "status": "done"}, [x]),
        "error": p.encode_error("bad-shape", "part 1: 7 bytes", stream="s", frame=4, count=1),
        "request": [p.encode_request("set-params", params={"alpha": 0.1})],
        "reply-ok": [p.encode_reply({"policy": "sdrm3"})],
        "reply-error": [p.encode_reply(error=p.ProtocolError("bad-argument", "no such policy"))],
        "frame-v2": [msgpack.packb({"v": 2, "stream": "s", "frame": 0, "tensors": []})],
    }
    return {k: join_message(v) for k, v in out.items()}


_INTERESTING: list[Any] = [0, 1, -1, 2, 3, 32, 33, 64, 65, 255, 2**31, 2**32, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1,
                           -(2**63), 0.0, -0.0, 1.0, 0.5, float("nan"), float("inf"), float("-inf"), True, False,
                           None, "", "x", "float32", "uint8", "bool", "float16", "int64", "complex64", ">f4", "v",
                           b"", b"\x00", [], {}, [0], [1] * 33, [1] * 65, [0, 2**63], [2**32, 2**32]]


def structured_mutation(data: bytes, rng: random.Random) -> bytes | None:
    """One change to a message whose header is msgpack, made on the decoded header: a node replaced by an
    interesting value, deleted, duplicated or a list grown; or the payload parts resized to what the header
    declares (to get past the byte-length check). None when the header does not decode."""
    import msgpack

    parts = split_message(data)
    try:
        h = msgpack.unpackb(parts[0], raw=False, strict_map_key=False)
    except Exception:  # noqa: BLE001 - not msgpack: libFuzzer's byte mutations take this one
        return None
    nodes: list[tuple[Any, Any]] = [(None, None)]  # (container, key); (None, None) is the root

    def walk(obj: Any) -> None:
        items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
        for k, v in list(items):
            nodes.append((obj, k))
            walk(v)

    walk(h)
    container, key = rng.choice(nodes)
    op = rng.randrange(5)
    if op == 4 and isinstance(h, dict) and isinstance(h.get("tensors"), list):  # payloads sized to the header
        from edge_sdrm3.client import protocol as p

        sizes = []
        for t in h["tensors"]:
            shape, dtype = (t.get("shape"), t.get("dtype")) if isinstance(t, dict) else (None, None)
            if isinstance(shape, list) and all(type(d) is int for d in shape) and isinstance(dtype, str) \
                    and dtype in p.DTYPES:
                sizes.append(p.TensorSpec(tuple(shape), dtype).nbytes)
            else:
                sizes.append(rng.randrange(16))
        parts = [parts[0], *(bytes(rng.randrange(256) for _ in range(min(n, 64))) + bytes(max(0, n - 64))
                             if n < 4096 else b"" for n in sizes)]
    elif container is None:
        h = rng.choice(_INTERESTING)
    elif op == 0:
        container[key] = rng.choice(_INTERESTING)
    elif op == 1:
        del container[key]
    elif op == 2 and isinstance(container[key], list) and container[key]:
        node = container[key]
        node.extend([rng.choice(node)] * rng.choice([1, 1, 2, 31, 33, 64]))
    else:
        v = container[key]
        container[key] = v if not isinstance(v, int) or isinstance(v, bool) else rng.choice([v + 1, v - 1, -v, v * 2**32])
        if isinstance(container, dict):
            container[rng.choice(["v", "stream", "frame", "t_capture_ms", "models", "tensors", "shape", "dtype",
                                  "model", "cmd", "ok", "x"])] = rng.choice(_INTERESTING)
    try:
        return join_message([msgpack.packb(h, use_bin_type=True), *parts[1:]])
    except Exception:  # noqa: BLE001 - e.g. an integer grown past 64 bits
        return None


def _fuzz(argv: list[str]) -> None:
    """The child process: libFuzzer's own command line (``argv``), in-process."""
    import atheris
    import msgpack  # noqa: F401  (imported first: only our own code is instrumented)
    import numpy  # noqa: F401

    with atheris.instrument_imports():
        import edge_sdrm3.client.protocol  # noqa: F401  (instrumented for coverage)

    def one_input(data: bytes) -> None:
        check_one(data)

    def mutator(data: bytes, max_size: int, seed: int) -> bytes:
        rng = random.Random(seed)
        if rng.random() < 0.5:
            try:
                out = structured_mutation(data, rng)
            except Exception:  # noqa: BLE001 - a bug of the mutator is no finding: fall back to libFuzzer's mutations
                out = None
            if out is not None and len(out) <= max_size:
                return out
        return atheris.Mutate(data, max_size)

    # libFuzzer re-runs argv[0] through the shell for -merge and -fork: make it this interpreter and script
    argv0 = f"{shlex.quote(sys.executable)} {shlex.quote(__file__)} --child"
    atheris.Setup([argv0, *argv], one_input, custom_mutator=mutator)
    atheris.Fuzz()


def _last_int(pattern: str, text: str) -> int | None:
    m = re.findall(pattern, text)
    return int(m[-1]) if m else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=60, help="fuzzing time (default 60)")
    ap.add_argument("--runs", type=int, default=-1, help="stop after this many inputs (default: no limit)")
    ap.add_argument("--jobs", type=int, default=1, help="parallel fuzzing processes (libFuzzer -fork)")
    ap.add_argument("--corpus", type=Path, default=CORPUS, help=f"kept corpus (default {CORPUS.relative_to(ROOT)})")
    ap.add_argument("--no-merge", action="store_true", help="do not add new interesting inputs to the corpus")
    ap.add_argument("--seed", type=int, default=1, help="libFuzzer -seed (default 1)")
    args = ap.parse_args(argv)
    try:
        import atheris  # noqa: F401
    except ImportError:
        print("fuzz_frame_decoder: atheris is not installed. Install it with `pip install -e '.[fuzz]'` (or "
              "`pip install atheris`); it builds against clang's libFuzzer (wheels exist for x86_64 Linux, "
              "elsewhere it needs clang >= 6 with libFuzzer). The property tests in tests/fuzz/ run without "
              "it.", file=sys.stderr)
        return 2
    args.corpus.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fuzz-frame-") as tmp:
        work = Path(tmp) / "work"
        work.mkdir()
        for f in args.corpus.iterdir():
            if f.is_file():
                shutil.copy(f, work / f.name)
        for name, data in seeds().items():
            (work / f"seed-{name}").write_bytes(data)
        before = {f.name for f in args.corpus.iterdir()}
        cmd = [sys.executable, __file__, "--child", str(work), f"-max_total_time={args.seconds}",
               f"-runs={args.runs}", f"-max_len={MAX_LEN}", "-timeout=10", "-rss_limit_mb=4096",
               f"-seed={args.seed}", f"-artifact_prefix={args.corpus}/", "-print_final_stats=1",
               f"-dict={_write_dict(Path(tmp))}"]
        if args.jobs > 1:
            cmd += [f"-fork={args.jobs}", "-ignore_crashes=1", "-ignore_timeouts=1", "-ignore_ooms=1"]
        print("fuzz_frame_decoder:", " ".join(cmd[2:]), flush=True)
        run = subprocess.run(cmd, check=False, stderr=subprocess.PIPE, text=True, errors="replace", cwd=tmp)
        sys.stderr.write(run.stderr[-6000:])
        execs = _last_int(r"stat::number_of_executed_units:\s*(\d+)", run.stderr) \
            or _last_int(r"#(\d+): cov:", run.stderr)  # -fork mode reports only progress lines
        secs = _last_int(r"Done \d+ runs in (\d+) second", run.stderr) \
            or _last_int(r"INFO: fuzzed for (\d+) seconds", run.stderr)
        if not args.no_merge:
            subprocess.run([sys.executable, __file__, "--child", "-merge=1", f"-max_len={MAX_LEN}",
                            str(args.corpus), str(work)], check=False, stderr=subprocess.PIPE, cwd=tmp)
    after = {f.name for f in args.corpus.iterdir()}
    new = sorted(after - before)
    findings = [n for n in new if n.startswith(("crash-", "timeout-", "oom-", "leak-", "slow-unit-"))]
    print(f"\nfuzz_frame_decoder: {secs if secs is not None else '?'} s, "
          f"{execs if execs is not None else '?'} executions, exit status {run.returncode}; "
          f"{len(findings)} finding(s){': ' + ', '.join(findings) if findings else ''}; "
          f"{len(new) - len(findings)} new corpus input(s) in {args.corpus}")
    return 1 if findings or run.returncode != 0 else 0


def _write_dict(folder: Path) -> Path:
    """A libFuzzer dictionary: the header keys, dtype names, error-prone values and the part separator."""
    from edge_sdrm3.client import protocol as p

    words = [b"v", b"stream", b"frame", b"t_capture_ms", b"models", b"tensors", b"shape", b"dtype", b"model",
             b"cmd", b"ok", b"topic", *(d.encode() for d in p.DTYPES), *(c.encode() for c in p.COMMANDS),
             SEP, b"\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00",  # float64 NaN
             b"\xcf\xff\xff\xff\xff\xff\xff\xff\xff", b"\xd3\x80\x00\x00\x00\x00\x00\x00\x00",  # uint64 max, int64 min
             b"\xdc\x00\x41"]  # array16 of 65 entries
    path = folder / "protocol.dict"
    path.write_text("".join('"' + "".join(f"\\x{b:02x}" for b in w) + '"\n' for w in words))
    return path


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _fuzz(sys.argv[2:])
    else:
        sys.exit(main())
