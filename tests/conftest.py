"""Shared pytest fixtures.

``codec`` runs a test once per implementation (``[c]`` and ``[python]``), so a
difference between the twins shows up as a test id. The real-server fixtures
``redis7``, ``valkey9`` and ``redis6`` live in ``tests/servers.py`` and are
registered here; ``tests/datasets.py`` fills them.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from servers import redis6, redis7, valkey9  # noqa: F401  (fixtures, registered by import)

REPO = Path(__file__).resolve().parent.parent
SHARED_FIXTURES = REPO.parent / "shared" / "fixtures"

IMPLEMENTATIONS = {"c": "rdbkit._codec", "python": "rdbkit._pycodec"}


def load_impl(name: str):
    """Import one codec implementation by its short name; a broken C build fails loudly."""
    return importlib.import_module(IMPLEMENTATIONS[name])


@pytest.fixture(params=sorted(IMPLEMENTATIONS), ids=lambda p: p)
def codec(request):
    """The codec module under test: each test runs for both twins."""
    return load_impl(request.param)


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    """``../shared/fixtures`` (third-party RDB files); skipped when a clone lacks it."""
    if not SHARED_FIXTURES.is_dir():
        pytest.skip(f"{SHARED_FIXTURES} is absent (it ships beside the repo in CI, not in a user's clone)")
    return SHARED_FIXTURES
