"""The control socket (REP): one request, one reply; the commands of docs/protocol.md from a table of handlers."""
from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..client import protocol
from ..client.protocol import ProtocolError
from ..core.types import ConfigError as CoreConfigError
from .config import as_dict
from .workload import make_policy_from

if TYPE_CHECKING:
    from .service import Service

log = logging.getLogger("edge_sdrm3.service")

Handler = Callable[[dict], Awaitable[dict]]


class Control:
    def __init__(self, service: Service) -> None:
        self.svc = service
        self.handlers: dict[str, Handler] = {
            "status": self.status, "stats": self.stats, "set-policy": self.set_policy,
            "set-params": self.set_params, "reload-catalog": self.reload_catalog,
        }

    async def run(self, rep: Any) -> None:
        svc = self.svc
        while True:
            parts = await rep.recv_multipart(copy=False)  # frames: the sender's User-Id (CURVE key) is on them
            svc.counters["control_requests"] += 1
            try:
                if len(parts) != 1:
                    raise ProtocolError("bad-header", f"a control request is one message part, got {len(parts)}")
                cmd, args = protocol.decode_request(parts[0])
                svc.security.check_command(cmd, parts[0])  # [sockets] control_commands (security.py)
                reply = protocol.encode_reply(await self.command(cmd, args))
            except ProtocolError as e:
                svc.results.error(e.code, f"control: {e.message}")
                reply = protocol.encode_reply(error=e)
            except Exception as e:  # noqa: BLE001 - answer, never leave the REP socket stuck
                log.exception("control command failed")
                reply = protocol.encode_reply(error=ProtocolError("internal", f"{type(e).__name__}: {e}"))
            await rep.send(reply)

    async def command(self, cmd: str, args: dict) -> dict:
        handler = self.handlers.get(cmd)
        if handler is None:  # pragma: no cover - decode_request knows the commands
            raise ProtocolError("unknown-command", f"unknown command {cmd!r}")
        return await handler(args)

    async def status(self, args: dict) -> dict:
        svc, eng, wl = self.svc, self.svc.engine, self.svc.wl
        queues = Counter(j.model.name for j in eng.disp.ready)
        snap = eng.total.result(drops=True)
        return {
            "policy": eng.policy.name, "theta": eng.policy.params() or None, "scenario": wl.scenario.name,
            "platform": wl.spec.platform.name, "accelerators": svc.accelerators.status(),
            "queues": {m.name: queues.get(m.name, 0) for m in wl.models},
            "models": {k: {"due": v["due"], "missed": v["missed"], "miss_rate": v["miss_rate"]}
                       for k, v in snap["models"].items()},
            "inputs": {vf[0].model: [{"name": s.name, "shape": list(s.shape), "dtype": s.dtype.name, **_image(d)}
                                     for s, d in zip(vf[0].inputs, wl.declared.get(vf[0].model) or [None] * 99)]
                       for vf in wl.files},
            "roots": wl.roots, "variants": eng.variants_in_use(),
            "uxcost": snap["uxcost"], "miss_rate": snap["miss_rate"], "xrbench_score": snap["xrbench_score"],
            "errors": dict(svc.errors), "uptime_s": svc.now() / 1000.0, "log": svc.recorder.state(),
            "skipped": dict(svc.ingest.skipped), "streams": svc.ingest.streams(), "results": svc.results.status(),
            "admission": svc.ingest.admission_status(),
            "metrics": {"url": svc.metrics.url} if svc.metrics is not None else None,
        }

    async def stats(self, args: dict) -> dict:
        svc, eng = self.svc, self.svc.engine
        c, rec = eng.disp.counters, svc.recorder
        return {
            "dispatcher": {"decisions": c.decisions, "invalid_decisions": c.invalid_decisions,
                           "fallbacks": c.fallbacks, "drops_policy": c.drops_policy,
                           "drops_deadline": c.drops_deadline, "retries": c.retries,
                           "accelerator_errors": dict(c.errors)},
            "sockets": {k: svc.counters[k] for k in ("frames_in", "frames_accepted", "results_out",
                                                      "results_dropped", "control_requests")},
            "jobs": {"released": eng.released, "in_flight": len(eng.inflight), "ready": len(eng.disp.ready),
                     "waiting_upstream": sum(len(v) for v in eng.held.values()), "drops": dict(eng.drops)},
            "run": svc.summaries.run_so_far(),
            "errors": dict(svc.errors),
            "recorder": {"path": str(rec.path), "lines": rec.lines, "rotations": rec.rotations, "errors": rec.errors,
                         "lost": rec.lost, "error": rec.error},
            "config": as_dict(svc.cfg),
            "security": svc.security.stats(),
        }

    async def set_policy(self, args: dict) -> dict:
        name = args.get("policy")
        if not isinstance(name, str):
            raise ProtocolError("bad-argument", "set-policy needs 'policy': a policy name")
        try:
            pol = self.svc.engine.set_policy(make_policy_from(self.svc.cfg, name))
        except CoreConfigError as e:
            raise ProtocolError("bad-argument", str(e)) from None
        log.info("policy set to %s", pol.name)
        self.svc.kick()
        return {"policy": pol.name, "theta": pol.params() or None}

    async def set_params(self, args: dict) -> dict:
        params = args.get("params")
        pol = self.svc.engine.policy
        if not isinstance(params, dict) or not params:
            raise ProtocolError("bad-argument", "set-params needs 'params': {name: number, ...}")
        try:
            new = pol.set_params(params)
        except CoreConfigError as e:
            raise ProtocolError("bad-argument", f"params: {e}") from None
        log.info("parameters of %s set to %s", pol.name, new)
        return {"theta": new}

    async def reload_catalog(self, args: dict) -> dict:
        return await self.svc.reload_catalog()


def _image(declared: Any) -> dict:
    """The catalog's image declaration of an input (layout, channels, range), as ``status`` reports it."""
    if declared is None or not declared.image:
        return {}
    return {"layout": declared.layout, "channels": declared.channels,
            "range": list(declared.range) if declared.range else None}
