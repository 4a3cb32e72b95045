"""The optional C estimate (edge_sdrm3/core/policies/_sdrm3_estimate_c.c): built where a C compiler and Python's
headers exist, silently left out where they do not (``optional=True``: the pure-Python estimate then runs, with the
same decisions). ``EDGE_SDRM3_PURE=1`` at build time builds no extension: the distributable wheel (``make dist``)
stays ``py3-none-any`` for every board; a board that installs from the source tree or the sdist compiles it."""
import os

from setuptools import Extension, setup

ESTIMATE = Extension("edge_sdrm3.core.policies._sdrm3_estimate_c", ["edge_sdrm3/core/policies/_sdrm3_estimate_c.c"],
                     optional=True)

setup(ext_modules=[] if os.environ.get("EDGE_SDRM3_PURE") == "1" else [ESTIMATE])
