"""The table of parameters learned offline: exact and nearest look-ups, and SDRM3 starting from its entry."""
import json

import pytest

from edge_sdrm3.catalog import load_platform, load_scenario
from edge_sdrm3.core.params_table import distance, load_table, table_doc, workload_of
from edge_sdrm3.core.policies import make_policy
from edge_sdrm3.core.types import ConfigError
from edge_sdrm3.sim.replay import replay
from edge_sdrm3.sim.trace import generate


def wl(name):
    return workload_of(load_scenario(name).models)


def write_table(path, entries):
    path.write_text(json.dumps(table_doc([{"models": [list(x) for x in wl(s)], "platform": p, "params": params}
                                          for s, p, params in entries])))
    return str(path)


def test_exact_and_nearest_lookup(tmp_path):
    t = load_table(write_table(tmp_path / "t.json", [
        ("vr_gaming", "single_4k_ws", {"alpha": 0.1}),
        ("outdoor_a", "single_4k_ws", {"alpha": 0.2}),
        ("vr_gaming", "dual_4k_ws_os", {"alpha": 0.3}),
    ]))
    e, d = t.lookup(wl("vr_gaming"), "single_4k_ws")
    assert d == 0 and e.params == {"alpha": 0.1}
    e, d = t.lookup(wl("vr_gaming"), "dual_4k_ws_os")
    assert d == 0 and e.params == {"alpha": 0.3}
    # outdoor_b shares outdoor_a's kind of models (and its low rate): nearer to it than to vr_gaming
    assert distance(wl("outdoor_b"), wl("outdoor_a")) < distance(wl("outdoor_b"), wl("vr_gaming"))
    e, d = t.lookup(wl("outdoor_b"), "single_4k_ws")
    assert d > 0 and e.params == {"alpha": 0.2}
    # a platform the table does not have: the nearest workload among all entries
    e, d = t.lookup(wl("vr_gaming"), "quad_8k_ws_os_ws_os")
    assert d == 0 and e.params["alpha"] in (0.1, 0.3)
    # the distance: symmetric, 0 only for the same workload, and a rate change counts
    a, b = wl("social_a"), wl("social_b")
    assert distance(a, b) == distance(b, a) > 0 and distance(a, a) == 0
    faster = tuple((n, f * 2, u, p) for n, f, u, p in a)
    assert distance(a, faster) == pytest.approx(abs(__import__("math").log(2)))


def test_sdrm3_starts_from_its_workloads_entry(tmp_path):
    path = write_table(tmp_path / "t.json", [
        ("vr_gaming", "dual_4k_ws_os", {"alpha": 0.11, "beta": 2.5, "gamma": 0.05, "delta": 0.2, "slack_use": 0.6,
                                        "tune": False}),
        ("outdoor_a", "dual_4k_ws_os", {"alpha": 0.9}),
    ])
    spec = load_platform("dual_4k_ws_os")
    tr = generate(load_scenario("vr_gaming"), 1.0, 0)
    pol = make_policy("sdrm3", params_table=path)
    tuned, _ = replay(tr, spec, "sdrm3", policy=pol)
    assert pol.table_entry[1] == 0
    assert pol.theta.as_tuple() == (0.11, 2.5, 0.05, 0.2) and pol.slack_use == 0.6 and pol.tuner is None
    # the same as giving those parameters by hand
    by_hand, _ = replay(tr, spec, "sdrm3", policy_config={"alpha": 0.11, "beta": 2.5, "gamma": 0.05, "delta": 0.2,
                                                          "slack_use": 0.6, "tune": False})
    assert tuned == by_hand
    # a workload without an entry takes the nearest one; the online tuner starts from its θ
    pol = make_policy("sdrm3", params_table=path)
    replay(generate(load_scenario("outdoor_b"), 3.0, 0), spec, "sdrm3", policy=pol)
    assert pol.table_entry[1] > 0 and pol.table_entry[0].params == {"alpha": 0.9}
    assert pol.tuner is not None and pol.tuner.history[0][2].alpha == 0.9


@pytest.mark.parametrize("text, msg", [
    ("[]", "not a parameter table"),
    ('{"format": "edge-sdrm3-params", "version": 7, "entries": []}', "unsupported version 7"),
    ('{"format": "edge-sdrm3-params", "version": 1, "entries": [{"platform": "x", "params": {}, "models": [1]}]}',
     "entries[0]: field 'models'"),
    ("{", "not valid JSON"),
])
def test_a_bad_table_is_a_clear_error(tmp_path, text, msg):
    p = tmp_path / "t.json"
    p.write_text(text)
    with pytest.raises(ConfigError, match=msg.replace("[", r"\[").replace("]", r"\]")):
        make_policy("sdrm3", params_table=str(p))
    with pytest.raises(ConfigError, match="cannot read"):
        make_policy("sdrm3", params_table=str(tmp_path / "missing.json"))
