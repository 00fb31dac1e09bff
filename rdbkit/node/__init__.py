"""Layer 5: the bundled Redis-protocol node (``rdbkit node``).

``Node`` (``rdbkit.node.server``) serves RESP2/RESP3 on asyncio with the
string and key commands, expiry, SAVE/BGSAVE and load at start through the
codec. Modules: ``resp`` (sans-I/O RESP parser and reply encoders),
``keyspace`` (databases and expiry), ``commands`` (the command table),
``persistence`` (RDB save/load), ``server`` (connections and the event loop).
"""

from __future__ import annotations

from rdbkit.node.server import Node, NodeConfig, run_node

__all__ = ["Node", "NodeConfig", "run_node"]
