"""The programs that judge a HumanEval+ / MBPP+ sample, with EvalPlus's comparison rules.

Two programs, both run in the sandbox:
- the oracle runs a task's reference solution on its inputs and prints the outputs (pickled, base64)
  and the time each call took; the harness keeps the pickle as opaque text and never loads it;
- the check runs a sample on the same inputs, each call under its own time limit
  (max(min_limit, factor x the reference's time)), and compares with the oracle's outputs.

The comparison is EvalPlus's (evalplus 0.3.1, evalplus/eval/__init__.py): equality, else for float
results `numpy.allclose(out, expected, rtol=1e-7, atol)` with atol at least 1e-6 once a float result has
been seen, and the special oracles of a few tasks (a root of the polynomial for HumanEval/32; set
equality, "not None", and reference formulas for some MBPP+ tasks). The sample's code runs in a fresh
namespace as EvalPlus's `exec(code, {})` does, so an `if __name__ == "__main__":` block does not run.
"""

from __future__ import annotations

import base64
import json
import pickle
from typing import Any, Callable

# MBPP+ tasks whose output is only checked to be (not) None, by entry point (EvalPlus's list).
MBPP_NOT_NONE = ("check_str", "text_match_three", "text_starta_endb")
MBPP_SET_EQUAL = (
    "similar_elements",
    "find_char_long",
    "common_in_nested_lists",
    "extract_singly",
    "larg_nnum",
    "intersection_array",
    "find_dissimilar",
    "Diff",
)


def _tuples(args: list) -> list:
    return [tuple(a) for a in args]


def _inner_tuples(args: list) -> list:
    return [[tuple(x) for x in a] for a in args]


def _tuple_of_tuples(args: list) -> list:
    return [tuple(tuple(x) for x in a) for a in args]


def _deep_tuple(value: Any) -> Any:
    return tuple(_deep_tuple(v) for v in value) if isinstance(value, list) else value


def _sets(args: list) -> list:
    return [[set(x) if isinstance(x, list) and x else {} for x in args[0]]]


# MBPP+ stores every input as JSON; these tasks take tuples, sets, dicts of tuples or complex numbers,
# which the release's loader rebuilds per task (the same conversions, task by task).
_CONVERT: dict[int, Callable[[list], Any]] = {
    **dict.fromkeys(
        (2, 116, 132, 143, 222, 261, 273, 394, 399, 421, 424, 429, 470, 560, 579, 596, 616, 630, 726, 740, 744, 809),
        _tuples,
    ),
    **dict.fromkeys(
        (63, 64, 70, 94, 120, 237, 272, 299, 400, 409, 417, 438, 473, 614, 780),
        _inner_tuples,
    ),
    **dict.fromkeys((75, 413, 444, 753), lambda a: [[tuple(x) for x in a[0]], a[1]]),
    **dict.fromkeys((106, 750), lambda a: [a[0], tuple(a[1])]),
    **dict.fromkeys((250, 307, 405, 446, 617, 720, 763, 808), lambda a: [tuple(a[0]), *a[1:]]),
    **dict.fromkeys((259, 401, 445), _tuple_of_tuples),
    **dict.fromkeys((580, 615, 791), _deep_tuple),
    115: _sets,
    124: lambda a: (float(a[0]), complex(a[1])),
    252: lambda a: [complex(a[0])],
    278: lambda a: [tuple(tuple(x) if isinstance(x, list) else x for x in a[0])],
    722: lambda a: [{k: tuple(v) for k, v in a[0].items()}, *a[1:]],
}


def mbpp_plus_inputs(task: int, inputs: list) -> list:
    """The inputs of MBPP+ task `task` as the functions take them."""
    convert = _CONVERT.get(task)
    return [convert(args) for args in inputs] if convert else inputs


def _b64(value: Any) -> str:
    return base64.b64encode(pickle.dumps(value, protocol=4)).decode("ascii")


_ORACLE = """\
import base64, copy, io, json, os, pickle, sys, time
_code, _entry, _not_none = {code!r}, {entry!r}, {not_none!r}
_inputs = pickle.loads(base64.b64decode({inputs!r}))
_out = os.dup(1)
sys.stdout = sys.stderr = io.StringIO()
_g = {{}}
exec(compile(_code, "<reference>", "exec"), _g)
_fn, _results, _times = _g[_entry], [], []
for _inp in _inputs:
    _inp = copy.deepcopy(_inp)
    _start = time.time()
    _results.append(_fn(*_inp))
    _times.append(time.time() - _start)
if _not_none:
    _results = [r is not None for r in _results]
_blob = base64.b64encode(pickle.dumps(_results, protocol=4)).decode("ascii")
os.write(_out, ({marker!r} + json.dumps({{"times": _times, "expected": _blob}}) + "\\n").encode())
"""

ORACLE_MARKER = "@@codecapy-oracle@@"


def oracle_program(reference: str, entry_point: str, inputs: str, *, not_none: bool) -> str:
    """The program that prints `ORACLE_MARKER` + {"times": [...], "expected": base64 pickle}; `inputs`
    as `encode_inputs` gives them."""
    return _ORACLE.format(code=reference, entry=entry_point, not_none=not_none, inputs=inputs, marker=ORACLE_MARKER)


def read_oracle(output: str) -> dict[str, Any] | None:
    for line in output.splitlines():
        if line.startswith(ORACLE_MARKER):
            found = json.loads(line[len(ORACLE_MARKER) :])
            if isinstance(found.get("times"), list) and isinstance(found.get("expected"), str):
                return found
    return None


_CHECK = """\
import base64, contextlib, io, math, pickle, signal, sys

_code, _entry, _dataset, _atol = {code!r}, {entry!r}, {dataset!r}, {atol!r}
_inputs = pickle.loads(base64.b64decode({inputs!r}))
_expected = pickle.loads(base64.b64decode({expected!r}))
_limits = {limits!r}


class _TimeLimit(Exception):
    pass


def _alarm(*_):
    raise _TimeLimit("time limit of one input")


def _is_floats(x):
    if isinstance(x, float):
        return True
    if isinstance(x, (list, tuple)) and x:
        return all(isinstance(i, float) for i in x)
    np = sys.modules.get("numpy")  # imported only if the sample did: an array cannot exist otherwise
    if np is not None and isinstance(x, np.ndarray):
        return x.dtype == np.float64 or x.dtype == np.float32
    return False


def _poly(xs, x):
    return sum([c * math.pow(x, i) for i, c in enumerate(xs)])


def _surface_area(base_edge, height):
    slant = math.sqrt((base_edge / 2) ** 2 + height**2)
    return round(base_edge**2 + 4 * (base_edge * slant) / 2)


def _digit_distance(a, b):
    x, y = str(a), str(b)
    width = max(len(x), len(y))
    return sum(abs(int(p) - int(q)) for p, q in zip(x.zfill(width), y.zfill(width)))


def _matches(out, exp, inp, atol):
    # EvalPlus's order: equality first (so a result that cannot be compared fails the same way), then
    # the task's special oracle, if any.
    exact = out == exp
    if _dataset == "mbpp":
        if _entry == "are_equivalent":
            exact = exact or True
        elif _entry == "sum_div":
            exact = exact or out == 0
        elif _entry == "surface_Area":
            exact = exact or abs(out - _surface_area(*inp)) <= atol
        elif _entry == "digit_distance_nums":
            exact = exact or out == _digit_distance(*inp)
        elif _entry in {set_equal!r}:
            exact = set(out) == set(exp)
        elif _entry in {not_none!r}:
            exact = out == exp if isinstance(out, bool) else exp == (out is not None)
    return exact


_g = {{}}
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    exec(compile(_code, "<solution>", "exec"), _g)
_fn = _g[_entry]
_checked = 0
for _i, _inp in enumerate(_inputs):
    signal.signal(signal.SIGALRM, _alarm)  # per input, as EvalPlus: a sample's own handler does not last
    signal.setitimer(signal.ITIMER_REAL, _limits[_i])
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            _out = _fn(*_inp)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    _exp = _expected[_i]
    _exact = _matches(_out, _exp, _inp, _atol)
    if _dataset == "humaneval" and _entry == "find_zero":
        assert abs(_poly(*_inp, _out)) <= _atol, "input " + str(_i)
        _checked += 1
        continue
    if _atol == 0 and _is_floats(_exp):
        _atol = 1e-6  # from here on, as in EvalPlus (the tolerance stays for the later inputs)
    if not _exact and _atol != 0:
        assert type(_out) == type(_exp), "input " + str(_i)
        if isinstance(_exp, (list, tuple)):
            assert len(_out) == len(_exp), "input " + str(_i)
        import numpy as np  # here only: importing it costs a sample ~0.1 s, and most never get here

        assert np.allclose(_out, _exp, rtol=1e-07, atol=_atol), "input " + str(_i)
    else:
        assert _exact, "input " + str(_i)
    _checked += 1
assert _checked == {count}, "not every input was checked"  # a sample that emptied the input list fails
"""


def checking_program(code: str, entry_point: str, dataset: str, atol: float, part: dict[str, Any]) -> str:
    """The program that passes when `code`'s `entry_point` matches the oracle on every input of `part`
    ({"inputs": base64 pickle, "expected": base64 pickle, "limits": seconds per input})."""
    return _CHECK.format(
        code=code,
        entry=entry_point,
        dataset=dataset,
        atol=atol,
        inputs=part["inputs"],
        expected=part["expected"],
        limits=list(part["limits"]),
        count=len(part["limits"]),
        set_equal=MBPP_SET_EQUAL,
        not_none=MBPP_NOT_NONE,
    )


def encode_inputs(inputs: list) -> str:
    return _b64(inputs)
