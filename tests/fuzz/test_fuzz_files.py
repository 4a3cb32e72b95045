"""Scenario, platform (with inline profiles) and trace files under bad input: only ``FileFormatError``, naming the
file and the field; every trace error names its line."""
from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from fuzz_support import FIELD, FUZZ, FUZZ_FIELD, json_values, mutated, not_of_type
from hypothesis import given
from hypothesis import strategies as st

from edge_sdrm3.catalog import FileFormatError, load_platform, load_scenario, parse_scenario
from edge_sdrm3.core.types import ConfigError
from edge_sdrm3.sim import trace
from edge_sdrm3.data import data_path

SCENARIO: dict[str, Any] = {"format": "edge-sdrm3-scenario", "version": 1, "name": "kws", "description": "d", "cost_table": "xrbench",
            "models": [{"name": "KD_res8_narrow", "fps": 10, "deadline_ms": 100},
                       {"name": "AS_ED_TCN", "fps": 10, "upstream": "KD_res8_narrow", "trigger_probability": 0.5}]}


def _small_platform() -> dict:
    """headset_emulated cut to one profiled model (profile + two relative accelerators), plus a cost-table one."""
    doc = json.loads(data_path("platforms", "headset_emulated.json").read_text())
    doc.pop("profiled", None)
    cpu = doc["accelerators"][0]["costs"]
    cpu["models"] = {"digits": cpu["models"]["digits"]}
    cpu["models"]["digits"]["variants"] = cpu["models"]["digits"]["variants"][:2]
    return doc


PLATFORM = _small_platform()
XRBENCH_PLATFORM = json.loads(data_path("platforms", "dual_4k_ws_os.json").read_text())

_tmp = tempfile.TemporaryDirectory(prefix="fuzz-files-")
TMP = Path(_tmp.name)


def write(name: str, text: str | bytes) -> Path:
    path = TMP / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    return path


def refused_or_parsed(fn, *args, **kw):
    """Call a parser; it may accept, or refuse with FileFormatError naming a field (anything else fails)."""
    try:
        return fn(*args, **kw)
    except FileFormatError as e:
        assert isinstance(e, ConfigError) and str(e).strip()
        return e


def test_the_valid_documents_parse() -> None:
    assert parse_scenario(SCENARIO, "s").models[1].upstream == "KD_res8_narrow"
    assert [a.id for a in load_platform(str(write("p.json", json.dumps(PLATFORM)))).platform.accelerators] == \
        ["cpu", "npu0", "gpu0"]
    assert load_platform(str(write("x.json", json.dumps(XRBENCH_PLATFORM)))).units[1] == "PE2048_noc128/OS"


# ---- scenario ------------------------------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_scenario_file_of_random_bytes(data: bytes) -> None:
    e = refused_or_parsed(load_scenario, str(write("s.json", data)))
    assert isinstance(e, FileFormatError) and str(TMP) in str(e)


@FUZZ
@given(mutated(SCENARIO, json_values))
def test_scenario_with_one_field_mutated(doc: tuple) -> None:
    d, _what = doc
    e = refused_or_parsed(parse_scenario, d, "scen.json") if isinstance(d, dict) else None
    if isinstance(e, FileFormatError):
        assert str(e).startswith("scen.json: ") and FIELD.search(str(e)), e
    e = refused_or_parsed(load_scenario, str(write("m.json", json.dumps(d))))  # through the file, too
    if isinstance(e, FileFormatError):
        assert str(TMP) in str(e)


@pytest.mark.parametrize("field, types", [("format", ()), ("version", ()), ("name", (str,)), ("models", (list,)),
                                          ("cost_table", ()), ("description", (str,))])
@FUZZ_FIELD
@given(data=st.data())
def test_scenario_top_level_field_of_the_wrong_type_is_named(field: str, types: tuple, data) -> None:
    value = data.draw(not_of_type(str, list, values=json_values) if not types else not_of_type(*types))
    if field == "version" and value == 1:  # True and 1.0 equal 1: accepted (see the report)
        return
    with pytest.raises(FileFormatError, match=f"scen.json: .*'{field}'"):
        parse_scenario({**SCENARIO, field: value}, "scen.json")


@pytest.mark.parametrize("field, types", [("name", (str,)), ("fps", (float,)), ("upstream", (str, type(None))),
                                          ("trigger_probability", (float,)), ("deadline_ms", (float, type(None)))])
@FUZZ_FIELD
@given(data=st.data())
def test_scenario_model_field_of_the_wrong_type_is_named(field: str, types: tuple, data) -> None:
    models = [dict(m) for m in SCENARIO["models"]]
    models[1][field] = data.draw(not_of_type(*types))
    with pytest.raises(FileFormatError, match=re.escape("scen.json: models[1]") + f".*'{field}'"):
        parse_scenario({**SCENARIO, "models": models}, "scen.json")


@pytest.mark.parametrize("field, value", [("fps", 0), ("fps", -1), ("fps", float("inf")), ("fps", float("nan")),
                                          ("fps", 10**400), ("trigger_probability", 1.5),
                                          ("trigger_probability", float("nan")), ("deadline_ms", 0),
                                          ("deadline_ms", float("nan")), ("deadline_ms", 10**400)],
                         ids=lambda v: "10**400" if v == 10**400 else None)
def test_scenario_numbers_out_of_range_are_named(field: str, value) -> None:
    models = [dict(SCENARIO["models"][0])]
    models[0][field] = value
    with pytest.raises(FileFormatError, match=re.escape("models[0]") + f".*'{field}'"):
        parse_scenario({**SCENARIO, "models": models}, "scen.json")


# ---- platform ------------------------------------------------------------------------------------------------


@FUZZ
@given(mutated(PLATFORM, json_values))
def test_profiled_platform_with_one_field_mutated(doc: tuple) -> None:
    e = refused_or_parsed(load_platform, str(write("plat.json", json.dumps(doc[0]))))
    if isinstance(e, FileFormatError):
        assert str(e).startswith(str(TMP / "plat.json")) and FIELD.search(str(e)), e


@FUZZ
@given(mutated(XRBENCH_PLATFORM, json_values))
def test_cost_table_platform_with_one_field_mutated(doc: tuple) -> None:
    e = refused_or_parsed(load_platform, str(write("xplat.json", json.dumps(doc[0]))))
    if isinstance(e, FileFormatError):
        assert str(e).startswith(str(TMP / "xplat.json")) and FIELD.search(str(e)), e


@FUZZ
@given(st.binary(max_size=200))
def test_platform_file_of_random_bytes(data: bytes) -> None:
    e = refused_or_parsed(load_platform, str(write("r.json", data)))
    assert isinstance(e, FileFormatError)


# ---- trace ---------------------------------------------------------------------------------------------------


def _trace_lines() -> list[dict]:
    tr = trace.generate(parse_scenario(SCENARIO, "s"), duration_s=0.2, seed=3)
    path = write("valid.jsonl", "")
    trace.write(tr, path, jobs=[{"model": "KD_res8_narrow", "frame": 0, "status": "done"}], summary={"n": 1})
    return [json.loads(line) for line in path.read_text().splitlines()]


TRACE = _trace_lines()


@FUZZ
@given(mutated(TRACE, json_values), st.sampled_from(["\n", "\n\n", "\r\n"]))
def test_trace_with_one_field_or_line_mutated_names_the_line(doc: tuple, sep: str) -> None:
    lines, _what = doc
    text = sep.join(json.dumps(x) for x in lines) if isinstance(lines, list) else json.dumps(lines)
    e = refused_or_parsed(trace.read, write("t.jsonl", text))
    if isinstance(e, FileFormatError):
        assert re.match(re.escape(str(TMP / "t.jsonl")) + r": line \d+: ", str(e)), e


@FUZZ
@given(st.lists(st.binary(max_size=40) | st.text(max_size=40).map(str.encode), max_size=4), st.booleans())
def test_trace_with_garbage_lines_names_the_line(garbage: list[bytes], header_first: bool) -> None:
    head = [json.dumps(TRACE[0]).encode()] if header_first else []
    e = refused_or_parsed(trace.read, write("g.jsonl", b"\n".join([*head, *garbage])))
    if isinstance(e, FileFormatError):
        assert re.match(re.escape(str(TMP / "g.jsonl")) + r": line \d+: ", str(e)), e
