"""Package-level promises: the twins export the same names, the choice of
implementation works, and no module imports a later layer."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path


from conftest import load_impl

REPO = Path(__file__).resolve().parent.parent

PUBLIC = {
    "DEFAULT_MAX_STRING_LEN",
    "DEFAULT_MAX_COLLECTION_LEN",
    "DEFAULT_MAX_BUFFER_SIZE",
    "Entry",
    "Decoder",
    "crc64",
    "lzf_decompress",
}


def public_names(module) -> set[str]:
    return {n for n in dir(module) if not n.startswith("_")}


def test_twins_export_the_same_public_names():
    c, py = load_impl("c"), load_impl("python")
    assert PUBLIC <= public_names(c)
    assert PUBLIC <= public_names(py)
    # Everything public in one twin that belongs to the codec API is in the other.
    # The Python twin's encoder lives in rdbkit._pyencoder and is re-exported by _pycodec.
    own = lambda m: {m.__name__, "rdbkit._pyencoder"} if m is py else {m.__name__}
    api = lambda m: {n for n in public_names(m) if getattr(getattr(m, n), "__module__", m.__name__) in own(m)}
    assert api(c) == api(py)


def test_entry_attributes_match(codec):
    for name in ("db", "key", "type", "value", "expire_ms", "idle", "freq",
                 "field_expires", "encoding", "offset", "size"):
        assert hasattr(codec.Entry, name), name


def _implementation_in_subprocess(env_extra: dict[str, str]) -> str:
    import os

    env = {k: v for k, v in os.environ.items() if k != "RDBKIT_PUREPYTHON"}
    env.update(env_extra)
    out = subprocess.run(
        [sys.executable, "-c", "import rdbkit; print(rdbkit.IMPLEMENTATION)"],
        env=env, capture_output=True, text=True, check=True, cwd="/",
    )
    return out.stdout.strip()


def test_default_implementation_is_c():
    assert _implementation_in_subprocess({}) == "c"


def test_env_var_forces_pure_python():
    assert _implementation_in_subprocess({"RDBKIT_PUREPYTHON": "1"}) == "python"


# Layer order of DESIGN.md: a module may import its own layer or earlier ones.
LAYERS = ["errors", "urls", "codec", "storage", "catalog", "backup", "restore", "node", "cli"]


def _layer_of_module(name: str) -> str | None:
    parts = name.split(".")
    if parts[0] != "rdbkit" or len(parts) == 1:
        return None
    head = parts[1].lstrip("_")
    if head in ("pycodec", "codec", "compat"):
        return "codec"
    return head if head in LAYERS else None


def _source_files():
    for path in sorted((REPO / "rdbkit").rglob("*.py")):
        rel = path.relative_to(REPO)
        mod = ".".join(rel.with_suffix("").parts)
        yield path, mod
    for path in sorted((REPO / "cli").rglob("*.py")):
        yield path, "rdbkit.cli." + ".".join(path.relative_to(REPO / "cli").with_suffix("").parts)


def test_no_module_imports_a_later_layer():
    bad = []
    for path, mod in _source_files():
        own = _layer_of_module(mod)
        if own is None:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                dep = _layer_of_module(name)
                if dep and LAYERS.index(dep) > LAYERS.index(own):
                    bad.append(f"{mod} imports {name}")
    assert not bad, bad
