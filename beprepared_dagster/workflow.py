"""The node graph: the `>>` / `<<` DSL, parameter capture, validation and canonical fingerprints.

Nothing here knows about Dagster: a `Workflow` is a validated list of stages in topological order, and the
orchestration package turns it into assets.
"""

from __future__ import annotations

import difflib
import hashlib
import inspect
import json
import re
import runpy
import sys
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path, PurePath
from typing import Any, ClassVar

from beprepared_dagster.errors import WorkflowError

_SLUG = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

# Nodes built inside `with Workspace(...)` register here so the workspace can find its graph.
_ACTIVE_COLLECTORS: ContextVar[tuple[list[Node], ...]] = ContextVar("beprepared_collectors", default=())


def snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def check_slug(value: str, what: str) -> str:
    if not isinstance(value, str) or not _SLUG.match(value):
        raise WorkflowError(
            f"{what} {value!r} is not a valid name: use lower-case letters, digits and '_', starting with a letter"
        )
    return value


class NodeMeta(type):
    """Binds constructor arguments (so unknown parameters fail with the node's name) and lets a bare class
    stand on the left of `>>` / `<<`, as in the original (`HumanFilter >> Save`)."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        name = kwargs.pop("name", None)
        signature = inspect.signature(cls.__init__)
        try:
            bound = signature.bind(None, *args, **kwargs)
        except TypeError as exc:
            raise WorkflowError(_explain_bad_arguments(cls, signature, kwargs, exc)) from None
        bound.apply_defaults()
        params = {k: v for k, v in list(bound.arguments.items())[1:]}
        node = cls.__new__(cls)
        Node._setup(node, params, name)
        try:
            node.__init__(*args, **kwargs)
        except (TypeError, ValueError) as exc:
            raise WorkflowError(f"{cls.__name__}: {exc}") from None
        return node

    def __rshift__(cls, other: Any) -> Node:
        return cls() >> other

    def __lshift__(cls, other: Any) -> Node:
        return cls() << other


def _explain_bad_arguments(cls: type, signature: inspect.Signature, kwargs: dict, exc: TypeError) -> str:
    valid = [p for p in signature.parameters if p != "self"]
    for key in kwargs:
        if key not in valid:
            hint = difflib.get_close_matches(key, valid, n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            return f"{cls.__name__}: unknown parameter {key!r}{suggestion}; valid parameters: {', '.join(valid) or 'none'}"
    return f"{cls.__name__}: {exc}; parameters: {', '.join(valid) or 'none'}"


def _as_node(value: Any) -> Node:
    if isinstance(value, type) and issubclass(value, Node):
        return value()
    if isinstance(value, Node):
        return value
    raise WorkflowError(f"cannot connect {value!r}: expected a node or a node class")


class Node(metaclass=NodeMeta):
    """Base of every node. Subclasses declare `version` and their parameters in `__init__`.

    Attributes:
        version: bump when the node's behaviour changes, so cached results are recomputed.
        max_inputs: how many upstream nodes the node accepts (0 for sources, None for any number).
        fingerprint_exclude: parameters that do not change results (left out of the fingerprint).
    """

    version: ClassVar[int] = 1
    max_inputs: ClassVar[int | None] = 1
    fingerprint_exclude: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""

    params: dict[str, Any]
    name: str | None
    sources: list[Node]
    sinks: list[Node]

    def _setup(self, params: dict[str, Any], name: str | None) -> None:
        self.params = params
        self.name = check_slug(name, "stage name") if name is not None else None
        self.sources = []
        self.sinks = []
        collectors = _ACTIVE_COLLECTORS.get()
        if collectors:
            collectors[-1].append(self)  # the innermost `with Workspace(...)` owns the node

    def __rshift__(self, other: Any) -> Node:
        other = _as_node(other)
        connect(self, other)
        return other

    def __lshift__(self, other: Any) -> Node:
        connect(_as_node(other), self)
        return self

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({shown})"

    @property
    def default_stage_name(self) -> str:
        return snake_case(type(self).__name__)

    def fingerprint_params(self) -> dict[str, Any]:
        return {
            k: canonical(v, f"{type(self).__name__}.{k}")
            for k, v in self.params.items()
            if k not in self.fingerprint_exclude
        }

    @property
    def fingerprint(self) -> str:
        """SHA-256 over node type, version and canonical parameters: the cache key of its results."""
        payload = {"node": type(self).__name__, "version": self.version, "params": self.fingerprint_params()}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def connect(upstream: Node, downstream: Node) -> None:
    downstream.sources.append(upstream)
    upstream.sinks.append(downstream)


def canonical(value: Any, where: str) -> Any:
    """A JSON-able, process-independent form of a parameter value (for fingerprints)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Enum):
        return canonical(value.value, where)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, list | tuple):
        return [canonical(v, where) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((canonical(v, where) for v in value), key=json.dumps)
    if isinstance(value, dict):
        return {str(k): canonical(v, where) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if callable(value):
        return _callable_identity(value)
    raise WorkflowError(f"{where}: unsupported parameter type {type(value).__name__}")


def _callable_identity(func: Any) -> dict[str, Any]:
    """Identify a callable by name, source text and bytecode (two lambdas on one line differ by their
    constants), plus simple closure values. Editing a lambda or a captured constant changes the fingerprint."""
    name = getattr(func, "__qualname__", type(func).__name__)
    try:
        body = inspect.getsource(func)
    except (OSError, TypeError):
        body = ""
    code = getattr(func, "__code__", None)
    closure = []
    for cell in getattr(func, "__closure__", None) or ():
        try:
            closure.append(canonical(cell.cell_contents, name))
        except (WorkflowError, ValueError):
            closure.append(type(cell.cell_contents).__name__)
    digest = hashlib.sha256((body + (_code_text(code) if code else repr(func))).encode()).hexdigest()[:16]
    return {"callable": name, "source": digest, "closure": closure}


def _code_text(code: Any) -> str:
    """Bytecode and constants, recursing into nested code objects (whose repr holds a memory address)."""
    consts = [_code_text(c) if inspect.iscode(c) else repr(c) for c in code.co_consts]
    return code.co_code.hex() + repr(consts) + repr(code.co_names)


@dataclass
class Stage:
    """One node placed in a workflow: its unique stage name and its upstream stages."""

    name: str
    node: Node
    inputs: list[Stage] = field(default_factory=list)

    @property
    def fingerprint(self) -> str:
        return self.node.fingerprint


class Workflow:
    """A validated graph of stages.

    Args:
        name: the workflow's name; asset keys are `<name>/<stage>`.
        *nodes: any nodes of the graph (typically the terminal one); everything connected is included.
        workspace: the workspace folder; a relative one is relative to the workflow file's folder (default:
            `$BEPREPARED_WORKSPACE`, else `./workspace` in the current directory).
        storage: how the workspace keeps the images `Load` finds: "reference" (default: by path, size, mtime
            and SHA-256, checked on every read, or a copy-on-write clone where the file system makes one; no
            second copy on disk) or "copy" (private copies, for sources on removable or soon-deleted media).
            Default: `$BEPREPARED_STORAGE`, else "reference".
    """

    def __init__(
        self, name: str, *nodes: Any, workspace: str | Path | None = None, storage: str | None = None
    ) -> None:
        from beprepared_dagster.store.objects import storage_mode

        self.name = check_slug(name, "workflow name")
        self.workspace_dir = _workspace_dir(workspace)
        self.storage = storage_mode(storage)
        self.stages = _build_stages(self.name, [_as_node(n) for n in nodes])
        _register_with_loader(self)

    def __repr__(self) -> str:
        return f"Workflow({self.name!r}, stages={[s.name for s in self.stages]})"

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(
            f"workflow {self.name!r} has no stage {name!r}; stages: {[s.name for s in self.stages]}"
        )

    def run(self, **kwargs: Any) -> Any:
        """Materialize every stage headlessly; see `orchestration.runner.run_workflow`."""
        loader = _LOADER.get()
        if loader is not None:
            return None  # `dagster dev` is loading this file: define, don't run.
        from beprepared_dagster.orchestration.discovery import PreScan  # Dagster-free
        from beprepared_dagster.orchestration.gcpolicy import few_full_collections, no_collection
        from beprepared_dagster.store.workspace import WorkspaceStore

        # New files are hashed while Dagster is imported and the instance opened (discovery needs both);
        # where an instance's storage modules are imported already (a warm runner, a second run in one
        # process), there is nothing to overlap: the hints would only walk the folders twice.
        if not _instance_modules_loaded():
            kwargs.setdefault("prescan", PreScan(WorkspaceStore(self.workspace_dir), self))
        with few_full_collections():  # from the imports on: they build most of what a run keeps alive
            with no_collection():  # the imports themselves make no garbage worth looking for
                from beprepared_dagster.orchestration.runner import run_workflow  # lazy: DSL is Dagster-free

            return run_workflow(self, **kwargs)


def _instance_modules_loaded() -> bool:
    """Whether this process has opened (or, as a warm runner, imported what opens) a workspace instance."""
    return "beprepared_dagster.orchestration.event_log" in sys.modules


def _build_stages(workflow: str, roots: list[Node]) -> list[Stage]:
    nodes = _connected(roots)
    order = _topological(workflow, nodes)
    stages: dict[int, Stage] = {}
    used: set[str] = set()
    for node in order:
        base = node.name or node.default_stage_name
        name = base
        if node.name and name in used:
            raise WorkflowError(f"workflow {workflow!r}: two stages are named {name!r}")
        n = 2
        while name in used:
            name, n = f"{base}_{n}", n + 1
        used.add(name)
        stages[id(node)] = Stage(name, node, [stages[id(s)] for s in node.sources])
    result = list(stages.values())
    _validate(workflow, result)
    return result


def _connected(roots: Iterable[Node]) -> list[Node]:
    seen: dict[int, Node] = {}
    stack = list(roots)
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen[id(node)] = node
        stack.extend(node.sources)
        stack.extend(node.sinks)
    return list(seen.values())


def _topological(workflow: str, nodes: list[Node]) -> list[Node]:
    """Depth-first order that keeps construction order among independent nodes; reports cycles by name."""
    order: list[Node] = []
    state: dict[int, int] = {}

    def visit(node: Node, path: list[Node]) -> None:
        mark = state.get(id(node))
        if mark == 2:
            return
        if mark == 1:
            cycle = " >> ".join(type(n).__name__ for n in [*path[path.index(node) :], node])
            raise WorkflowError(f"workflow {workflow!r} has a cycle: {cycle}")
        state[id(node)] = 1
        for source in node.sources:
            visit(source, [*path, node])
        state[id(node)] = 2
        order.append(node)

    for node in nodes:
        visit(node, [])
    return order


def _validate(workflow: str, stages: list[Stage]) -> None:
    from beprepared_dagster.nodes.base import SinkNode, SourceNode

    if not any(isinstance(s.node, SourceNode) for s in stages):
        raise WorkflowError(f"workflow {workflow!r} has no Load: every workflow starts from a Load(folder)")
    for stage in stages:
        node, label = stage.node, f"stage {stage.name!r} ({type(stage.node).__name__})"
        count, limit = len(stage.inputs), node.max_inputs
        if limit is not None and count > limit:
            if limit == 0:
                raise WorkflowError(f"{label} takes no input, but {count} node(s) feed it")
            raise WorkflowError(
                f"{label} has {count} inputs but takes {limit}; merge branches with Concat(a, b) first"
            )
        if isinstance(node, SinkNode) and stage.node.sinks:
            raise WorkflowError(f"{label} writes the dataset and cannot feed another node")
    for stage in stages:
        if stage.node.max_inputs != 0 and not stage.inputs:
            raise WorkflowError(
                f"stage {stage.name!r} ({type(stage.node).__name__}) has no input: connect it with `>>` after a Load"
            )
    for stage in stages:
        check = getattr(stage.node, "check_upstream", None)
        if check is not None:
            check(
                stage
            )  # a node's own load-time check of what reaches it (e.g. a prompt template's properties)


# --- loading workflow files for `dagster dev` -----------------------------------------------------------


class Loader:
    """Collects the workflows a file declares while `dagster dev` (or the CLI) loads it."""

    def __init__(self) -> None:
        self.workflows: list[Workflow] = []


_LOADER: ContextVar[Loader | None] = ContextVar("beprepared_loader", default=None)


def _register_with_loader(workflow: Workflow) -> None:
    loader = _LOADER.get()
    if loader is not None and all(w is not workflow for w in loader.workflows):
        loader.workflows.append(workflow)


def active_loader() -> Loader | None:
    return _LOADER.get()


def set_loader(loader: Loader | None) -> Any:
    return _LOADER.set(loader)


def reset_loader(token: Any) -> None:
    _LOADER.reset(token)


def push_collector(nodes: list[Node]) -> Any:
    return _ACTIVE_COLLECTORS.set((*_ACTIVE_COLLECTORS.get(), nodes))


def pop_collector(token: Any) -> None:
    _ACTIVE_COLLECTORS.reset(token)


class Workspace:
    """The DSL's entry point, in the original's style:

    ```python
    with Workspace("mydataset") as workspace:
        Load("/photos") >> FilterBySize(min_edge=512) >> Save
        workspace.run()
    ```

    Args:
        dir: the workspace folder (DuckDB store, objects, Dagster history, default export folder). A relative
            path is relative to the workflow file's folder, whether the file runs as `python flow.py`, with
            `beprepared run` or in `dagster dev`; default: `$BEPREPARED_WORKSPACE`, else `./workspace` in the
            current directory.
        name: the workflow's name (default: the folder's name, made a valid slug).
        storage: "reference" (default) or "copy": how the workspace keeps the source images; see `Workflow`.
    """

    def __init__(
        self, dir: str | Path | None = None, name: str | None = None, storage: str | None = None
    ) -> None:
        from beprepared_dagster.store.objects import storage_mode

        self.dir = _workspace_dir(dir)
        self.name = name or _slugify(self.dir.name)
        self.storage = storage_mode(storage)
        self.nodes: list[Node] = []
        self._token: Any = None
        self._workflow: Workflow | None = None

    def __enter__(self) -> Workspace:
        self._token = push_collector(self.nodes)
        return self

    def __exit__(self, *exc: Any) -> None:
        pop_collector(self._token)
        loader = active_loader()
        if exc[0] is None and loader is not None and self._workflow is None:
            claimed = {id(s.node) for w in loader.workflows for s in w.stages}
            self.nodes[:] = [n for n in self.nodes if id(n) not in claimed]
            if self.nodes:
                self.workflow()  # loading for `dagster dev` without an explicit run(): still define the assets

    def workflow(self) -> Workflow:
        if self._workflow is None:
            self._workflow = Workflow(self.name, *self.nodes, workspace=self.dir, storage=self.storage)
        return self._workflow

    def run(self, **kwargs: Any) -> Any:
        """Materialize every stage headlessly (or, when `dagster dev` loads the file, only define them)."""
        return self.workflow().run(**kwargs)


def _workspace_dir(dir: str | Path | None) -> Path:
    from beprepared_dagster.store.workspace import resolve_in_workflow, resolve_workspace_dir

    return resolve_workspace_dir(None if dir is None else resolve_in_workflow(dir))


def _from_cwd(dir: str | Path | None) -> Path | None:
    return None if dir is None else Path(dir).expanduser().resolve()


def _slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_") or "workflow"
    return slug if slug[0].isalpha() else f"w_{slug}"


def load_file(
    path: Path, workspace: str | Path | None = None, base_dir: str | Path | None = None
) -> list[Workflow]:
    """Execute a workflow file and return the workflows it declares. Nodes built outside any
    `with Workspace(...)` form a workflow named after the file, in `workspace` (as `beprepared run` did).

    Relative paths in the file (its workspace, `Load` folders) resolve in the file's folder, as under
    `python flow.py`, or in `base_dir` when given (code typed on a command line: the current directory)."""
    from beprepared_dagster.store.workspace import LOADED_FILE_MODULE, paths_relative_to

    if not path.is_file():
        raise WorkflowError(f"workflow file {path} does not exist")
    loader = Loader()
    token = set_loader(loader)
    try:
        with (
            paths_relative_to(base_dir if base_dir is not None else Path(path).resolve().parent),
            Workspace(_from_cwd(workspace), name=_slugify(path.stem)) as default,
        ):
            import beprepared_dagster  # like the original, a file may use the DSL without importing it

            names = {n: getattr(beprepared_dagster, n) for n in beprepared_dagster.__all__}
            runpy.run_path(
                str(path), init_globals={**names, "workspace": default}, run_name=LOADED_FILE_MODULE
            )
    finally:
        reset_loader(token)
    if not loader.workflows:
        raise WorkflowError(f"{path} declares no workflow (no nodes were built)")
    return loader.workflows
