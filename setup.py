"""Builds the C codec extension ``rdbkit._codec`` from ``ext/`` with Cython.

``RDBKIT_ASAN=1`` builds it with AddressSanitizer (``bash tasks.sh asan``).
"""

import os

from Cython.Build import cythonize
from setuptools import Extension, setup

extra_compile = ["-O3", "-fno-strict-aliasing"]
extra_link: list[str] = []
if os.environ.get("RDBKIT_ASAN"):
    extra_compile = ["-O1", "-g", "-fsanitize=address", "-fno-omit-frame-pointer"]
    extra_link = ["-fsanitize=address"]

codec = Extension(
    "rdbkit._codec",
    sources=["ext/_codec.pyx", "ext/lzf.c", "ext/crc64.c"],
    include_dirs=["ext"],
    depends=["ext/_cursor.pxi", "ext/_containers.pxi", "ext/_values.pxi", "ext/_encode.pxi", "ext/lzf.h",
             "ext/crc64.h", "ext/fastfloat.h"],
    extra_compile_args=extra_compile,
    extra_link_args=extra_link,
)

setup(
    packages=["rdbkit", "rdbkit.codec", "rdbkit.compat", "rdbkit.cli"],
    package_dir={"rdbkit.cli": "cli"},
    package_data={"rdbkit": ["py.typed", "_codec.pyi"]},
    ext_modules=cythonize(
        [codec],
        compiler_directives={"language_level": "3", "boundscheck": False, "wraparound": False},
    ),
)
