"""Builds the compiled kernels (token codec, row checks, checksums, range index lookup).

Package metadata lives in pyproject.toml.

python setup.py build_ext --inplace
"""

import sys

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

tokens = Extension(
    "memora_lite.codecs._tokens",
    sources=["memora_lite/codecs/_tokens.pyx", "csrc/mlite_tokens.c"],
    include_dirs=["csrc", np.get_include()],
    # -pthread: mlite_ints_narrow_parallel starts POSIX threads (Windows builds narrow on one).
    extra_compile_args=[] if sys.platform == "win32" else ["-O3", "-pthread"],
    extra_link_args=[] if sys.platform == "win32" else ["-pthread"],
)

rows = Extension(
    "memora_lite._rows",
    sources=["memora_lite/_rows.pyx", "csrc/mlite_crc32.c"],
    include_dirs=["csrc"],
    extra_compile_args=[] if sys.platform == "win32" else ["-O3"],
)

checksum = Extension(
    "memora_lite.storage._checksum",
    sources=["memora_lite/storage/_checksum.pyx", "csrc/mlite_crc32.c"],
    include_dirs=["csrc"],
    extra_compile_args=[] if sys.platform == "win32" else ["-O3"],
)

rangeindex = Extension(
    "memora_lite.storage._rangeindex",
    sources=["memora_lite/storage/_rangeindex.pyx"],
    include_dirs=[np.get_include()],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    extra_compile_args=[] if sys.platform == "win32" else ["-O3"],
)

setup(ext_modules=cythonize([tokens, rows, checksum, rangeindex], compiler_directives={"language_level": "3"}))
