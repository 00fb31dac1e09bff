"""Shared pytest fixtures.

``codec`` runs a test once per implementation (``[c]`` and ``[python]``), so a
difference between the twins shows up as a test id. Real-server fixtures
live in ``tests/servers.py`` and are registered here.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest

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


@pytest.fixture
def tmp_env(monkeypatch):
    """Environment helper for subprocess tests."""
    env = dict(os.environ)
    return env
