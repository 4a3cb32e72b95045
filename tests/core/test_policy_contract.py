"""The policy contract: every shipped policy declares it, an ad-hoc object with pick gets the defaults, and
set_params is checked before the policy sees it."""
import math

import pytest

from edge_sdrm3.core.policies import make_policy, policy_names
from edge_sdrm3.core.policy import Policy, as_policy
from edge_sdrm3.core.types import ConfigError


@pytest.mark.parametrize("name", policy_names())
def test_every_shipped_policy_declares_the_contract(name):
    p = make_policy(name)
    assert isinstance(p, Policy)
    b = as_policy(p)
    assert b.name == name
    assert b.uses_variants == name.endswith("+supernet")
    assert b.tuning_history() == []


def test_an_object_with_only_pick_gets_every_default():
    class Adhoc:
        name = "adhoc"

        def pick(self, view, now):
            return []

    b = as_policy(Adhoc())
    assert (b.name, b.uses_variants, b.variant_of(3), b.params(), b.tuning_history()) == ("adhoc", False, 0, {}, [])
    assert b.observe(None, 0.0) is None
    with pytest.raises(ConfigError, match="no parameters"):
        b.set_params({"alpha": 1.0})
    with pytest.raises(ConfigError, match="not a policy"):
        as_policy(object())


def test_set_params_is_checked_before_the_policy_changes():
    b = as_policy(make_policy("sdrm3+supernet"))
    before = b.params()
    for bad in ({"nope": 1.0}, {"alpha": math.nan}, {"alpha": True}):
        with pytest.raises(ConfigError):
            b.set_params(bad)
        assert b.params() == before
    after = b.set_params({"alpha": before["alpha"] + 1.0})
    assert after["alpha"] == before["alpha"] + 1.0 and b.policy.inner.theta.alpha == after["alpha"]
