"""TOML files under bad input: the model catalog (only ``ManifestError``, naming the key) and the service config
(only the config's ``ConfigError``, naming the section and key)."""
from __future__ import annotations

import copy
import dataclasses
import re
import tempfile
from pathlib import Path

import pytest
from edge_sdrm3.tomlfile import tomllib
from fuzz_support import FUZZ, FUZZ_FIELD, mutated, not_of_type, toml_values
from hypothesis import given
from hypothesis import strategies as st

from edge_sdrm3.runtime.config import SECTIONS, ConfigError, load_config, parse_config
from edge_sdrm3.tflite import ModelToolError
from edge_sdrm3.tflite.manifest import MANIFEST, ManifestError, load_manifest, parse_manifest
from edge_sdrm3.data import data_path

_tmp = tempfile.TemporaryDirectory(prefix="fuzz-toml-")
TMP = Path(_tmp.name)

#: right-hand sides for line mutations of a TOML file
TOML_LITERALS = st.one_of(
    st.sampled_from(['"x"', "0", "-1", "1.5", "nan", "-inf", "true", "[]", "{}", "1979-05-27", "07:32:00",
                     "9223372036854775807", '[1, "a"]', '{ a = 1 }', '"{state_dir.x}"', '"{runtime_dir[0]}"',
                     '"{0}"', '"{"', "[[[[[[[[[[1]]]]]]]]]]", '"""\n"""', "'''", '"\\u0000"']),
    st.text(max_size=20).map(lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'),
    st.text(max_size=20),
)


@st.composite
def mutated_lines(draw: st.DrawFn, text: str) -> str:
    """TOML text with one line deleted, duplicated, given another value, or garbage inserted."""
    lines = text.splitlines()
    i = draw(st.integers(0, len(lines) - 1))
    op = draw(st.sampled_from(["delete", "duplicate", "value", "value", "insert"]))
    if op == "delete":
        del lines[i]
    elif op == "duplicate":
        lines.insert(i, lines[i])
    elif op == "value" and "=" in lines[i]:
        lines[i] = lines[i].split("=", 1)[0] + "= " + draw(TOML_LITERALS)
    else:
        lines.insert(i, draw(st.text(max_size=30)))
    return "\n".join(lines)


def write(name: str, data: str | bytes) -> Path:
    path = TMP / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass"))
    return path


# ---- the model catalog -----------------------------------------------------------------------------------------

_FULL = tomllib.loads(MANIFEST.read_text())
MANIFEST_DOC = {"format": _FULL["format"], "version": 1,
                "models": {k: _FULL["models"][k] for k in ("palm_detection", "hand_landmark", "digits")}}
MANIFEST_DOC["models"]["digits"]["variants"][1]["segment_files"] = ["digits/a.tflite"]
MANIFEST_TEXT = data_path("models", "manifest.toml").read_text()


def manifest_refused_or_parsed(fn, *args):
    try:
        return fn(*args)
    except ManifestError as e:
        assert isinstance(e, ModelToolError) and str(e).strip()
        return e


def test_the_valid_manifest_parses() -> None:
    assert parse_manifest(copy.deepcopy(MANIFEST_DOC)).cascade("palm_detection") == ["palm_detection", "hand_landmark"]


@FUZZ
@given(mutated(MANIFEST_DOC, toml_values))
def test_manifest_with_one_field_mutated(doc: tuple) -> None:
    e = manifest_refused_or_parsed(parse_manifest, doc[0], "cat.toml")
    if isinstance(e, ManifestError):
        assert re.match(r"cat\.toml: (format|version|models)", str(e)), e


@pytest.mark.parametrize("key, types", [
    ("task", (str,)), ("location", (str,)), ("segments", (int,)), ("variants", (list,)), ("inputs", (list,)),
    ("description", (str,)), ("upstream", (str,)), ("trigger", (str,)),
    ("variants[0].name", (str,)), ("variants[0].file", (str,)), ("variants[0].sha256", (str,)),
    ("variants[0].size", (int,)), ("variants[0].accuracy", (float,)), ("variants[0].accuracy_source", (str,)),
    ("variants[0].width", (float,)), ("variants[0].segment_files", (list,)), ("variants[0].edgetpu_file", (str,)),
    ("outputs[0].shape", (list,)), ("outputs[0].dtype", (str,)), ("outputs[0].name", (str,)),
])
@FUZZ_FIELD
@given(data=st.data())
def test_manifest_key_of_the_wrong_type_is_named(key: str, types: tuple, data) -> None:
    value = data.draw(not_of_type(*types, values=toml_values))
    doc = copy.deepcopy(MANIFEST_DOC)
    node = doc["models"]["digits"]
    *path, leaf = re.split(r"\.", key)
    for part in path:
        m = re.fullmatch(r"(\w+)\[(\d+)\]", part)
        assert m
        name, i = m.groups()
        node = node[name][int(i)]
    node[leaf] = value
    with pytest.raises(ManifestError, match=re.escape(f"cat.toml: models.digits.{key}")):
        parse_manifest(doc, "cat.toml")


@FUZZ
@given(mutated_lines(MANIFEST_TEXT))
def test_manifest_file_with_one_line_mutated(text: str) -> None:
    e = manifest_refused_or_parsed(load_manifest, write("manifest.toml", text))
    if isinstance(e, ManifestError):
        assert str(e).startswith(str(TMP / "manifest.toml")), e


@FUZZ
@given(st.binary(max_size=120) | st.text(max_size=120).map(str.encode))
def test_manifest_file_of_random_bytes(data: bytes) -> None:
    e = manifest_refused_or_parsed(load_manifest, write("r.toml", data))
    assert isinstance(e, ManifestError)


# ---- the service config ----------------------------------------------------------------------------------------

CONFIG_DOC = {s: dataclasses.asdict(cls()) for s, cls in SECTIONS.items()}
CONFIG_TEXT = data_path("systemd", "edge-sdrm3.toml").read_text()
_KEYS = [(s, f.name, f.type) for s, cls in SECTIONS.items() for f in dataclasses.fields(cls)]


def config_refused_or_parsed(fn, *args):
    try:
        return fn(*args)
    except ConfigError as e:
        assert str(e).startswith("config: ") and len(str(e)) > len("config: ")
        return e


def test_the_default_config_documents_parse() -> None:
    assert parse_config(CONFIG_DOC).sockets.max_message_bytes > 0
    assert load_config(write("c.toml", CONFIG_TEXT)).scheduler.policy


@FUZZ
@given(mutated(CONFIG_DOC, toml_values))
def test_config_with_one_field_mutated_names_its_section(doc: tuple) -> None:
    e = config_refused_or_parsed(parse_config, doc[0])
    if isinstance(e, ConfigError):
        assert re.match(r"config: \[?[^\]\s]*\]?[ :]", str(e)), e


@pytest.mark.parametrize("section, key, typ", _KEYS, ids=[f"{s}.{k}" for s, k, _ in _KEYS])
@FUZZ_FIELD
@given(data=st.data())
def test_config_key_of_the_wrong_type_is_named(section: str, key: str, typ: str, data) -> None:
    types = {"float": (float,), "int": (int,), "bool": (bool,), "str": (str,),
             "bool | str": (bool, str)}[typ]  # true, false or "auto": a wrong string is tested apart
    value = data.draw(not_of_type(*types, values=toml_values))
    with pytest.raises(ConfigError, match=re.escape(f"config: [{section}] {key}: ")):
        parse_config({section: {key: value}})


PLACEHOLDERS = st.builds("{}{}{}{}".format, st.sampled_from(["{", "{{", ""]),
                         st.sampled_from(["runtime_dir", "state_dir", "", "0", "x"]),
                         st.sampled_from(["", ".x", "[x]", "[0]", "[99]", ":d", ":>9", "!r", "!z", ".__class__"]),
                         st.sampled_from(["}", "}}", ""]))


@FUZZ
@given(st.lists(PLACEHOLDERS | st.text(max_size=8), min_size=1, max_size=4).map("".join))
def test_config_strings_with_any_placeholder(value: str) -> None:
    config_refused_or_parsed(parse_config, {"log": {"path": value}})
    config_refused_or_parsed(parse_config, {"service": {"runtime_dir": value}})


@FUZZ
@given(mutated_lines(CONFIG_TEXT))
def test_config_file_with_one_line_mutated(text: str) -> None:
    config_refused_or_parsed(load_config, write("edge-sdrm3.toml", text))


@FUZZ
@given(st.binary(max_size=120) | st.text(max_size=120).map(str.encode))
def test_config_file_of_random_bytes(data: bytes) -> None:
    config_refused_or_parsed(load_config, write("r.toml", data))
