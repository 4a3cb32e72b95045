"""Scheduling policies: one small class each, registered by name.

A policy has one method, ``pick(view, now) -> list[Decision]`` (see ``..dispatcher.View``). Import
this package to register every shipped policy.
"""
from ._registry import BASELINES, POLICIES, make_policy, policy_names, register
from . import fcfs, round_robin, edf, lst, sel, heft, prema, herald, xrbench, edf_firm, planaria, sdrm3  # noqa: F401

__all__ = ["BASELINES", "POLICIES", "make_policy", "policy_names", "register"]
