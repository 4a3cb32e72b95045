"""The service's configuration: one TOML file → frozen dataclasses, one section per component.

Built once at startup (``load_config``); every key has a default (the shipped
``edge_sdrm3/data/systemd/edge-sdrm3.toml`` documents them all); an unknown section or key, or a value of the wrong
type, is rejected naming it, e.g. ``config: [sockets] ingets: unknown key``. ``{runtime_dir}`` and ``{state_dir}``
in string values are expanded.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..tomlfile import TomlFileError, read_toml

if TYPE_CHECKING:
    from ..core.types import Platform


class ConfigError(Exception):
    """A config file that cannot be used; the message names the section and key."""


@dataclass(frozen=True)
class ServiceConfig:
    runtime_dir: str = ""  # "": $RUNTIME_DIRECTORY (systemd), else /run/user/UID/edge-sdrm3, else /tmp/edge-sdrm3-UID
    state_dir: str = ""  # "": $STATE_DIRECTORY (systemd), else ~/.local/state/edge-sdrm3
    tick_s: float = 0.5  # housekeeping tick: watchdog ping, summaries
    summary_every_s: float = 5.0  # a summary record in the log (and a log line) this often
    drain_grace_s: float = 2.0  # on SIGTERM: time allowed for in-flight work before it is recorded as dropped
    hang_factor: float = 10.0  # an invoke running past max(hang_factor x its modelled latency, hang_min_ms) hangs
    hang_min_ms: float = 200.0
    probe_initial_s: float = 0.5  # a failed accelerator is probed after this long, then 2x, 4x, ... up to probe_max_s
    probe_max_s: float = 30.0
    # the event loop runs a block itself, without a hand-off to its accelerator's thread, when it is the only one in
    # flight, computes on the host and took at most this long when last run there (0: never)
    inline_ms: float = 0.5


@dataclass(frozen=True)
class SocketsConfig:
    ingest: str = "ipc://{runtime_dir}/frames.sock"  # PULL, frames in
    results: str = "ipc://{runtime_dir}/results.sock"  # PUB, results and errors out
    control: str = "ipc://{runtime_dir}/control.sock"  # REP, status and commands
    max_message_bytes: int = 16 * 1024 * 1024  # a larger frame message is refused (error too-large)
    ingest_hwm: int = 64  # frames queued in the PULL socket before senders block (ZeroMQ high-water mark)
    results_hwm: int = 10000  # result messages queued per subscriber before PUB drops for that subscriber (at most)
    results_max_bytes: int = 32 * 1024 * 1024  # bytes of results held for subscribers (docs/protocol.md, Bounds)
    max_streams: int = 1024  # streams whose frame rate is tracked; the least recently seen is forgotten beyond
    socket_max_bytes: int = 0  # MAXMSGSIZE of the PULL socket: libzmq discards a larger part; 0: 2 x max_message_bytes
    ipc_mode: str = "0660"  # ipc:// socket files get this mode (octal) after bind
    group: str = ""  # ipc:// socket files (and a runtime dir the service creates) get this group; "": the user's
    allow_remote: bool = False  # false: tcp:// must bind a loopback address (a wildcard or other address is refused)
    curve_secret_key_file: str = ""  # CURVE: the server's secret key file (zmq.auth.create_certificates); "": no CURVE
    curve_allowed_keys_dir: str = ""  # CURVE: directory of the client public keys (*.key) allowed to connect
    curve_admin_keys_dir: str = ""  # CURVE: public keys (*.key) allowed state-changing control commands (authenticated)
    control_commands: str = "all"  # all | read-only | authenticated: who may set-policy, set-params, reload-catalog


@dataclass(frozen=True)
class SchedulerConfig:
    policy: str = "sdrm3"  # a registered policy name (edge-sdrm3 replay --help lists them)
    supernet: bool = True  # sdrm3: with the supernet selector (policy sdrm3+supernet)
    tuner: bool = True  # sdrm3: online tuning of θ
    alpha: float = 0.05  # sdrm3 θ: fairness weight
    beta: float = 1.0  # sdrm3 θ: preference weight
    gamma: float = 4.0  # sdrm3 θ: energy weight (energy decides among placements that keep every job on time)
    delta: float = 0.0  # sdrm3 θ: drop tolerance, fraction of the relative deadline (< 0: no early drops)
    floor: float = 0.9  # supernet: lowest relative accuracy a model may be moved to
    max_queue: int = 256  # ready jobs not yet started; beyond it the oldest is dropped ("overload-queue")
    # learn each segment's cost while running (core/estimator.py); false: the table only; "auto": as true, but what
    # was learned on an emulated accelerator timed to its model (compute when-idle or never) is forgotten once not
    # measured for 5x learn_tau_ms (known_time_accelerators)
    learn_costs: bool | str = "auto"
    learn_tau_ms: float = 200.0  # the learned costs' time constant (a drift is followed within ~5x this)
    admission: bool = True  # refuse at once (reason "admission") a frame that cannot make its deadline given the queue
    chain_ms: float = 10.0  # run a job's next blocks in one go up to this long while nothing else waits (0: never)


@dataclass(frozen=True)
class WorkloadConfig:
    scenario: str = ""  # "": mediapipe_xr when the MediaPipe models are in the cache, else digits
    platform: str = "headset_emulated"  # a platform name or file with profiled / relative costs
    seed: int = 0  # seeds the cascade trigger draws (per stream, frame and model)
    emulated_compute: str = "when-idle"  # emulated accelerators: always | when-idle | never compute real outputs
    cpu_threads: int = 0  # threads of a cpu accelerator; 0: the platform file's, else all cores
    model_cache: str = ""  # "": $EDGE_SDRM3_MODEL_CACHE or ~/.cache/edge-sdrm3/models
    catalog: str = ""  # the model catalog; "": the installed package's models/manifest.toml
    preload: bool = False  # true: every variant loaded before READY; false: each model's default variant, others on first use


@dataclass(frozen=True)
class LogConfig:
    path: str = "{state_dir}/jobs.jsonl"  # the job log: a trace that `edge-sdrm3 replay` accepts
    rotate_bytes: int = 64 * 1024 * 1024  # rotate when the file grows past this; each file starts with the header
    keep: int = 5  # rotated files kept (jobs.jsonl.1 ... .keep)
    level: str = "info"  # service log level (stderr / journal): debug, info, warning, error
    segments: bool = True  # a "segment" record per block run (what `edge-sdrm3 report` draws timelines from)


@dataclass(frozen=True)
class MetricsConfig:
    enabled: bool = False  # true: serve Prometheus metrics over HTTP (needs the `metrics` extra: prometheus-client)
    address: str = "127.0.0.1"  # where to listen; a non-loopback address is refused unless allow_remote
    port: int = 9464  # 0: any free port (the one taken is in `status`, metrics.url, and the log)
    allow_remote: bool = False  # true: the address may be a non-loopback one (the metrics have no authentication)


@dataclass(frozen=True)
class Config:
    service: ServiceConfig = field(default_factory=ServiceConfig)
    sockets: SocketsConfig = field(default_factory=SocketsConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    workload: WorkloadConfig = field(default_factory=WorkloadConfig)
    log: LogConfig = field(default_factory=LogConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    source: str = ""  # the file it came from ("" = defaults)

    @property
    def runtime_dir(self) -> Path:
        return Path(self.service.runtime_dir)

    @property
    def state_dir(self) -> Path:
        return Path(self.service.state_dir)


SECTIONS = {"service": ServiceConfig, "sockets": SocketsConfig, "scheduler": SchedulerConfig,
            "workload": WorkloadConfig, "log": LogConfig, "metrics": MetricsConfig}
CHOICES = {("workload", "emulated_compute"): ("always", "when-idle", "never"),
           ("log", "level"): ("debug", "info", "warning", "error"),
           ("sockets", "control_commands"): ("all", "read-only", "authenticated")}
POSITIVE = {("service", "tick_s"), ("service", "summary_every_s"), ("service", "hang_factor"),
            ("service", "hang_min_ms"), ("service", "probe_initial_s"), ("service", "probe_max_s"), ("sockets", "max_message_bytes"),
            ("sockets", "ingest_hwm"), ("sockets", "results_hwm"), ("sockets", "results_max_bytes"),
            ("sockets", "max_streams"), ("scheduler", "max_queue"), ("scheduler", "learn_tau_ms"), ("log", "rotate_bytes")}
NON_NEGATIVE = {("metrics", "port"), ("service", "drain_grace_s"), ("scheduler", "chain_ms"), ("log", "keep"),
                ("workload", "cpu_threads"), ("scheduler", "floor"), ("service", "inline_ms"),
                ("sockets", "socket_max_bytes")}


def _check(section: str, key: str, value: Any, typ: type) -> Any:
    where = f"config: [{section}] {key}"
    if typ is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: must be a number, got {value!r}")
        value = float(value)
    elif typ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: must be an integer, got {value!r}")
    elif typ is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: must be true or false, got {value!r}")
    elif typ is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: must be a string, got {value!r}")
    elif typ is AUTO_BOOL:
        if not isinstance(value, bool) and value != "auto":
            raise ConfigError(f'{where}: must be true, false or "auto", got {value!r}')
    choices = CHOICES.get((section, key))
    if choices and value not in choices:
        raise ConfigError(f"{where}: must be one of {', '.join(choices)}, got {value!r}")
    if (section, key) in POSITIVE and not value > 0:
        raise ConfigError(f"{where}: must be > 0, got {value!r}")
    if (section, key) in NON_NEGATIVE and not value >= 0:
        raise ConfigError(f"{where}: must be >= 0, got {value!r}")
    if (section, key) == ("metrics", "port") and value > 65535:
        raise ConfigError(f"{where}: must be a TCP port (0-65535), got {value!r}")
    if (section, key) == ("sockets", "ipc_mode"):
        try:
            mode = int(value, 8)
        except ValueError:
            mode = -1
        if not 0 <= mode <= 0o777:
            raise ConfigError(f"{where}: must be an octal file mode such as \"0660\", got {value!r}")
    return value


AUTO_BOOL = (bool, str)  # the type of a key that is true, false or "auto"
_TYPES = {"float": float, "int": int, "bool": bool, "str": str, "bool | str": AUTO_BOOL}


def learns_costs(cfg: Config, platform: Platform) -> bool:
    """Whether the service learns costs (``[scheduler] learn_costs``): ``true`` and ``"auto"`` (the default) do,
    ``false`` keeps the table's. What ``"auto"`` forgets: :func:`known_time_accelerators`."""
    return cfg.scheduler.learn_costs is not False


def known_time_accelerators(cfg: Config, platform: Platform) -> tuple[int, ...]:
    """The accelerators whose own time the table holds (core/estimator.py: ``known``), under ``"auto"``: the
    emulated ones unless ``[workload] emulated_compute`` is ``"always"`` (when idle such a device computes only where
    its last host time fits its modelled latency, never: timing only; either way it is timed to the model). Their
    blocks are learned whole as everywhere (the service's dispatch and a saturated event loop are in them), but what
    was learned of a segment there is forgotten once no block has measured it for ``5 x learn_tau_ms``: it is the
    table plus the overhead the service now shows on that accelerator again. Learned for good (``true``), a cost a
    stalled host raised stayed raised as long as the policy, seeing it dear, ran that segment elsewhere — on the
    host-computed CPU, which stalled the host more: at the scenario's own rates live miss rates of 0.3-24.8%
    against 0.4-3.2% with the table (tools/bench_service.py --parts e), while the table, blind to the service's own
    time, kept 0-1% of the on-time completions at capacity under a 4x overload of 18 frames/s against 112% learned
    (tools/soak.py --interleave). With this rule: a median live miss rate at the table's, 69-97% kept at 4x
    (docs/results/overload_interleaved.md).
    ``true``: every accelerator learned for good; ``false``: none learned."""
    if cfg.scheduler.learn_costs != "auto" or cfg.workload.emulated_compute == "always":
        return ()
    return tuple(i for i, a in enumerate(platform.accelerators) if a.kind == "emulated")


def parse_config(doc: dict, source: str = "") -> Config:
    """Validate a parsed TOML document and build the config (placeholders expanded, directories resolved)."""
    parts: dict[str, Any] = {}
    for section, value in doc.items():
        if section not in SECTIONS:
            raise ConfigError(f"config: [{section}]: unknown section (known: {', '.join(SECTIONS)})")
        if not isinstance(value, dict):
            raise ConfigError(f"config: {section}: must be a table [{section}]")
        cls = SECTIONS[section]
        known = {f.name: _TYPES[f.type if isinstance(f.type, str) else f.type.__name__] for f in fields(cls)}
        for key in value:
            if key not in known:
                raise ConfigError(f"config: [{section}] {key}: unknown key (known: {', '.join(known)})")
        parts[section] = cls(**{k: _check(section, k, v, known[k]) for k, v in value.items()})
    cfg = Config(**parts, source=source)
    m = cfg.metrics
    from .security import is_loopback_host

    if m.enabled and not m.allow_remote and not is_loopback_host(m.address):
        raise ConfigError(f"config: [metrics] address: {m.address!r} is not a loopback address (the metrics have "
                              f"no authentication; set allow_remote = true to serve them there)")
    return _resolve(cfg)


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """The config of ``path`` (a TOML file), or the defaults when None."""
    if path is None:
        return parse_config({})
    p = Path(path)
    try:
        doc = read_toml(p)
    except TomlFileError as e:
        raise ConfigError(f"config: {e}") from None
    return parse_config(doc, str(p))


def default_runtime_dir() -> str:
    env = os.environ.get("RUNTIME_DIRECTORY")
    if env:
        return env.split(":")[0]
    user_run = Path(f"/run/user/{os.getuid()}")
    if user_run.is_dir() and os.access(user_run, os.W_OK):
        return str(user_run / "edge-sdrm3")
    return f"/tmp/edge-sdrm3-{os.getuid()}"


def default_state_dir() -> str:
    env = os.environ.get("STATE_DIRECTORY")
    if env:
        return env.split(":")[0]
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return str(Path(base) / "edge-sdrm3")


def _expand(value: str, where: str, names: dict[str, str]) -> str:
    try:
        return os.path.expanduser(value.format(**names))
    except (KeyError, IndexError, ValueError, AttributeError, TypeError) as e:  # e.g. {state_dir.x}, {state_dir[x]}
        raise ConfigError(f"config: {where}: bad placeholder in {value!r} ({e}; known: "
                          f"{', '.join('{' + k + '}' for k in names)})") from None


def _resolve(cfg: Config) -> Config:
    svc = cfg.service
    runtime_dir = os.path.expanduser(svc.runtime_dir) if svc.runtime_dir else default_runtime_dir()
    state_dir = os.path.expanduser(svc.state_dir) if svc.state_dir else default_state_dir()
    names = {"runtime_dir": runtime_dir, "state_dir": state_dir}
    runtime_dir = _expand(runtime_dir, "[service] runtime_dir", {"state_dir": state_dir, "runtime_dir": runtime_dir})
    out: dict[str, Any] = {"service": dataclasses.replace(svc, runtime_dir=runtime_dir, state_dir=state_dir)}
    for section in ("sockets", "scheduler", "workload", "log", "metrics"):
        obj = getattr(cfg, section)
        changes = {f.name: _expand(getattr(obj, f.name), f"[{section}] {f.name}", names)
                   for f in fields(obj) if isinstance(getattr(obj, f.name), str) and "{" in getattr(obj, f.name)}
        out[section] = dataclasses.replace(obj, **changes) if changes else obj
    return dataclasses.replace(cfg, **out)


def as_dict(cfg: Config) -> dict:
    """The config as plain data (for `status` and the log)."""
    return {s: dataclasses.asdict(getattr(cfg, s)) for s in SECTIONS}
