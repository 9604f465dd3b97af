"""Build glue for the one optional C extension (everything else is in pyproject.toml).

``ferryman._speedups`` compiles two loops of the observability batches. It is optional: without a C
compiler and the Python headers the build skips it and ferryman runs the same loops in Python
(``FERRYMAN_NO_SPEEDUPS=1`` chooses that at run time too).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("ferryman._speedups", ["src/ferryman/_speedups.c"], optional=True,
                             extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-missing-field-initializers"])])
