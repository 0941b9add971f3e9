"""Read an original beprepared workspace (`<dir>/_beprepared/db.sqlite3` + `objects/`) without unpickling.

The original stores every property as a pickle in `property_cache(key, domain, value)`, keys like
`humanfilter("<objectid>")`. Unpickling runs arbitrary code, so values are decoded by walking the opcodes
(`pickletools.genops`) and rebuilding only plain values; a pickle that names a class or function (GLOBAL,
STACK_GLOBAL, REDUCE, BUILD, INST, OBJ, …) is refused, never executed.

Human labels map to the label journal (`humanfilter` → filter, `humantag` → tag, `humancaption` →
caption). A label given on a derived image (after ConvertFormat, Downscale, …) is re-keyed to its source
image through the derivation rows the original cached. Computed results have no counterpart here (our
cache keys are our nodes' fingerprints) and are counted as skipped.
"""

from __future__ import annotations

import json
import pickletools
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from beprepared_dagster.errors import StoreError
from beprepared_dagster.store.objects import is_object_id

LABEL_SCOPES = {"humanfilter": "filter", "humantag": "tag", "humancaption": "caption"}
_MARK = object()
_PUSH_ARG = {
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT",
    "STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8",
    "BINBYTES", "SHORT_BINBYTES", "BINBYTES8",
}  # fmt: skip
_CONSTANTS = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False}


class UnsafePickle(ValueError):
    """A pickle that is not made of plain values only (or is malformed); its text is the skip reason."""


def decode_pickle(data: bytes) -> Any:
    """Rebuild a pickled value made only of None, bool, int, float, str, bytes, list, tuple, dict, set and
    frozenset. Raises UnsafePickle for anything else; nothing in `data` is ever executed or imported."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise UnsafePickle("not a pickle (value is not bytes)")
    machine = _Machine()
    try:
        for op, arg, _ in pickletools.genops(bytes(data)):
            if op.name == "STOP":
                return machine.pop()
            machine.step(op.name, arg)
    except UnsafePickle:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise UnsafePickle(f"malformed pickle ({type(exc).__name__})") from None
    raise UnsafePickle("malformed pickle (no STOP)")


class _Machine:
    """The pickle machine restricted to plain values: a stack with marks and a memo."""

    def __init__(self) -> None:
        self.stack: list[Any] = []
        self.memo: dict[int, Any] = {}

    def pop(self) -> Any:
        value = self.stack.pop()
        if value is _MARK:
            raise ValueError("mark where a value was expected")
        return value

    def pop_mark(self) -> list[Any]:
        items: list[Any] = []
        while (value := self.stack.pop()) is not _MARK:
            items.append(value)
        items.reverse()
        return items

    def top(self, kind: type) -> Any:
        if not isinstance(self.stack[-1], kind):
            raise TypeError("container of the wrong type")
        return self.stack[-1]

    def step(self, name: str, arg: Any) -> None:
        if name in _PUSH_ARG:
            self.stack.append(arg)
        elif name in _CONSTANTS:
            self.stack.append(_CONSTANTS[name])
        elif name == "BYTEARRAY8":
            self.stack.append(bytes(arg))
        elif name in ("PROTO", "FRAME"):
            pass
        elif name in _MEMO_OPS:
            _MEMO_OPS[name](self, arg)
        elif name in _BUILD_OPS:
            _BUILD_OPS[name](self)
        else:
            raise UnsafePickle(_refusal(name, arg, self.stack))


def _put(m: _Machine, key: Any) -> None:
    m.memo[len(m.memo) if key is None else key] = m.stack[-1]


def _setitems(m: _Machine) -> None:
    items = m.pop_mark()
    m.top(dict).update(_pairs(items))


def _setitem(m: _Machine) -> None:
    value, key = m.pop(), m.pop()
    m.top(dict)[key] = value


def _append(m: _Machine) -> None:
    value = m.pop()
    m.top(list).append(value)


def _appends(m: _Machine) -> None:
    items = m.pop_mark()
    m.top(list).extend(items)


def _additems(m: _Machine) -> None:
    items = m.pop_mark()
    m.top(set).update(items)


_MEMO_OPS: dict[str, Callable[[_Machine, Any], None]] = {
    **dict.fromkeys(("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"), _put),
    **dict.fromkeys(("GET", "BINGET", "LONG_BINGET"), lambda m, key: m.stack.append(m.memo[key])),
}
_BUILD_OPS: dict[str, Callable[[_Machine], Any]] = {
    "MARK": lambda m: m.stack.append(_MARK),
    "POP": lambda m: m.stack.pop(),
    "POP_MARK": lambda m: m.pop_mark(),
    "DUP": lambda m: m.stack.append(m.stack[-1]),
    "EMPTY_LIST": lambda m: m.stack.append([]),
    "EMPTY_DICT": lambda m: m.stack.append({}),
    "EMPTY_SET": lambda m: m.stack.append(set()),
    "EMPTY_TUPLE": lambda m: m.stack.append(()),
    "APPEND": _append,
    "APPENDS": _appends,
    "ADDITEMS": _additems,
    "SETITEM": _setitem,
    "SETITEMS": _setitems,
    "LIST": lambda m: m.stack.append(m.pop_mark()),
    "TUPLE": lambda m: m.stack.append(tuple(m.pop_mark())),
    "TUPLE1": lambda m: m.stack.append((m.pop(),)),
    "TUPLE2": lambda m: m.stack.append(tuple(reversed([m.pop(), m.pop()]))),
    "TUPLE3": lambda m: m.stack.append(tuple(reversed([m.pop(), m.pop(), m.pop()]))),
    "DICT": lambda m: m.stack.append(dict(_pairs(m.pop_mark()))),
    "FROZENSET": lambda m: m.stack.append(frozenset(m.pop_mark())),
}


def _pairs(items: list[Any]) -> Any:
    return zip(items[::2], items[1::2], strict=True)


def _refusal(name: str, arg: Any, stack: list[Any]) -> str:
    if name == "GLOBAL":
        return f"unsafe pickle (GLOBAL {str(arg).replace(' ', '.')})"
    if name == "STACK_GLOBAL" and len(stack) >= 2 and all(isinstance(s, str) for s in stack[-2:]):
        return f"unsafe pickle (STACK_GLOBAL {stack[-2]}.{stack[-1]})"
    return f"unsafe pickle ({name})"


# --- keys ------------------------------------------------------------------------------------------------


def parse_key(key: str) -> tuple[str, list[Any]]:
    """`humanfilter("ab…")` → ("humanfilter", ["ab…"]). The original writes arguments as JSON with `=` for
    `:` (`{"a"=1}`); raises ValueError for a key it cannot read."""
    scope, paren, rest = key.partition("(")
    if not paren:
        return key, []
    if not rest.endswith(")"):
        raise ValueError(f"unbalanced key {key[:80]!r}")
    out, in_string, escaped = [], False, False
    for char in rest[:-1]:
        if escaped:
            escaped = False
        elif in_string:
            escaped, in_string = char == "\\", char != '"'
        elif char == '"':
            in_string = True
        elif char == "=":
            char = ":"
        out.append(char)
    return scope, json.loads("[" + "".join(out) + "]")


# --- the workspace ----------------------------------------------------------------------------------------


def find_legacy(path: str | Path) -> Path | None:
    """The `_beprepared` folder of an original workspace at `path` (the workspace or that folder itself)."""
    path = Path(path)
    for candidate in (path / "_beprepared", path):
        if (candidate / "db.sqlite3").is_file():
            return candidate
    return None


def _rows(db_path: Path) -> Iterator[tuple[str, str | None, Any]]:
    """Rows streamed one at a time (an original database holds megabytes of pickled embeddings)."""
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StoreError(f"could not open {db_path}: {exc}") from exc
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "property_cache" not in tables:
            raise StoreError(f"{db_path} has no property_cache table: not a beprepared workspace database")
        columns = {r[1] for r in conn.execute("PRAGMA table_info(property_cache)")}
        domain = "domain" if "domain" in columns else "NULL"  # before the original's migration 2
        yield from conn.execute(f"SELECT key, {domain}, value FROM property_cache")
    except sqlite3.Error as exc:
        raise StoreError(f"could not read {db_path}: {exc}") from exc
    finally:
        conn.close()


@dataclass
class LegacyLabel:
    """One human label of an original workspace, in the label journal's terms."""

    domain: str
    kind: str
    image_id: str
    value: dict[str, Any]
    name: str


@dataclass
class LegacyScan:
    """What `read_legacy` found: the labels to import and the rows it skipped, counted by reason."""

    labels: list[LegacyLabel] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)
    rekeyed: int = 0
    rows: int = 0


def read_legacy(
    root: Path, wanted: Callable[[str], bool] = lambda name: True, domain: str | None = None
) -> LegacyScan:
    """Labels of the original workspace folder `root` (its `_beprepared`), filtered by property name
    (`wanted(scope)`) and label domain. Every pickle is decoded safely; see the module docstring."""
    scan = LegacyScan()
    derived: dict[str, str] = {}
    pending: list[tuple[str, list[Any], str | None, Any]] = []
    for key, row_domain, blob in _rows(root / "db.sqlite3"):
        scan.rows += 1
        try:
            scope, args = parse_key(key)
        except ValueError:
            scan.skipped["unreadable key"] += 1
            continue
        if scope in LABEL_SCOPES:
            pending.append((scope, args, row_domain, blob))
            continue
        _note_derivation(args, blob, derived)
        if wanted(scope) and domain is None:
            scan.skipped[f"computed result with no counterpart here ({scope})"] += 1
    for scope, args, row_domain, blob in pending:
        label = _label(scope, args, row_domain, blob, scan, domain) if wanted(scope) else None
        if label is not None:
            source = _source_of(label.image_id, derived)
            scan.rekeyed += source != label.image_id
            label.image_id = source
            scan.labels.append(label)
    return scan


def _note_derivation(args: list[Any], blob: Any, derived: dict[str, str]) -> None:
    """Rows like `convertformat("v1","JPEG","<in>")` → `"<out>"` or `croptoaspect("<in>", …)` →
    `{…, "objectid": "<out>"}` say which image a derived object came from."""
    inputs = [a for a in args if is_object_id(a)]
    if len(inputs) != 1:
        return
    try:
        value = decode_pickle(blob)
    except UnsafePickle:
        return
    out = value.get("objectid") if isinstance(value, dict) else value
    if is_object_id(out) and out != inputs[0]:
        derived[out] = inputs[0]


def _source_of(image_id: str, derived: dict[str, str]) -> str:
    for _ in range(64):  # a chain of transforms; the bound only guards against a cycle in bad data
        if image_id not in derived:
            break
        image_id = derived[image_id]
    return image_id


def _label(
    scope: str, args: list[Any], domain: str | None, blob: Any, scan: LegacyScan, only: str | None
) -> LegacyLabel | None:
    if len(args) == 2 and domain is None:  # keys written before the original made domain a column
        domain, args = args[0], args[1:]
    domain = domain or "default"
    if len(args) != 1 or not is_object_id(args[0]) or not isinstance(domain, str) or len(domain) > 200:
        scan.skipped[f"unexpected key for {scope}"] += 1
        return None
    if only is not None and domain != only:
        return None
    try:
        value = _label_value(LABEL_SCOPES[scope], decode_pickle(blob))
    except UnsafePickle as exc:
        scan.skipped[str(exc)] += 1
        return None
    if value is None:
        scan.skipped[f"unexpected value for {scope}"] += 1
        return None
    return LegacyLabel(domain, LABEL_SCOPES[scope], args[0], value, scope)


def _label_value(kind: str, value: Any) -> dict[str, Any] | None:
    """The journal's value for an original label value, or None when it has an unexpected shape."""
    if kind == "filter":
        return {"keep": value} if isinstance(value, bool) else None
    if not isinstance(value, dict) or not isinstance(value.get("version", 1), int):
        return None
    version = value.get("version", 1)
    if kind == "caption":
        caption = value.get("caption")
        return {"caption": caption, "version": version} if isinstance(caption, str) else None
    tags = value.get("tags") or []
    if not isinstance(tags, list | tuple | set | frozenset) or not all(isinstance(t, str) for t in tags):
        return None
    ordered = list(tags) if isinstance(tags, list | tuple) else sorted(tags)
    return {"tags": ordered, "rejected": bool(value.get("rejected", False)), "version": version}
