"""The node's commands: the registry and the modules that fill it.

Importing this package registers every command in ``COMMANDS``
(``registry.command`` is the decorator each module uses).
"""

from __future__ import annotations

from rdbkit.node.commands import keys, server, strings  # noqa: F401  (register commands)
from rdbkit.node.commands.registry import COMMANDS, Command, command

__all__ = ["COMMANDS", "Command", "command"]
