"""Fuzzed filters through ``client.nosql.query`` under an audit hook: they parse or raise FilterError, and
nothing is compiled, executed or unpickled.

tests/query/test_parser.py fuzzes ``parse`` and ``evaluate`` directly and audits a
fixed list of filters. Here hypothesis generates filters (from the grammar, from
arbitrary text, and by mutating valid and hostile ones), and a child interpreter
runs each through the public client on a disk store with every field type: rows
and numpy output, ``count(*)``, limits. The child installs ``sys.addaudithook``
(hooks cannot be removed, hence the child) after a warm-up and records every
``compile``, ``exec``, ``pickle.find_class``, ``marshal.loads`` and process-starting
event that does not come from importing a module. Hostile filters also try to
create a file; it must not appear.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CHILD = r'''
import json, os, sys, traceback
import numpy as np
from memora_lite import FilterError, Memora
from memora_lite.models import DataType, Field

store, filters_file, sentinel = sys.argv[1:4]
with open(filters_file) as f:
    filters = json.load(f)
client = Memora(path=store)
db = client.nosql
db.create_collection("c", fields=[
    Field("id", DataType.INT64, is_primary=True), Field("n", DataType.INT32), Field("x", DataType.DOUBLE),
    Field("s", DataType.VARCHAR, nullable=True), Field("flag", DataType.BOOL),
    Field("tags", DataType.ARRAY, element_data_type=DataType.VARCHAR),
    Field("toks", DataType.ARRAY, element_data_type=DataType.INT16), Field("meta", DataType.JSON),
    Field("vec", DataType.FLOAT_VECTOR, dim=2)])
rows = [{"id": i, "n": i * 7 - 100, "x": i / 4, "s": None if i % 9 == 0 else f"w{i % 13}%_'x",
         "flag": i % 2 == 0, "tags": [f"t{i % 3}"] * (i % 3), "toks": list(range(i % 5)),
         "meta": {"k": i, "l": [i, "a"], "d": {"e": i % 4}}, "vec": [i, -i]} for i in range(300)]
db.insert("c", rows[:200])
db.flush()
db.insert("c", rows[200:])  # segments and memtable both answer

def run(text):
    try:
        a = db.query("c", filter=text, output_fields=["n", "s", "meta", "toks"], limit=50)["data"]
        b = db.query("c", filter=text, output_fields=["count(*)"])["data"][0]["count(*)"]
        c = db.query("c", filter=text, output_fields=["x", "tags"], output="numpy")["data"]
        assert len(a) == min(50, b) and len(c["id"]) == b, (len(a), b, len(c["id"]))
        return "parsed"
    except FilterError:
        return "FilterError"
    except Exception:
        return "OTHER " + traceback.format_exc(limit=4)

warm = len(filters) // 5
for text in filters[:warm]:  # lazy imports inside numpy and friends happen here, unaudited
    run(text)

events = []

def from_import():
    frame = sys._getframe(2)
    while frame is not None:
        if "importlib" in frame.f_code.co_filename:
            return True
        frame = frame.f_back
    return False

WATCHED = {"compile", "exec", "pickle.find_class", "marshal.loads", "os.system", "subprocess.Popen", "os.exec",
           "os.posix_spawn", "os.spawn", "os.fork", "ctypes.dlopen", "code.__new__"}

def hook(event, args):
    if event in WATCHED and not from_import():
        events.append(event)

sys.addaudithook(hook)
outcomes = {"parsed": 0, "FilterError": 0}
other = []
for text in filters[warm:]:
    result = run(text)
    if result.startswith("OTHER"):
        other.append([text, result])
    else:
        outcomes[result] += 1
print(json.dumps({"outcomes": outcomes, "other": other, "events": events, "audited": len(filters) - warm,
                  "sentinel": os.path.exists(sentinel)}))
'''

FIELDS = ["id", "n", "x", "s", "flag", "tags", "toks", "meta", "vec", "meta['k']", "meta[\"l\"][0]", "toks[1]",
          "tags[0]", "meta['d']['e']", "nope"]
NUMBERS = st.one_of(st.integers(-10**20, 10**20).map(str), st.floats(allow_nan=False).map(repr),
                    st.sampled_from(["1e308", "-0", "007", ".5", "2.", "9223372036854775807",
                                     "-9223372036854775808", "9223372036854775808"]))
STRINGS = st.text(max_size=10).map(lambda t: json.dumps(t, ensure_ascii=False))
ATOMS = st.one_of(st.sampled_from(FIELDS), NUMBERS, STRINGS, st.sampled_from(["true", "FALSE", "null"]))
OPERANDS = st.recursive(ATOMS, lambda c: st.one_of(
    st.tuples(c, st.sampled_from(["+", "-", "*", "/", "%"]), c).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
    st.tuples(st.sampled_from(["array_length", "array_contains", "array_contains_all", "array_contains_any",
                               "json_contains", "__import__", "eval", "exec", "getattr", "open"]),
              st.lists(c, max_size=3)).map(lambda t: f"{t[0]}({', '.join(t[1])})"),
    c.map(lambda x: f"-{x}")), max_leaves=4)
CONDITIONS = st.recursive(
    st.one_of(
        st.tuples(OPERANDS, st.sampled_from(["==", "!=", "<", "<=", ">", ">=", "=", "<>"]), OPERANDS).map(" ".join),
        st.tuples(OPERANDS, st.sampled_from(["in", "not in"]), st.lists(ATOMS, max_size=4)).map(
            lambda t: f"{t[0]} {t[1]} [{', '.join(t[2])}]"),
        st.tuples(st.sampled_from(["s", "tags[0]", "meta['k']", "x"]), STRINGS).map(lambda t: f"{t[0]} like {t[1]}"),
        st.sampled_from(["s is null", "s is not null", "flag", "not flag", "meta is null", "id is not null"]),
    ),
    lambda c: st.one_of(st.tuples(c, st.sampled_from(["and", "or", "&&", "||", "AND"]), c).map(
        lambda t: f"({t[0]} {t[1]} {t[2]})"), c.map(lambda x: f"not ({x})"), c.map(lambda x: f"!{x}")),
    max_leaves=5)
HOSTILE = [
    "__import__('os').system('touch SENTINEL')",
    "id == 1 or __import__('os').system('touch SENTINEL') == 0",
    "eval(\"open('SENTINEL', 'w')\")",
    "exec('import os; os.system(\"touch SENTINEL\")')",
    "().__class__.__bases__[0].__subclasses__()",
    "s.__class__.__mro__[1].__subclasses__()",
    "lambda: open('SENTINEL', 'w')",
    "[x for x in ().__class__.__base__.__subclasses__()]",
    "id == 1; import os; os.system('touch SENTINEL')",
    "s == '' or '' == '' -- ",
    "s like '%' + open('SENTINEL', 'w').name",
    "{{7*7}} == 49",
    "${jndi:ldap://x} == 1",
    "s like '" + "%" * 200 + "a'",
    "s like '" + "_%" * 100 + "!'",
    "meta['__class__']['__init__']['__globals__'] == 1",
    "meta[\"k\"].__class__ == 1",
    "id in [" + ", ".join(["1"] * 5000) + "]",
    "(" * 300 + "id == 1" + ")" * 300,
    "not " * 500 + "flag",
    "id == \x00\x80\x04\x95cos\nsystem\n",
    "\u202eid == 1",
]
SOUP = st.lists(st.sampled_from([*"()[]<>=!&|+-*/%,.'\"\\ _\t0123456789eE", "and ", " or ", "not ", " in ",
                                 " like ", " is ", "null", "id", "s", "meta", "toks", "__", "import", "eval("]),
                max_size=40).map("".join)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(st.one_of(CONDITIONS, st.sampled_from(HOSTILE)))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 8)))
        piece = draw(st.one_of(st.sampled_from(["(", ")", "'", '"', "\\", "[", "]", " and ", "%", "\x00"]),
                               st.text(max_size=3)))
        action = draw(st.sampled_from(["delete", "insert", "replace", "duplicate"]))
        text = {"delete": text[:i] + text[j:], "insert": text[:i] + piece + text[i:],
                "replace": text[:i] + piece + text[j:], "duplicate": text[:j] + text[i:j] + text[j:]}[action]
    return text


FILTERS = st.one_of(CONDITIONS, CONDITIONS, mutated(), mutated(), SOUP, st.text(max_size=60))


def draw_filters(count: int) -> list[str]:
    """``count`` filters drawn by hypothesis (the parent draws; the audited child only runs them)."""
    drawn: list[str] = []

    @settings(max_examples=count, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
    @given(FILTERS)
    def collect(text: str) -> None:
        drawn.append(text)

    collect()
    return drawn


@pytest.mark.parametrize("count", [400, pytest.param(10_000, marks=pytest.mark.slow)])
def test_fuzzed_filters_through_the_client_parse_or_raise_filter_error_and_run_no_code(
    count: int, tmp_path: os.PathLike[str], record_property: Callable[[str, object], None]
) -> None:
    sentinel = os.path.join(tmp_path, "PWNED")
    filters = [f.replace("SENTINEL", sentinel) for f in draw_filters(count)]
    hostile = [f.replace("SENTINEL", sentinel) for f in HOSTILE]
    filters = hostile + filters + hostile  # the hostile ones both warm and audited
    filters_file = os.path.join(tmp_path, "filters.json")
    with open(filters_file, "w") as f:
        json.dump(filters, f)
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", CHILD, os.path.join(tmp_path, "s"), filters_file, sentinel],
                          capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    outcomes = report["outcomes"]
    record_property("figure", f"filter fuzz: {len(filters)} filters through client.nosql.query, "
                              f"{report['audited']} audited: {outcomes['parsed']} parsed, "
                              f"{outcomes['FilterError']} FilterError, {len(report['other'])} other errors; "
                              f"{len(report['events'])} compile/exec/pickle/process events; "
                              f"sentinel file {'CREATED' if report['sentinel'] else 'absent'}")
    assert report["other"] == [], report["other"][:3]
    assert report["events"] == []
    assert not report["sentinel"] and not os.path.exists(sentinel)
    assert outcomes["parsed"] > 30 and outcomes["FilterError"] > 30


def test_the_audit_hook_in_the_child_sees_an_eval(tmp_path: os.PathLike[str]) -> None:
    """Guards the test above: the child's hook does record a compile or exec that is not an import."""
    child = CHILD.replace("    try:\n        a = db.query", "    try:\n        eval('1')\n        a = db.query")
    filters_file = os.path.join(tmp_path, "filters.json")
    with open(filters_file, "w") as f:
        json.dump(["id == 1"] * 10, f)
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", child, os.path.join(tmp_path, "s"), filters_file, "x"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "compile" in json.loads(proc.stdout.strip().splitlines()[-1])["events"]
