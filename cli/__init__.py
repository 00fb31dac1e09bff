"""The ``rdbkit`` command line (installed as the package ``rdbkit.cli``).

One module per command group; this one only builds the group and turns
errors a user can cause (``RdbkitError``, an unreadable file) into a
one-line ``Error: ...`` on stderr with exit status 1. A traceback means a bug
in rdbkit, never bad input.
"""

from __future__ import annotations

import click

import rdbkit
from rdbkit.errors import RdbkitError


def describe_os_error(exc: OSError) -> str:
    """``cannot open 'x.rdb': No such file or directory`` rather than errno soup."""
    reason = exc.strerror or str(exc)
    if exc.filename is not None:
        return f"cannot open {exc.filename!r}: {reason}"
    return reason


class RdbkitGroup(click.Group):
    """A click group whose subcommands report rdbkit and file errors as one line."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            raise  # click's own main handles a closed stdout (``rdbkit ... | head``)
        except RdbkitError as exc:
            raise click.ClickException(str(exc)) from exc
        except OSError as exc:
            raise click.ClickException(describe_os_error(exc)) from exc


@click.group(cls=RdbkitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(rdbkit.__version__, prog_name="rdbkit",
                      message=f"%(prog)s %(version)s (codec: {rdbkit.IMPLEMENTATION})")
def cli() -> None:
    """rdbkit: inspect, verify, convert and catalog Redis/Valkey RDB snapshots."""


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``rdbkit = "rdbkit.cli:main"``)."""
    cli.main(args=argv, prog_name="rdbkit")


from rdbkit.cli import convert, inspect, live, memory, node, snapshot, verify

cli.add_command(inspect.inspect_command)
cli.add_command(verify.verify_command)
cli.add_command(convert.convert_command)
cli.add_command(memory.memory_command)
cli.add_command(node.node_command)
for command in snapshot.COMMANDS + live.COMMANDS:
    cli.add_command(command)

__all__ = ["cli", "main"]
