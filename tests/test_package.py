"""The package a device installs: the wheel carries its data; a fresh venv runs the commands from any directory;
the 32-bit Arm variant runs on tflite-runtime; `make install DESTDIR=...` stages a unit that systemd accepts.

Built as a user would: the wheel from a copy of this tree (`pip wheel`), installed with pip into new venvs under a
temporary folder (dependencies from the package index, through pip's cache), every command run from another
directory with no PYTHONPATH, so nothing can be found through the checkout. About 80 s on an idle 2-core VM with a
warm pip cache, 3 minutes on a loaded one (each venv install is most of it).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from edge_sdrm3.data import data_path

ROOT = Path(__file__).resolve().parents[1]
ANALYZE = shutil.which("systemd-analyze")
SCENARIOS = {"ar_assistant", "ar_gaming", "digits", "mediapipe_xr", "mediapipe_xr_slow", "outdoor_a", "outdoor_b",
             "social_a", "social_b", "vr_gaming"}
# what a checkout holds besides the sources: never part of what is built
NOT_SOURCES = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
                                     ".ruff_cache", ".mypy_cache", ".hypothesis", "out")


def run(cmd: list[str], cwd: Path, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} -> {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def user_env(home: Path) -> dict:
    """A user's environment: no PYTHONPATH or venv of this checkout, a home of its own (empty model cache)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "EDGE_SDRM3_MODEL_CACHE",
                                                             "XDG_STATE_HOME", "XDG_RUNTIME_DIR")}
    home.mkdir(parents=True, exist_ok=True)
    return {**env, "HOME": str(home)}


def new_venv(where: Path) -> Path:
    run([sys.executable, "-m", "venv", str(where)], cwd=where.parent)
    return where / "bin"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=NOT_SOURCES, symlinks=True)
    # as `make dist` builds it: pure Python, the C estimate left to installs from the tree or the sdist
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp / "dist"), str(src)], cwd=tmp,
        env={**os.environ, "EDGE_SDRM3_PURE": "1"})
    (whl,) = (tmp / "dist").glob("edge_sdrm3-*-py3-none-any.whl")
    return whl


def test_the_wheel_carries_every_shipped_file(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = [p for p in data_path().rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert len(shipped) >= 50  # 9 scenarios, 40 platforms, 7 model files, the unit and config when written
    for p in shipped:
        assert "edge_sdrm3/data/" + p.relative_to(data_path()).as_posix() in names, p
    assert not any(n.startswith(("tests/", "tools/", "docs/")) for n in names)
    assert wheel.stat().st_size < 1_000_000  # 0.51 MB when written: code, data, the digits supernet


def test_a_fresh_venv_runs_the_commands_from_another_directory(wheel: Path, tmp_path: Path) -> None:
    bin_ = new_venv(tmp_path / "v")
    env = user_env(tmp_path / "home")
    run([str(bin_ / "pip"), "install", "-q", str(wheel)], cwd=tmp_path, env=env)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cli = str(bin_ / "edge-sdrm3")

    where = run([str(bin_ / "python"), "-c", "import edge_sdrm3.data as d; print(d.data_dir())"], elsewhere, env)
    assert Path(where.stdout.strip()).is_relative_to(tmp_path / "v"), where.stdout
    assert {line.split()[0] for line in run([cli, "scenarios"], elsewhere, env).stdout.splitlines()} == SCENARIOS
    assert "dual_4k_ws_os" in run([cli, "platforms"], elsewhere, env).stdout.split()
    res = json.loads(run([cli, "replay", "vr_gaming", "--platform", "dual_4k_ws_os", "--policy", "sdrm3",
                          "--duration", "2", "--json"], elsewhere, env).stdout)
    assert res["scenario"] == "vr_gaming" and res["frames_due"] > 0 and res["uxcost"] > 0, res
    listed = run([cli, "models", "list"], elsewhere, env).stdout
    digits = [line for line in listed.splitlines() if line.split()[:1] in (["digits"], ["w75"], ["w50"], ["w25"])]
    assert len(digits) == 4 and all(" yes " in line for line in digits), listed
    check = run([cli, "serve", "--check"], elsewhere, env).stdout
    assert "built-in defaults: ok: policy sdrm3, scenario digits" in check, check
    assert not any(elsewhere.iterdir())  # nothing written where the commands ran


def _requirements_of_a_32bit_board(wheel: Path) -> list[str]:
    """The wheel's requirements as pip evaluates them on Raspberry Pi OS armhf with the documented extra, with this
    machine's Python (the markers decide: no ai-edge-litert, tflite-runtime 2.14.0 and numpy<2 instead)."""
    with zipfile.ZipFile(wheel) as z:
        meta = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    env = {"platform_machine": "armv7l", "python_version": f"{sys.version_info[0]}.{sys.version_info[1]}",
           "sys_platform": "linux", "extra": "tflite-runtime"}
    reqs = [Requirement(line.split(":", 1)[1].strip()) for line in meta.splitlines()
            if line.startswith("Requires-Dist:")]
    return [str(Requirement(f"{r.name}{r.specifier}")) for r in reqs if r.marker is None or r.marker.evaluate(env)]


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="tflite-runtime 2.14.0 has wheels for CPython 3.9-3.11 only")
def test_the_32bit_variant_runs_the_models_on_tflite_runtime(wheel: Path, tmp_path: Path) -> None:
    """What a 32-bit board installs (`pip install 'edge-sdrm3[tflite-runtime]'` on armv7l), on this machine: the real
    tflite-runtime 2.14.0 with numpy 1.x and no ai-edge-litert at all; hal/runtime.py must choose it."""
    reqs = _requirements_of_a_32bit_board(wheel)
    names = {Requirement(r).name for r in reqs}
    assert "ai-edge-litert" not in names and {"tflite-runtime", "numpy"} <= names, reqs
    assert any(r.startswith("numpy") and "<2" in r for r in reqs), reqs
    bin_ = new_venv(tmp_path / "v32")
    env = user_env(tmp_path / "home")
    run([str(bin_ / "pip"), "install", "-q", "--no-deps", str(wheel)], cwd=tmp_path, env=env)
    run([str(bin_ / "pip"), "install", "-q", *reqs], cwd=tmp_path, env=env)
    py = str(bin_ / "python")
    absent = subprocess.run([py, "-c", "import ai_edge_litert"], capture_output=True, text=True, cwd=tmp_path)
    assert absent.returncode != 0 and "No module named 'ai_edge_litert'" in absent.stderr
    detect = json.loads(run([str(bin_ / "edge-sdrm3"), "platforms", "--detect"], tmp_path, env).stdout)
    assert detect["runtime"]["runtime"] == "tflite_runtime" and detect["runtime"]["version"] == "2.14.0", detect
    assert detect["runtime"]["module"] == "tflite_runtime.interpreter" and not detect["runtime"]["compiled_model"]
    model = str(data_path("models", "digits", "digits_w100.tflite"))
    probs = run([py, "-c", f"""
import numpy as np
from hal.devices import open_device
with open_device("cpu:1") as dev:
    x = np.zeros((1, 8, 8, 1), np.float32)
    x[0, 1:7, 3:5, 0] = 16.0  # a vertical bar
    print(np.__version__, dev.load({model!r}).invoke([x])[0].tolist())
"""], tmp_path, env).stdout.split(" ", 1)
    assert probs[0].startswith("1."), probs  # numpy 1.x, as tflite-runtime 2.14 needs
    p = json.loads(probs[1])[0]
    assert len(p) == 10 and abs(sum(p) - 1.0) < 1e-4 and max(p) > 0.2, p
    check = run([str(bin_ / "edge-sdrm3"), "serve", "--check"], tmp_path, env).stdout
    assert "ok: policy sdrm3, scenario digits (1 models, 4 model files checked" in check, check
    # what this variant cannot do (README "Boards"): cut a model into segments; refused in one line, exit 2
    split = subprocess.run([str(bin_ / "edge-sdrm3"), "models", "split", model, "--segments", "2", "-o",
                            str(tmp_path / "segs")], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert split.returncode == 2 and split.stderr.count("\n") == 1, split.stderr
    assert "needs ai-edge-litert's flatbuffer schema, which tflite-runtime does not ship" in split.stderr


@pytest.fixture(scope="module")
def staged(wheel: Path, tmp_path_factory) -> tuple[Path, str]:
    """`make install` of the wheel into a DESTDIR (PREFIX /opt/edge-sdrm3, the unit in /etc/systemd/system)."""
    dest = tmp_path_factory.mktemp("destdir")
    r = run(["make", "--no-print-directory", "install", f"DESTDIR={dest}", f"PACKAGE={wheel}",
             f"PYTHON={sys.executable}"], cwd=ROOT, env=user_env(dest.parent / "home"))
    return dest, r.stdout


def test_make_install_stages_the_venv_the_unit_and_the_config(staged: tuple[Path, str], tmp_path: Path) -> None:
    dest, out = staged
    unit = (dest / "etc/systemd/system/edge-sdrm3.service").read_text()
    assert "\nExecStart=/opt/edge-sdrm3/bin/edge-sdrm3 serve --config %E/edge-sdrm3/edge-sdrm3.toml\n" in unit
    assert "\nEnvironment=EDGE_SDRM3_MODEL_CACHE=%S/edge-sdrm3/models\n" in unit  # the state directory
    script = dest / "opt/edge-sdrm3/bin/edge-sdrm3"
    assert script.read_text().splitlines()[0] == "#!/opt/edge-sdrm3/bin/python"  # where the tree will live
    assert os.access(script, os.X_OK)
    conf = dest / "etc/edge-sdrm3/edge-sdrm3.toml"
    assert conf.read_bytes() == data_path("systemd", "edge-sdrm3.toml").read_bytes()
    assert not conf.with_name("edge-sdrm3.toml.new").exists()
    assert "sudo systemctl daemon-reload" in out and "sudo systemctl enable --now edge-sdrm3" in out
    assert "sudo /opt/edge-sdrm3/bin/edge-sdrm3 models fetch --dest /var/lib/edge-sdrm3/models" in out
    # the staged venv runs (its python finds its own site-packages wherever the tree is)
    env = {**user_env(tmp_path / "home"), "EDGE_SDRM3_MODEL_CACHE": str(tmp_path / "models")}
    check = run([str(dest / "opt/edge-sdrm3/bin/python"), "-m", "edge_sdrm3.cli", "serve", "--check", "--config",
                 str(conf)], tmp_path, env).stdout
    assert f"edge-sdrm3: {conf}: ok: policy sdrm3, scenario digits" in check, check


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")
def test_the_installed_unit_verifies_with_its_real_paths(staged: tuple[Path, str], tmp_path: Path) -> None:
    """`systemd-analyze verify --root=DESTDIR`: ExecStart=/opt/edge-sdrm3/bin/edge-sdrm3 is looked up in the staged
    tree. The root gets what any device has beside it: systemd's own units and /bin/kill (ExecReload)."""
    dest, _ = staged
    root = tmp_path / "root"
    shutil.copytree(dest, root, symlinks=True)
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    (root / "usr/bin").mkdir(exist_ok=True)
    shutil.copy2(shutil.which("kill") or "/bin/kill", root / "usr/bin/kill")
    (root / "bin").symlink_to("usr/bin")
    r = subprocess.run([ANALYZE, "verify", f"--root={root}", "edge-sdrm3.service"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    noise = [line for line in (r.stdout + r.stderr).splitlines() if "edge-sdrm3" in line]
    assert not noise, "\n".join(noise)
    # and it does look there: without the staged command the same unit is refused, naming it
    (root / "opt/edge-sdrm3/bin/edge-sdrm3").unlink()
    r = subprocess.run([ANALYZE, "verify", f"--root={root}", "edge-sdrm3.service"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode != 0 and "/opt/edge-sdrm3/bin/edge-sdrm3 is not executable" in r.stdout + r.stderr


def test_an_edited_config_is_never_overwritten(staged: tuple[Path, str]) -> None:
    dest, _ = staged
    conf = dest / "etc/edge-sdrm3/edge-sdrm3.toml"
    edited = conf.read_text().replace('policy = "sdrm3"', 'policy = "edf"')
    assert edited != conf.read_text()
    conf.write_text(edited)
    out = run(["make", "--no-print-directory", "install-config", f"DESTDIR={dest}"], cwd=ROOT).stdout
    assert conf.read_text() == edited
    assert conf.with_name("edge-sdrm3.toml.new").read_bytes() == data_path("systemd", "edge-sdrm3.toml").read_bytes()
    assert "kept as it is; the shipped default is beside it" in out, out


def test_make_uninstall_removes_what_it_installed_and_keeps_the_config(staged: tuple[Path, str]) -> None:
    dest, _ = staged  # (runs last: the other tests of the staged tree come first in this file)
    run(["make", "--no-print-directory", "uninstall", f"DESTDIR={dest}"], cwd=ROOT)
    assert not (dest / "opt/edge-sdrm3").exists()
    assert not (dest / "etc/systemd/system/edge-sdrm3.service").exists()
    assert (dest / "etc/edge-sdrm3/edge-sdrm3.toml").exists()
