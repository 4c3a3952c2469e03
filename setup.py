"""Build pyembed._core from every C file under csrc/.

OpenMP is used when the compiler accepts -fopenmp (probed at build time); PYEMBED_OPENMP=0/1 forces
it off/on. PYEMBED_CFLAGS adds flags (e.g. the sanitizer build in the developers' guide). There is
no -march=native: what users install must run on any x86-64 / aarch64.
"""
import glob
import os
import shlex
import subprocess
import sys
import tempfile

import numpy as np
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

BASE_FLAGS = [
    "-std=gnu11",
    "-O3",
    # sqrtf stays a libm call (and Adam ~3x slower) unless errno is off; never -ffast-math,
    # which links crtfastmath.o and flips flush-to-zero for the whole process.
    "-fno-math-errno",
    # One FMA policy everywhere, so vector/scalar paths and all thread counts give the same bits.
    "-ffp-contract=off",
    "-Wall",
    "-Wextra",
    "-Wno-missing-field-initializers",
    "-fvisibility=hidden",
]


def _compiler_accepts(compiler, flag):
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "probe.c")
        with open(src, "w") as f:
            f.write("#include <omp.h>\nint main(void){return omp_get_max_threads() > 0 ? 0 : 1;}\n")
        try:
            objs = compiler.compile([src], output_dir=d, extra_postargs=[flag])
            compiler.link_executable(objs, "probe", output_dir=d, extra_postargs=[flag])
        except Exception:
            return False
    return True


class BuildExt(build_ext):
    def build_extensions(self):
        env = os.environ.get("PYEMBED_OPENMP")
        if env is not None and env.strip() in ("0", "1"):
            use_omp = env.strip() == "1"
        else:
            use_omp = _compiler_accepts(self.compiler, "-fopenmp")
        extra = shlex.split(os.environ.get("PYEMBED_CFLAGS", ""))
        for ext in self.extensions:
            ext.extra_compile_args = BASE_FLAGS + (["-fopenmp"] if use_omp else []) + extra
            ext.extra_link_args = (["-fopenmp"] if use_omp else []) + extra
        sys.stderr.write("pyembed: building with OpenMP %s\n" % ("on" if use_omp else "off"))
        super().build_extensions()


sources = sorted(glob.glob("csrc/kernels/*.c")) + sorted(glob.glob("csrc/py/*.c"))

setup(
    ext_modules=[
        Extension(
            "pyembed._core",
            sources=sources,
            # only csrc/: glue includes kernels as "kernels/x.h", so no file name needs a suffix
            # to avoid a clash between the two folders
            include_dirs=["csrc", np.get_include()],
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION")],
        )
    ],
    cmdclass={"build_ext": BuildExt},
)
