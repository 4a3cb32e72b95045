"""Supernet selection (DESIGN.md §4): each model's variant, from an accuracy budget and the load.

UXCost charges energy and misses; accuracy is a constraint: the completed frames' mean relative accuracy
must stay at or above ``min_accuracy``, and no variant below the per-model ``floor`` is ever used. The
selector plans, for every model, which share of its jobs runs which variant:

1. **Energy within the accuracy budget.** Starting from the largest variants, it takes the steps (one model
   to its next lighter variant on the lower convex hull of accuracy against energy) that save the most
   energy per unit of accuracy lost, weighted by each model's rate of due frames, while the planned mean
   accuracy stays at or above ``min_accuracy``; the last step is taken for a share of the model's jobs.
   A model's variants too slow to meet its deadline even alone are never used (what that costs in accuracy
   comes off the budget first). What the completed frames so far owe the bound (or have to spare) is taken
   off (added to) the budget, to be repaid over the next four windows.
2. **Load.** If the accelerators are then predicted to be busier than ``util_high`` (each model's rate
   times its variant's best-case latency, over the accelerators' capacity, a slower accelerator counting
   for its speed), it takes further steps, most work saved per unit of accuracy lost first, until the
   load fits or every model is at its floor — a deadline is worth more than the accuracy target. The default
   0.85 leaves the schedulers room for the releases' bunching: on the loaded XRBench cells 0.95 cost
   edf_firm+supernet 17% and sdrm3+supernet 9% UXCost (geomean) at the same accuracy, on random mixes nothing.
3. **Misses.** Every ``window_ms`` the window's miss rate is looked at: above ``miss_high`` each model that
   missed frames steps one variant further down (its own latency is what its deadline needs); when none of
   them can, the others make room: ``extra`` more steps of the load's kind at once (more when the miss
   rate is higher). After ``calm_windows`` windows in a row without a miss one step is given back (the
   hysteresis).

While no step of 2. or 3. is taken, a lighter job of a model planned in shares is started only if it keeps the
started jobs' mean accuracy at or above ``min_accuracy``.

The plan is made as soon as the workload is known (the first ``bind``). Each job's variant is fixed when it
starts (``assign``; ``variant_of`` predicts it, e.g. at release): a model planned at a share ``s`` of its
lighter variant gets it for the job that brings its count of lighter jobs up to ``s`` of its started jobs, so
that the running mean accuracy of its jobs never falls below the plan.
"""
from __future__ import annotations

import math

from .types import INF, Completion, Costs, Model

DEFAULT_MIN_ACCURACY = 0.95  # the least mean relative accuracy of the completed frames


class SupernetSelector:
    def __init__(self, floor: float = 0.9, window_ms: float = 500.0, miss_high: float = 0.02,
                 util_high: float = 0.85, calm_windows: int = 2,
                 min_accuracy: float = DEFAULT_MIN_ACCURACY) -> None:
        self.floor = floor
        self.min_accuracy = min_accuracy
        self.window_ms = window_ms
        self.miss_high = miss_high
        self.util_high = util_high
        self.calm_windows = calm_windows
        self.models: tuple[Model, ...] = ()
        self.costs: Costs | None = None
        self.n_acc = 1
        self.healthy: tuple[bool, ...] | None = None
        self.variant: list[int] = []  # per model, the variant most of its jobs run (the heavier one of the plan)
        self.lighter: list[int] = []  # per model, the variant a share of its jobs runs (= variant when none)
        self.share: list[float] = []  # per model, that share
        self.extra = 0  # steps taken beyond the budget and the load, for the misses seen
        self.own: list[int] = []  # per model, steps it took for its own misses
        self.bounded = True  # whether the plan keeps to the accuracy bound (no step for the load or the misses)
        self._jobs: list[int] = []
        self._light_jobs: list[int] = []
        self._window_end = window_ms
        self._done = self._missed = 0
        self._missed_m: list[int] = []  # per model, the window's misses
        self._as_sum, self._as_n = 0.0, 0  # relative accuracy of the jobs started (assign), summed; their count
        self._calm = 0
        self._acc_sum = 0.0  # relative accuracy of the completed frames, summed
        self._acc_n = 0
        self._index: dict[str, int] = {}
        self.changes: list[tuple[float, str, int]] = []  # (time, model, new variant)

    # --- the workload -------------------------------------------------------------------------
    def bind(self, models: tuple[Model, ...], costs: Costs, n_acc: int, healthy: tuple[bool, ...] | None = None,
             now: float = 0.0) -> None:
        """The workload (a new one: plan from scratch) and which accelerators are healthy (``None``: ``n_acc``
        accelerators as fast as the fastest)."""
        if models is not self.models:
            self.models, self.costs, self.n_acc = models, costs, max(1, n_acc)
            self.healthy = healthy
            self.variant = [0] * len(models)
            self.lighter = [0] * len(models)
            self.share = [0.0] * len(models)
            self._jobs = [0] * len(models)
            self._light_jobs = [0] * len(models)
            self.extra = 0
            self.own = [0] * len(models)
            self._missed_m = [0] * len(models)
            self._as_sum, self._as_n = 0.0, 0
            self._acc_sum, self._acc_n = 0.0, 0
            self._index = {m.name: i for i, m in enumerate(models)}
            self.plan(now, fresh=True)
        elif healthy is not None and healthy != self.healthy:  # an accelerator failed or came back: plan again
            self.healthy = healthy
            self.n_acc = max(1, n_acc)
            self.plan(now)

    def variant_of(self, m: int) -> int:
        """The variant the next job of model ``m`` will run (no side effect: a prediction, e.g. at release)."""
        if m >= len(self.variant):
            return 0
        v, lv, s = self.variant[m], self.lighter[m], self.share[m]
        if lv > v and s > 0.0 and self._light_jobs[m] + 1 <= s * (self._jobs[m] + 1) + 1e-9:
            return lv
        return v

    def assign(self, m: int) -> int:
        """The variant of a job of model ``m`` that starts now; counted towards the model's share of lighter jobs.
        While the plan keeps to the accuracy bound, a job due for its model's lighter variant that would bring
        the started jobs' mean accuracy under the bound runs the heavier one: the model planned in shares
        absorbs what the others' frames (e.g. cascades triggered more often than their odds) cost."""
        v = self.variant_of(m)
        if m >= len(self.variant):
            return v
        acc = self.models[m].variants
        if (self.bounded and v != self.variant[m]
                and self._as_sum + acc[v].accuracy < self.min_accuracy * (self._as_n + 1) - 1e-9):
            v = self.variant[m]  # the share's lighter job would take the mean under the bound: not now
        self._jobs[m] += 1
        if v == self.lighter[m] and v != self.variant[m]:
            self._light_jobs[m] += 1
        self._as_sum += acc[v].accuracy
        self._as_n += 1
        return v

    # --- predictions --------------------------------------------------------------------------
    def _rate(self, i: int) -> float:
        """Due frames per second of model ``i`` (a cascaded model's: its upstream chain's trigger odds)."""
        by_name = {m.name: m for m in self.models}
        m, p, seen = self.models[i], 1.0, set()
        while m is not None and m.name not in seen:
            seen.add(m.name)
            p *= m.trigger_probability
            m = by_name.get(m.upstream) if m.upstream else None
        return self.models[i].fps * p

    def _capacity(self) -> float:
        """The accelerators' capacity in units of the fastest one: each counts for its speed on this workload
        (work-weighted over the models at their largest variant), an unhealthy one for nothing."""
        assert self.costs is not None
        n = len(self.costs.lat[0][0]) if self.costs.lat and self.costs.lat[0] else self.n_acc
        rem, on = self.costs.rem_best, self.costs.rem_on
        cap = 0.0
        for a in range(n):
            if self.healthy is not None and a < len(self.healthy) and not self.healthy[a]:
                continue
            num = den = 0.0
            for i, m in enumerate(self.models):
                best = rem[i][0][0] * m.fps
                t = on[i][0][a][0]
                num += best * (rem[i][0][0] / t if 0 < t < INF else 0.0)
                den += best
            cap += num / den if den > 0 else 1.0
        return cap if cap > 0 else float(self.n_acc)

    def utilization(self, variant: list[int] | None = None) -> float:
        """Predicted share of the accelerators' time the workload needs with these variants (default: the plan,
        its shares counted)."""
        assert self.costs is not None
        rem = self.costs.rem_best
        cap = self._capacity() if self.healthy is not None else float(self.n_acc)
        w = [self._rate(i) for i in range(len(self.models))]
        if variant is not None:
            work = sum(w[i] * rem[i][variant[i]][0] for i in range(len(self.models)))
        else:
            work = sum(w[i] * ((1 - self.share[i]) * rem[i][self.variant[i]][0]
                                + self.share[i] * rem[i][self.lighter[i]][0]) for i, m in enumerate(self.models))
        return work / (1000.0 * cap)

    def mean_accuracy(self) -> float:
        """The planned mean relative accuracy of the due frames."""
        w = [self._rate(i) for i in range(len(self.models))]
        tot = sum(w)
        if tot <= 0:
            return 1.0
        acc = sum(w[i] * ((1 - self.share[i]) * m.variants[self.variant[i]].accuracy
                          + self.share[i] * m.variants[self.lighter[i]].accuracy) for i, m in enumerate(self.models))
        return acc / tot

    def _hull(self, i: int) -> list[int]:
        """Model ``i``'s usable variants, largest first: relative accuracy >= floor, fast enough to meet the
        deadline alone (at its best; if none is, the lightest at or above the floor), and on the lower convex hull
        of energy against accuracy (a variant that a mix of its neighbours beats on both is left out)."""
        assert self.costs is not None
        m = self.models[i]
        ok = [v for v in range(len(m.variants)) if v == 0 or m.variants[v].accuracy >= self.floor]
        fast = [v for v in ok if self.costs.rem_best[i][v][0] <= m.relative_deadline_ms]
        ok = fast or ok[-1:]
        pts = [(m.variants[v].accuracy, sum(self.costs.best_en[i][v]), v) for v in ok]
        hull: list[tuple[float, float, int]] = []
        for p in pts:  # accuracy decreasing; keep the slopes (energy saved per accuracy lost) decreasing
            if hull and (p[0] >= hull[-1][0] or p[1] >= hull[-1][1]):
                continue  # no lighter in accuracy, or not cheaper: never worth it
            while len(hull) >= 2:
                (a0, e0, _), (a1, e1, _) = hull[-2], hull[-1]
                if (e0 - e1) * (a1 - p[0]) <= (e1 - p[1]) * (a0 - a1):  # the middle one is not below the chord
                    hull.pop()
                else:
                    break
            hull.append(p)
        return [v for _, _, v in hull]

    # --- the plan -----------------------------------------------------------------------------
    def plan(self, now: float, fresh: bool = False) -> None:
        """Recompute every model's variants and shares (module docstring: budget, load, misses)."""
        assert self.costs is not None
        n = len(self.models)
        if not n:
            return
        p = _Plan(self.models, self.costs, [self._rate(i) for i in range(n)], [self._hull(i) for i in range(n)])
        # 1. energy within the accuracy budget
        self._spend_budget(p, self._accuracy_budget(p))
        cap = self._capacity() if self.healthy is not None else float(self.n_acc)
        # 2. the load: most work saved per accuracy lost first
        # 3. the misses: the models that missed step down themselves (their own latency is what their
        #    deadlines need), then the steps asked for when those could not: most work saved per accuracy lost
        beyond = self._own_steps(p)  # whether any step goes past the accuracy budget
        beyond = self._load_steps(p, cap) or beyond
        self.bounded = not beyond
        self._adopt(p, now, fresh)

    def _accuracy_budget(self, p: _Plan) -> float:
        """Accuracy that may be given up, in frames per second: what the bound allows, less what the variants
        too slow whole cost, less (plus) what the completed frames so far owe (have to spare)."""
        w, hulls, models, n = p.w, p.hulls, p.models, p.n
        budget = sum(w) * (1.0 - self.min_accuracy)  # accuracy that may be given up, in frames per second
        budget -= sum(w[i] * (1.0 - models[i].variants[hulls[i][0]].accuracy) for i in range(n))  # too slow whole
        if self._acc_n:  # the completed frames' accuracy so far below the bound (or above): repaid over 4 windows
            budget -= (self.min_accuracy * self._acc_n - self._acc_sum) / (4 * self.window_ms / 1000.0)
        return budget

    @staticmethod
    def _spend_budget(p: _Plan, budget: float) -> None:
        """Steps of most energy saved per accuracy lost while the budget lasts, the last for a share."""
        pos, share = p.pos, p.share
        while budget > 1e-12:
            best = None
            for i in range(p.n):
                s = p.step(i)
                if s is not None and s[0] > 0 and (best is None or s[1] / s[0] > best[1][1] / best[1][0]):
                    best = (i, s)
            if best is None:
                break
            i, (d_acc, _, _) = best
            if d_acc <= budget:
                budget -= d_acc
                pos[i] += 1
                share[i] = 0.0
            else:
                share[i] += (1.0 - share[i]) * budget / d_acc
                break

    def _own_steps(self, p: _Plan) -> bool:
        """The models that missed step down themselves; whether any did."""
        pos, share = p.pos, p.share
        beyond = False
        for i in range(p.n):
            took = 0
            while took < self.own[i] and p.step(i) is not None:
                pos[i] += 1
                share[i] = 0.0
                took += 1
            self.own[i] = took  # more than the floor allows was asked for: only what was taken counts
            beyond = beyond or took > 0
        return beyond

    def _load_steps(self, p: _Plan, cap: float) -> bool:
        """Steps of most work saved per accuracy lost while the load is too high or extra steps are asked for;
        whether any was taken."""
        pos, share = p.pos, p.share
        beyond = False
        extra = self.extra
        while p.util(cap) > self.util_high or extra > 0:  # (util() > util_high: the load's steps, not counted)
            best = None
            for i in range(p.n):
                s = p.step(i)
                if s is not None and s[2] > 0 and (best is None or s[2] / max(s[0], 1e-12) > best[1]):
                    best = (i, s[2] / max(s[0], 1e-12))
            if best is None:
                self.extra -= extra
                break
            if p.util(cap) <= self.util_high:
                extra -= 1
            pos[best[0]] += 1
            share[best[0]] = 0.0
            beyond = True
        return beyond

    def _adopt(self, p: _Plan, now: float, fresh: bool) -> None:
        """The plan's variants and shares become the selector's; a model with a new plan counts its jobs afresh."""
        models, hulls, pos, share = p.models, p.hulls, p.pos, p.share
        old = list(self.variant)
        for i in range(p.n):
            h = hulls[i]
            self.variant[i] = h[pos[i]]
            self.lighter[i] = h[pos[i] + 1] if share[i] > 0 else h[pos[i]]
            self.share[i] = share[i] if share[i] > 0 else 0.0
            if self.variant[i] != old[i] or fresh:  # a new plan for this model: count its jobs afresh
                self._jobs[i] = self._light_jobs[i] = 0
            if self.variant[i] != old[i]:
                self.changes.append((now, models[i].name, self.variant[i]))

    # --- feedback -----------------------------------------------------------------------------
    def observe(self, c: Completion, now: float) -> None:
        self._done += 1
        i = self._index.get(c.model)
        if c.status != "done":
            self._missed += 1
            if i is not None:
                self._missed_m[i] += 1
        if c.completed and i is not None and c.variant < len(self.models[i].variants):
            self._acc_sum += self.models[i].variants[c.variant].accuracy
            self._acc_n += 1
        if now >= self._window_end:
            self.step(now)

    def step(self, now: float) -> None:
        miss = self._missed / self._done if self._done else 0.0
        missed_m = self._missed_m
        self._done = self._missed = 0
        self._missed_m = [0] * len(self.models)
        self._window_end = now + self.window_ms
        if not self.models:
            return
        if miss > self.miss_high:
            self._calm = 0
            own = [i for i, k in enumerate(missed_m) if k and self.lighter[i] != self._hull(i)[-1]]
            for i in own:  # the models that missed and can still step down: one step each
                self.own[i] += 1
            if not own:  # none can: others make room, 1 step up to 10% misses, one more per 10%
                self.extra += max(1, math.ceil(miss / 0.1))
        elif miss == 0.0:
            self._calm += 1
            if self._calm >= self.calm_windows and (self.extra > 0 or any(self.own)):
                self._calm = 0
                if self.extra > 0:  # the last steps taken are given back first
                    self.extra -= 1
                else:
                    self.own[max(range(len(self.own)), key=lambda i: self.own[i])] -= 1
        else:
            self._calm = 0
        self.plan(now)  # also for the accuracy so far: the budget repays what the completed frames owe


class _Plan:
    """A plan being made: each model's rate of due frames ``w``, its hull of variants, its position on the hull
    (the heavier variant) and the share of its jobs that run the next lighter one."""

    def __init__(self, models: tuple[Model, ...], costs: Costs, w: list[float], hulls: list[list[int]]) -> None:
        self.models, self.rem, self.ben = models, costs.rem_best, costs.best_en
        self.n = len(models)
        self.w = w
        self.hulls = hulls
        self.pos = [0] * self.n  # index on the hull of the heavier variant
        self.share = [0.0] * self.n

    def step(self, i: int) -> tuple[float, float, float] | None:  # (accuracy, energy, work) of the rest of i's step
        w, hulls, pos, share = self.w, self.hulls, self.pos, self.share
        models, rem, ben = self.models, self.rem, self.ben
        h = hulls[i]
        if pos[i] + 1 >= len(h):
            return None
        v, lv = h[pos[i]], h[pos[i] + 1]
        left = 1.0 - share[i]
        acc = models[i].variants
        return (w[i] * left * (acc[v].accuracy - acc[lv].accuracy), w[i] * left * (sum(ben[i][v]) - sum(ben[i][lv])),
                w[i] * left * (rem[i][v][0] - rem[i][lv][0]))

    def util(self, cap: float) -> float:
        w, hulls, pos, share, rem, n = self.w, self.hulls, self.pos, self.share, self.rem, self.n
        return sum(w[i] * ((1 - share[i]) * rem[i][hulls[i][pos[i]]][0]
                                    + (share[i] * rem[i][hulls[i][pos[i] + 1]][0] if share[i] > 0 else 0.0))
                   for i in range(n)) / (1000.0 * cap)
