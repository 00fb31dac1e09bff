"""``python -m rdbkit.cli``: the same entry point as the ``rdbkit`` script."""

from rdbkit.cli import main

main()
