"""The `beprepared` command: `run` a workflow headlessly, `exec` a one-liner, `db list/clear/import` to look
after the workspace store, and `dev` to open `dagster dev` on the workspace."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from beprepared_dagster import console
from beprepared_dagster.errors import BeprepareError
from beprepared_dagster.store.workspace import WORKSPACE_ENV, resolve_workspace_dir

EXAMPLES = """examples:
  beprepared run flow.py                       materialize every stage of flow.py, then Save
  beprepared -w dogs exec "Load('raw') >> FilterBySize(min_edge=512) >> Save"
  beprepared db list                           what the workspace stores
  beprepared db clear humanfilter -d default   undo every HumanFilter label of domain 'default'
  beprepared db import ../old_workspace        bring in another workspace's images and labels
  beprepared dev flow.py                       dagster dev on this workspace"""


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 only on success)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        (getattr(args, "subparser", None) or parser).print_help(sys.stderr)
        return 1
    warm = False
    if argv is None and args.func in (_run, _exec):  # the console script: a warm runner may run it
        from beprepared_dagster.orchestration import warm as runner

        warm = runner.enabled()
    if warm:
        client = runner.Client.now()
        try:
            status = runner.delegate(client, sys.argv)
        except KeyboardInterrupt:  # before the command started (once it has, Ctrl-C goes to it)
            console.stopped("stopped by user")
            return 130
        if status is not None:
            return status
    if args.workspace:
        os.environ[WORKSPACE_ENV] = str(resolve_workspace_dir(args.workspace))
    console.configure_logging(getattr(args, "verbose", False))
    try:
        return args.func(args)
    except BeprepareError as exc:
        console.error(str(exc))
        return 1
    except KeyboardInterrupt as exc:  # the runner's Stopped says what was kept
        console.stopped(str(exc) or "stopped by user")
        return 130
    finally:
        if warm:  # the next `beprepared run` need not import Dagster again
            runner.start_runner(client)


def _parser() -> argparse.ArgumentParser:
    from beprepared_dagster import __version__

    parser = argparse.ArgumentParser(
        prog="beprepared",
        description="Prepare image datasets for diffusion fine-tuning, as Dagster assets.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"beprepared-dagster {__version__}")
    parser.add_argument("-w", "--workspace", metavar="DIR", help=_WORKSPACE_HELP)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _run_parsers(commands)
    _db_parsers(commands)
    dev = _command(commands, "dev", _dev, "start `dagster dev` on this workspace", _DEV_HELP)
    dev.add_argument(
        "workflows", nargs="*", type=Path, help="workflow files (default: $BEPREPARED_WORKFLOWS or the demo)"
    )
    dev.add_argument(
        "-p", "--port", type=int, help="webserver port (default 3000, or the next free one when it is taken)"
    )
    dev.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    warm = _command(commands, "warm", _warm, "show or stop the warm runners of `run`", _WARM_HELP)
    warm.add_argument("action", nargs="?", choices=["status", "stop"], default="status")
    return parser


_WORKSPACE_HELP = "workspace folder (default: $BEPREPARED_WORKSPACE or ./workspace)"
_RUN_HELP = """Materialize every stale stage of the workflows a file declares, on the workspace's persistent
Dagster instance (the history `beprepared dev` shows), then Save. Only what changed runs again.
The file may use `with Workspace(...)`; nodes built outside one form a workflow named after the file,
in the -w workspace. At a human stage the run waits for labels (see --no-wait).
Afterwards a warm runner waits in the background for the next run (see `beprepared warm --help`).

example: beprepared -w dogs run flow.py"""
_EXEC_HELP = """Run a workflow given as Python code; the node classes are already imported.

example: beprepared -w dogs exec "Load('raw') >> FilterBySize(min_edge=512) >> Save('out')\""""
_WARM_HELP = """After `beprepared run` or `exec` has run in its own process, a warm runner stays in the background:
a process with Dagster already imported that runs the next `run`/`exec` of the same interpreter,
packages and environment on your terminal, saving the 1-2 s of imports. It leaves after
$BEPREPARED_WARM_IDLE seconds without a command (default 900). BEPREPARED_WARM=0 turns it off.

`beprepared warm` lists this user's warm runners; `beprepared warm stop` stops them (a command they
are running finishes first).

example: beprepared warm stop"""
_DEV_HELP = """Start `dagster dev` with DAGSTER_HOME inside the workspace, so run history (half of the cache)
survives restarts. The workspace is the one the workflow files name (-w, when given, must agree).

example: beprepared -w dogs dev flow.py --port 3001"""


def _command(
    commands: argparse._SubParsersAction, name: str, func: Callable[..., int], summary: str, text: str
) -> argparse.ArgumentParser:
    """A subcommand that also accepts -w after its name."""
    sub = commands.add_parser(
        name, help=summary, description=text, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub.add_argument("-w", "--workspace", metavar="DIR", default=argparse.SUPPRESS, help=_WORKSPACE_HELP)
    sub.set_defaults(func=func, subparser=sub)
    return sub


def _run_parsers(commands: argparse._SubParsersAction) -> None:
    run = _command(
        commands, "run", _run, "run a workflow file headlessly (every stage, then Save)", _RUN_HELP
    )
    run.add_argument("script", type=Path, help="a workflow file")
    exec_ = _command(commands, "exec", _exec, "run a one-line workflow given as code", _EXEC_HELP)
    exec_.add_argument("code", help="Python code using the node classes")
    for sub in (run, exec_):
        sub.add_argument("--no-wait", action="store_true", help="stop at human stages instead of waiting")
        sub.add_argument("-v", "--verbose", action="store_true", help="show Dagster's own log lines")


def _run(args: argparse.Namespace) -> int:
    from beprepared_dagster.orchestration.gcpolicy import no_collection, no_collection_at_exit

    with no_collection():  # Dagster's imports (see gcpolicy)
        from beprepared_dagster.orchestration.loader import load_file
        from beprepared_dagster.orchestration.runner import check_load_folders

    # exec's code comes from the command line: its relative paths are the shell's, not the temp file's
    workflows = load_file(args.script.resolve(), base_dir=getattr(args, "base_dir", None))
    for workflow in workflows:  # every workflow of the file, before any of them runs
        check_load_folders(workflow)
    extra = {"wait": False} if args.no_wait else {}
    no_collection_at_exit()  # the command ends with its runs
    for workflow in workflows:
        with console.Progress(workflow.name) as bar:
            summary = workflow.run(
                progress=bar.update, log_level="INFO" if args.verbose else "ERROR", **extra
            )
        console.print_summary(workflow, summary)
    return 0


def _warm(args: argparse.Namespace) -> int:
    from beprepared_dagster.orchestration import warm

    if args.action == "stop":
        print(f"asked {warm.stop_runners()} warm runner(s) to stop")
        return 0
    found = warm.runners()
    for status in found:  # a runner asked to stop listens no more, so only serving ones answer
        print(
            f"pid {status.get('pid')}: {status.get('served', 0)} command(s) served, "
            f"{status.get('running', 0)} running, idle limit {status.get('idle_seconds', 0):.0f} s "
            f"({status.get('python')})"
        )
    if not found:
        print("no warm runner" + ("" if warm.enabled() else " (BEPREPARED_WARM turns them off)"))
    return 0


def _exec(args: argparse.Namespace) -> int:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "exec.py"
        script.write_text(f"from beprepared_dagster import *\n{args.code}\n")
        args.script, args.base_dir = script, Path.cwd()
        return _run(args)


_DB_HELP = """Look after what the workspace stores. Names a PATTERN (a glob, any case) can match:
computed results are named after their node (FilterBySize, ConvertFormat, Load.probe; a fingerprint
prefix matches too); human labels are humanfilter, humantag and humancaption, per domain."""
_LIST_HELP = """List stored computed results (per node and parameters: cached outcomes and images with a
stage row) and human labels (per domain and kind: images labeled).

example: beprepared db list "Human*" -d default"""
_CLEAR_HELP = """Remove matching computed results (their stages run again next time) and undo matching human
labels (undo entries in the label journal: the history stays, and Dagster sees the change). With -d only
labels of that domain are cleared. Asks for confirmation unless -f.

example: beprepared db clear FilterBySize -f"""
_IMPORT_HELP = """Import other workspaces: their objects (each checked against its SHA-256), human labels and,
from beprepared-dagster workspaces, computed results. A SOURCE may be a beprepared-dagster workspace or an
original beprepared workspace (its _beprepared/db.sqlite3 is read without unpickling anything: values that
are not plain data are skipped and counted). Labels already here are never overwritten. Importing twice
changes nothing.

example: beprepared db import ../old_dataset --pattern "human*" -d default"""


def _db_parsers(commands: argparse._SubParsersAction) -> None:
    db = commands.add_parser("db", help="list, clear or import stored properties", description=_DB_HELP)
    db.add_argument("-w", "--workspace", metavar="DIR", default=argparse.SUPPRESS, help=_WORKSPACE_HELP)
    db.set_defaults(subparser=db)
    sub = db.add_subparsers(dest="db_command", metavar="COMMAND")
    listing = _command(sub, "list", _db_list, "list stored properties", _LIST_HELP)
    clear = _command(sub, "clear", _db_clear, "remove computed results, undo labels", _CLEAR_HELP)
    for parser in (listing, clear):
        parser.add_argument("pattern", nargs="?", default="*", help="glob over property names (default *)")
        parser.add_argument("-d", "--domain", help="only human labels of this domain")
    clear.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")
    imp = _command(sub, "import", _db_import, "import other workspaces", _IMPORT_HELP)
    imp.add_argument("sources", nargs="+", metavar="SOURCE", help="workspace folders to import from")
    imp.add_argument("--pattern", default="*", help="glob over property names (default *)")
    imp.add_argument("-d", "--domain", help="only human labels of this domain")


def _existing_store() -> Any:
    from beprepared_dagster.store.labels import JOURNAL_NAME
    from beprepared_dagster.store.workspace import WorkspaceStore

    store = WorkspaceStore(resolve_workspace_dir(None))
    if not (store.root / "beprepared.duckdb").is_file() and not (store.root / JOURNAL_NAME).is_file():
        raise BeprepareError(
            f"no workspace at {store.root} (choose one with -w DIR or $BEPREPARED_WORKSPACE)"
        )
    return store


def _aliases() -> dict[str, str]:
    from beprepared_dagster.nodes.load import probe_fingerprint

    return {probe_fingerprint(v): f"Load.probe({v})" for v in ("structure", "decode")}


def _matching(args: argparse.Namespace) -> tuple[Any, list, list]:
    from beprepared_dagster.store import admin

    store = _existing_store()
    computed = [] if args.domain else admin.list_computed(store, args.pattern, _aliases())
    return store, computed, admin.list_labels(store, args.pattern, args.domain)


def _db_list(args: argparse.Namespace) -> int:
    store, computed, labels = _matching(args)
    _print_inventory(store.root, computed, labels)
    return 0


def _print_inventory(root: Path, computed: list, labels: list) -> None:
    out = console.Style(sys.stdout)
    print(out(f"workspace {root}", "dim"))
    if not computed and not labels:
        print("nothing stored matches")
    if computed:
        print(
            out(
                f"{'computed results':<24} {'fingerprint':<12} {'cached':>8} {'images':>8}  parameters",
                "bold",
            )
        )
    for e in computed:
        params = " ".join(f"{k}={v}" for k, v in e.params.items() if v is not None)[:70]
        stages = out(f"[{', '.join(e.stages)}]", "dim") if e.stages else ""
        name = out(f"{e.name:<22}", "cyan")
        print(f"  {name} {e.fingerprint[:12]} {e.results:>8} {e.stage_rows:>8}  {params} {stages}".rstrip())
    if labels:
        print(out(f"{'human labels':<24} {'domain':<21} {'images':>8}", "bold"))
    for e in labels:
        detail = ", ".join(f"{n} {what}" for what, n in e.breakdown.items())
        name, domain = out(f"{e.name:<22}", "cyan"), out(f"{'[' + e.domain + ']':<21}", "yellow")
        print(f"  {name} {domain} {e.labeled:>8}  {detail}".rstrip())


def _db_clear(args: argparse.Namespace) -> int:
    from beprepared_dagster.store import admin

    store, computed, labels = _matching(args)
    _print_inventory(store.root, computed, labels)
    if not computed and not labels:
        return 0
    if not args.force:
        if not sys.stdin.isatty():
            raise BeprepareError("not clearing without confirmation: stdin is not a terminal (pass -f)")
        answer = input("Remove the computed results and undo the labels listed above? Type 'yes': ")
        if answer.strip().lower() != "yes":
            console.error("nothing removed")
            return 1
    done = admin.clear(store, computed, labels)
    if computed:
        print(f"removed {done.results} cached result(s); {done.stage_rows} stage row(s) will be recomputed")
    if labels:
        print(f"undid {done.labels} label(s) (undo entries: the label journal keeps the history)")
    return 0


def _db_import(args: argparse.Namespace) -> int:
    from beprepared_dagster.store import admin
    from beprepared_dagster.store.workspace import WorkspaceStore

    store = WorkspaceStore(resolve_workspace_dir(None))
    failed = 0
    for source in args.sources:
        try:
            with console.Progress(f"import {source}") as bar:
                report = admin.import_workspace(
                    store, source, args.pattern, args.domain, _aliases(), bar.update
                )
        except BeprepareError as exc:
            console.error(str(exc))
            failed += 1
            continue
        _print_import(report)
    return 1 if failed else 0


def _print_import(r: Any) -> None:
    style = console.Style(sys.stdout)
    print(f"{style('imported', 'green')} {r.source} ({r.format})")
    print(f"  objects   {r.objects_copied} copied, {r.objects_present} already here")
    rekeyed = f", {r.labels_rekeyed} moved from a derived image to its source" if r.labels_rekeyed else ""
    print(f"  labels    {r.labels_imported} imported, {r.labels_present} already here{rekeyed}")
    print(f"  computed  {r.computed_imported} imported, {r.computed_present} already here")
    print(f"  skipped   {sum(r.skipped.values())}")
    for reason, n in r.skipped.most_common():
        print(f"    {n:>8}  {style(reason, 'yellow')}")


# `dagster dev` warns on every start that `dg dev` supersedes it; `dg` needs a dg project (dagster-dg-cli and
# its pyproject layout), which a folder of workflow files is not. Only that one warning is silenced.
SUPERSEDED_DEV_WARNING = "ignore:Function `dev_command` is superseded:FutureWarning"
DEFAULT_DEV_PORT = 3000


def _dev(args: argparse.Namespace) -> int:
    from beprepared_dagster.orchestration.instance import apply_event_batching_env, ensure_dagster_home
    from beprepared_dagster.orchestration.loader import WORKFLOWS_ENV, workflow_files
    from beprepared_dagster.store.workspace import WorkspaceStore

    files = [p.resolve() for p in args.workflows] or workflow_files()
    store = WorkspaceStore(_dev_workspace(files, args.workspace))
    port = _dev_port(args.host, args.port)
    apply_event_batching_env()  # webserver, daemon and run workers all write events: they inherit it
    env = dict(os.environ, DAGSTER_HOME=str(ensure_dagster_home(store)), **{WORKSPACE_ENV: str(store.root)})
    env[WORKFLOWS_ENV] = os.pathsep.join(str(p) for p in files)
    command = [sys.executable, "-W", SUPERSEDED_DEV_WARNING, "-m", "dagster", "dev"]
    command += ["-m", "beprepared_dagster.definitions", "-h", args.host, "-p", str(port)]
    print(f"workspace {store.root}; Dagster UI on http://{args.host}:{port}", file=sys.stderr)
    os.execve(sys.executable, command, env)
    return 0  # not reached


def _dev_workspace(files: list[Path], chosen: str | None) -> Path:
    """The one workspace the workflow files use (a file without `Workspace(dir)` uses -w, else
    $BEPREPARED_WORKSPACE or ./workspace); -w naming another one is an error, not silently ignored."""
    from beprepared_dagster.orchestration.loader import load_file

    used: dict[Path, Path] = {}  # workspace → the first file that uses it
    for path in files:
        for workflow in load_file(path):
            used.setdefault(workflow.workspace_dir, path)
    if len(used) > 1:
        listed = "; ".join(f"{path.name} uses {ws}" for ws, path in used.items())
        raise BeprepareError(f"`beprepared dev` serves one workspace, but {listed}: start one per workspace")
    workspace, path = next(iter(used.items()))
    if chosen is not None and resolve_workspace_dir(chosen) != workspace:
        raise BeprepareError(
            f"-w {chosen} disagrees with {path.name}, which uses the workspace {workspace}: drop -w or "
            "change the file"
        )
    return workspace


def _dev_port(host: str, port: int | None) -> int:
    """The webserver's port: the one asked for if it is free (else an error naming it), or the first free
    one from 3000 (saying so when 3000 is taken), so Dagster never starts its daemon without a UI."""
    from beprepared_dagster.labeling.config import next_free_port, port_is_free

    if port is not None:
        if not port_is_free(host, port):
            raise BeprepareError(
                f"port {port} on {host} is taken (another dagster dev?); choose another with -p"
            )
        return port
    chosen = next_free_port(host, DEFAULT_DEV_PORT)
    if chosen is None:
        raise BeprepareError(
            f"ports {DEFAULT_DEV_PORT}-{DEFAULT_DEV_PORT + 19} on {host} are taken; choose one with -p"
        )
    if chosen != DEFAULT_DEV_PORT:
        console.warn(f"port {DEFAULT_DEV_PORT} is taken; the Dagster UI uses port {chosen}")
    return chosen


if __name__ == "__main__":
    sys.exit(main())
