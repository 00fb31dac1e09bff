"""``rdbkit node``: run the bundled Redis-protocol server in the foreground.

Argument handling only; the server is :mod:`rdbkit.node`. It runs until
SIGTERM, SIGINT or a SHUTDOWN command, loading ``--dir/--dbfilename`` at start
when that file exists.
"""

from __future__ import annotations

import logging

import click

from rdbkit.node import NodeConfig, run_node


@click.command("node")
@click.option("--port", type=click.IntRange(0, 65535), default=6379, show_default=True,
              help="TCP port to listen on (0 picks a free one).")
@click.option("--bind", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--dir", "directory", type=click.Path(file_okay=False), default=".",
              show_default=True, help="Directory of the dump file.")
@click.option("--dbfilename", default="dump.rdb", show_default=True,
              help="Dump file name (loaded at start, written by SAVE/BGSAVE).")
@click.option("--databases", type=click.IntRange(1, 1 << 20), default=16, show_default=True,
              help="Number of databases.")
@click.option("--save", "save_points", default="",
              help="Save points as in redis ('3600 1 300 100'); non-empty means "
                   "SHUTDOWN and SIGTERM save first.")
@click.option("--loglevel", type=click.Choice(["debug", "info", "warning", "error"]),
              default="info", show_default=True)
def node_command(port: int, bind: str, directory: str, dbfilename: str, databases: int,
                 save_points: str, loglevel: str) -> None:
    """Run a bundled Redis-protocol node until SIGTERM/SIGINT/SHUTDOWN."""
    logging.basicConfig(level=loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = NodeConfig(port=port, bind=bind, dir=directory, dbfilename=dbfilename,
                        databases=databases, save=save_points)

    def ready(node) -> None:
        click.echo(f"rdbkit node listening on {node.config.bind}:{node.config.port}", err=True)

    run_node(config, ready)
