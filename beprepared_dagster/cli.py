"""The `beprepared` command: `run` a workflow headlessly, `exec` a one-liner, `dev` to open `dagster dev`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from beprepared_dagster.errors import BeprepareError
from beprepared_dagster.store.workspace import WORKSPACE_ENV, resolve_workspace_dir


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 1
    if args.workspace:
        os.environ[WORKSPACE_ENV] = str(resolve_workspace_dir(args.workspace))
    logging.basicConfig(level=logging.INFO, format="%(levelname)-7s %(message)s")
    try:
        return args.func(args)
    except BeprepareError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("stopped by user", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    from beprepared_dagster import __version__

    parser = argparse.ArgumentParser(
        prog="beprepared", description="Prepare image datasets as Dagster assets."
    )
    parser.add_argument("--version", action="version", version=f"beprepared-dagster {__version__}")
    parser.add_argument(
        "-w", "--workspace", help="workspace folder (default: $BEPREPARED_WORKSPACE or ./workspace)"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser("run", help="run a workflow file headlessly (every stage, then Save)")
    run.add_argument("script", type=Path, help="a workflow file")
    run.set_defaults(func=_run)

    exec_ = commands.add_parser("exec", help="run a one-line workflow, e.g. \"Load('raw') >> Save('out')\"")
    exec_.add_argument("code", help="Python code using the node classes")
    exec_.set_defaults(func=_exec)

    dev = commands.add_parser(
        "dev", help="start `dagster dev` on this workspace (history kept in the workspace)"
    )
    dev.add_argument(
        "workflows", nargs="*", type=Path, help="workflow files (default: $BEPREPARED_WORKFLOWS or the demo)"
    )
    dev.add_argument("-p", "--port", type=int, default=3000, help="webserver port (default 3000)")
    dev.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    dev.set_defaults(func=_dev)
    return parser


def _run(args: argparse.Namespace) -> int:
    from beprepared_dagster.orchestration.loader import load_file

    for workflow in load_file(args.script.resolve()):
        summary = workflow.run()
        print(f"{workflow.name}: {summary.new_images} new image(s), {len(summary.runs)} stage run(s), done")
    return 0


def _exec(args: argparse.Namespace) -> int:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "exec.py"
        script.write_text(f"from beprepared_dagster import *\n{args.code}\n")
        args.script = script
        return _run(args)


def _dev(args: argparse.Namespace) -> int:
    from beprepared_dagster.orchestration.instance import ensure_dagster_home
    from beprepared_dagster.orchestration.loader import WORKFLOWS_ENV
    from beprepared_dagster.store.workspace import WorkspaceStore

    store = WorkspaceStore(resolve_workspace_dir(args.workspace))
    env = dict(os.environ, DAGSTER_HOME=str(ensure_dagster_home(store)), **{WORKSPACE_ENV: str(store.root)})
    if args.workflows:
        env[WORKFLOWS_ENV] = os.pathsep.join(str(p.resolve()) for p in args.workflows)
    command = [sys.executable, "-m", "dagster", "dev", "-m", "beprepared_dagster.definitions"]
    command += ["-h", args.host, "-p", str(args.port)]
    print(f"workspace {store.root}; Dagster UI on http://{args.host}:{args.port}", file=sys.stderr)
    os.execve(sys.executable, command, env)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
