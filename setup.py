"""Builds the Cython extensions (grouping; tracking and smoothing) as part of the package
(metadata is in pyproject.toml)."""
import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

extensions = [
    Extension(
        name,
        [source],
        include_dirs=[np.get_include()],
        extra_compile_args=["-O3", "-ffp-contract=off"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
    for name, source in (("lwpose.decode._grouping", "cython_ext/grouping.pyx"),
                         ("lwpose._tracking", "cython_ext/tracking.pyx"))
]

setup(ext_modules=cythonize(extensions, language_level=3, compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True}))
