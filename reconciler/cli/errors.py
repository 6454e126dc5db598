"""Exit codes, and every error as one line on stderr with exit code 2.

Exit 1 means "changes pending" (as `flux diff`), so a CI job must never read a broken
setup as 1: each command runs under `Command.invoke`, which turns our typed errors (and
click's own exit-1 exceptions) into `error: <one line>` and exit 2. An unexpected bug is
one line too; `--debug` (or POLICY_RECONCILER_DEBUG=1) prints its traceback first.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable, Mapping
from typing import IO, Any, NoReturn

import click

from reconciler.applyset import ApplySet, BadAnnotation
from reconciler.cluster import errors as kube
from reconciler.localcluster import BuildError, ClusterError
from reconciler.observe.inventory_file import InventoryError
from reconciler.report.publish import PublishError
from reconciler.source import SourceError

EXIT_CLEAN, EXIT_CHANGES, EXIT_ERROR = 0, 1, 2
DEBUG_ENV = "POLICY_RECONCILER_DEBUG"


class Failed(click.ClickException):
    """An error the user can act on: printed as one line, exit 2."""

    exit_code = EXIT_ERROR

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True, file=file)


def fail(message: str) -> NoReturn:
    raise Failed(message)


def no_applyset(applyset: ApplySet, *, also: str = "") -> NoReturn:
    """The commands that talk to a running controller name its ApplySet: a wrong one."""
    fail(
        f"no ApplySet {applyset.namespace}/{applyset.name}{also}: check --namespace and "
        "--applyset (as given to `policy-reconciler run`)"
    )


def explain(exc: kube.KubeError) -> str:
    if isinstance(exc, kube.Unreachable):
        return f"cannot reach the Kubernetes API server: {exc.message}"
    if isinstance(exc, kube.Unauthorized | kube.Forbidden):
        return f"the API server refused our credentials or permissions: {exc.message}"
    return exc.message


def _os_error(exc: OSError) -> str:
    where = f": {exc.filename}" if exc.filename else ""
    return f"{exc.strerror or exc}{where}"


# Most specific first: the first class in an exception's MRO found here words it.
MESSAGES: Mapping[type[BaseException], Callable[[Any], str]] = {
    kube.KubeError: explain,
    SourceError: lambda exc: exc.message,
    PublishError: lambda exc: exc.message,
    BuildError: str,
    ClusterError: str,
    OSError: _os_error,
    BadAnnotation: str,
    InventoryError: str,
}


def message_of(exc: BaseException) -> str:
    for cls in type(exc).__mro__:
        if cls in MESSAGES:
            return MESSAGES[cls](exc)
    return f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)"


def debugging(ctx: click.Context) -> bool:
    root = ctx.find_root()
    return bool(root.params.get("debug")) or os.environ.get(DEBUG_ENV, "") not in ("", "0")


class Command(click.Command):
    """A command whose failures are one line and exit 2 (see the module doc)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.ClickException as exc:
            if exc.exit_code < EXIT_ERROR:  # never "changes pending"
                raise Failed(exc.format_message()) from exc
            raise
        except (click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            if debugging(ctx):
                traceback.print_exc()
            raise Failed(message_of(exc)) from exc


class Group(click.Group):
    """Its subcommands are `Command`s unless they say otherwise."""

    command_class = Command


__all__ = [
    "DEBUG_ENV",
    "EXIT_CHANGES",
    "EXIT_CLEAN",
    "EXIT_ERROR",
    "Command",
    "Failed",
    "Group",
    "explain",
    "fail",
    "message_of",
]
