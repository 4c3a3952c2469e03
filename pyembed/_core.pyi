"""Type stub for pyembed._core, the C extension (csrc/py/). Argument names are the ones the glue
parses: a name before ``/`` is positional only, one after ``*`` keyword only. Ids, offsets,
positions and rows may be any integer array or nested list; the glue reads a private int64 copy."""

from typing import Any, Optional, Union

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

_Float = Union[np.float32, np.float64]
_FloatArray = NDArray[Any]
_Buffer = Union[bytes, bytearray, memoryview]

class Table:
    """A (num_embeddings, embedding_dim) table: weight, lazily its grad and the touched rows."""

    def __new__(
        cls, num_embeddings: int, embedding_dim: int, dtype: Optional[DTypeLike] = None
    ) -> "Table": ...
    @classmethod
    def wrap(cls, weight: _FloatArray) -> "Table":
        """A table over weight's own memory (a memmap): kept alive, never copied."""
    @property
    def weight(self) -> _FloatArray: ...
    @weight.setter
    def weight(self, value: ArrayLike) -> None: ...
    @property
    def grad(self) -> Optional[_FloatArray]:
        """Read-only: rows outside touched are zero and the kernels rely on it."""
    @property
    def touched(self) -> NDArray[np.int64]: ...
    @property
    def num_touched(self) -> int: ...
    @property
    def num_embeddings(self) -> int: ...
    @property
    def embedding_dim(self) -> int: ...
    @property
    def dtype(self) -> np.dtype[Any]: ...
    @property
    def shape(self) -> tuple[int, int]: ...
    def lookup(
        self,
        ids: ArrayLike,
        out: Optional[_FloatArray] = None,
        max_norm: Optional[float] = None,
        norm_type: float = 2.0,
    ) -> _FloatArray: ...
    def renorm(self, ids: ArrayLike, max_norm: float, norm_type: float = 2.0) -> None: ...
    def backward(
        self,
        ids: ArrayLike,
        grad_output: ArrayLike,
        padding_idx: Optional[int] = None,
        scale_grad_by_freq: bool = False,
    ) -> None: ...
    def zero_grad(self) -> None: ...
    def mark_all_touched(self) -> None: ...
    def add_dense_grad(self, dense: ArrayLike, /) -> None: ...
    def __reduce__(self) -> tuple[Any, ...]: ...
    def __sizeof__(self) -> int: ...

# ---- threads, memory, random fills (module.c, pool.c) ----------------------------------------
def set_num_threads(n: int, /) -> None: ...
def get_num_threads() -> int: ...
def have_openmp() -> bool: ...
def stream_threshold(n: Optional[int] = None, /) -> tuple[int, int]: ...
def fill_normal(
    out: _FloatArray, seed: int, mean: float, std: float, first_row: int = 0, row_step: int = 1, /
) -> None: ...
def fill_uniform(
    out: _FloatArray, seed: int, lo: float, hi: float, first_row: int = 0, row_step: int = 1, /
) -> None: ...
def release_memory() -> int: ...
def _table_rebuild(
    cls: type, weight: _FloatArray, grad: Optional[_FloatArray], touched: ArrayLike, /
) -> Table: ...

# ---- positions (positional.c) ---------------------------------------------------------------
def sinusoidal(
    num_positions: int,
    dim: int,
    start: int = 0,
    base: float = 10000.0,
    interleaved: bool = True,
    exponent: int = 0,
    dtype: Optional[DTypeLike] = None,
    out: Optional[_FloatArray] = None,
) -> _FloatArray: ...
def embed_layernorm(
    table: Table,
    ids: ArrayLike,
    positions: Optional[ArrayLike],
    segments: Optional[Table],
    segment_ids: Optional[ArrayLike],
    gamma: Optional[ArrayLike],
    beta: Optional[ArrayLike],
    scale: float,
    eps: float,
    out: Optional[_FloatArray] = None,
    *,
    position_ids: Optional[ArrayLike] = None,
) -> _FloatArray: ...
def embed_layernorm_backward(
    table: Table,
    ids: ArrayLike,
    positions: Optional[ArrayLike],
    segments: Optional[Table],
    segment_ids: Optional[ArrayLike],
    gamma: ArrayLike,
    grad_output: ArrayLike,
    dgamma: np.ndarray,
    dbeta: np.ndarray,
    scale: float,
    eps: float,
    out: Optional[_FloatArray] = None,
    *,
    position_ids: Optional[ArrayLike] = None,
) -> _FloatArray: ...
def embed_positions(
    table: Table,
    ids: ArrayLike,
    positions: Optional[ArrayLike],
    scale: float,
    out: Optional[_FloatArray] = None,
    *,
    position_ids: Optional[ArrayLike] = None,
) -> _FloatArray: ...
def rope(
    x: ArrayLike, positions: Optional[ArrayLike] = None, base: float = 10000.0,
    interleaved: bool = False, inverse: bool = False, out: Optional[_FloatArray] = None,
) -> _FloatArray: ...

# ---- float16 / bfloat16 tables (half.c) ----------------------------------------------------
def narrow_rows(
    table: Table,
    values: NDArray[np.float32],
    rows: Optional[ArrayLike] = None,
    stochastic: bool = False,
    seed: Optional[int] = 0,
    step: Optional[int] = 0,
) -> None: ...

# ---- EmbeddingBag (bag.c); mode 0 sum, 1 mean, 2 max; padding_idx None: no padding row --------
def bag_forward(
    table: Table,
    ids: ArrayLike,
    offsets: ArrayLike,
    per_sample_weights: Optional[ArrayLike],
    mode: int,
    padding_idx: Optional[int],
    /,
) -> tuple[_FloatArray, Optional[NDArray[np.int64]]]: ...
def bag_backward(
    table: Table,
    ids: ArrayLike,
    offsets: ArrayLike,
    grad_output: ArrayLike,
    per_sample_weights: Optional[ArrayLike],
    argmax: Optional[ArrayLike],
    mode: int,
    padding_idx: Optional[int],
    /,
) -> None: ...
def bag_psw_grad(
    table: Table,
    ids: ArrayLike,
    offsets: ArrayLike,
    grad_output: ArrayLike,
    padding_idx: Optional[int],
    /,
) -> _FloatArray: ...

# ---- optimizers (optim.c); hyper-parameters are checked by pyembed.optim, not here -----------
def adam_step(
    param: _FloatArray,
    grad: _FloatArray,
    exp_avg: _FloatArray,
    exp_avg_sq: _FloatArray,
    max_exp_avg_sq: Optional[_FloatArray] = None,
    *,
    step: int = 0,
    lr: float = 1e-3,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    decoupled: bool = False,
    maximize: bool = False,
    sparse_form: bool = False,
    rows: Optional[ArrayLike] = None,
    row_step: Optional[NDArray[np.int64]] = None,
    frozen: Optional[NDArray[Any]] = None,
    table: Optional[Table] = None,
    compact: bool = False,
    ids: Optional[ArrayLike] = None,
    padding_idx: Optional[int] = None,
    scale_grad_by_freq: bool = False,
    stochastic_rounding: bool = False,
    seed: int = 0,
    round_step: int = 0,
) -> Optional[int]: ...
def sgd_step(
    param: _FloatArray,
    grad: _FloatArray,
    momentum_buffer: Optional[_FloatArray] = None,
    *,
    lr: float = 1e-3,
    momentum: float = 0.0,
    dampening: float = 0.0,
    weight_decay: float = 0.0,
    nesterov: bool = False,
    maximize: bool = False,
    first: bool = False,
    rows: Optional[ArrayLike] = None,
    frozen: Optional[NDArray[Any]] = None,
    table: Optional[Table] = None,
    compact: bool = False,
    ids: Optional[ArrayLike] = None,
    padding_idx: Optional[int] = None,
    scale_grad_by_freq: bool = False,
    stochastic_rounding: bool = False,
    seed: int = 0,
    round_step: int = 0,
) -> Optional[int]: ...
def adagrad_step(
    param: _FloatArray,
    grad: _FloatArray,
    state_sum: _FloatArray,
    *,
    lr: float = 1e-2,
    eps: float = 1e-10,
    weight_decay: float = 0.0,
    decoupled: bool = False,
    maximize: bool = False,
    sparse_form: bool = False,
    rowwise: bool = False,
    rows: Optional[ArrayLike] = None,
    compact: bool = False,
    frozen: Optional[NDArray[Any]] = None,
    table: Optional[Table] = None,
    ids: Optional[ArrayLike] = None,
    padding_idx: Optional[int] = None,
    scale_grad_by_freq: bool = False,
    stochastic_rounding: bool = False,
    seed: int = 0,
    round_step: int = 0,
) -> Optional[int]: ...
def grad_norm(
    grad: _FloatArray,
    rows: Optional[ArrayLike] = None,
    norm_type: float = 2.0,
    table: Optional[Table] = None,
) -> float: ...
def scale_grad(
    grad: _FloatArray, coef: float, rows: Optional[ArrayLike] = None, table: Optional[Table] = None
) -> None: ...
def _set_simd_level(level: int, /) -> int: ...

# ---- word2vec (sgns.c) and similarity queries (topk.c) ---------------------------------------
def sgns_train(
    syn0: NDArray[np.float32],
    syn1: NDArray[np.float32],
    tokens: NDArray[np.int32],
    bounds: NDArray[np.int64],
    keep_prob: NDArray[np.float64],
    alias: NDArray[np.uint64],
    *,
    window: int = 5,
    negative: int = 5,
    alpha_begin: float = 0.025,
    alpha_end: float = 0.025,
    seed: int = 1,
    counter_base: int = 0,
    threads: int = 1,
    sg: bool = True,
    cbow_mean: bool = True,
    hs_syn1: Optional[NDArray[np.float32]] = None,
    points: Optional[NDArray[np.int32]] = None,
    codes: Optional[NDArray[np.uint8]] = None,
    code_offsets: Optional[NDArray[np.int64]] = None,
) -> tuple[float, int, int]: ...
def alias_table(weights: ArrayLike, /) -> NDArray[np.uint64]: ...
def topk(
    scores: ArrayLike, k: int, scale: Optional[ArrayLike] = None
) -> tuple[NDArray[np.int64], _FloatArray]: ...

# ---- word-vector files (parse.c); errors name the file (`name`) and line or record -----------
def parse_text(
    buf: _Buffer,
    offset: int,
    dim: int,
    max_rows: int,
    dtype: DTypeLike,
    name: str,
    first_line: int,
    /,
) -> tuple[_FloatArray, bytes, NDArray[np.int64], int]: ...
def parse_binary(
    buf: _Buffer, offset: int, count: int, dim: int, dtype: DTypeLike, name: str, /
) -> tuple[_FloatArray, bytes, int]: ...
def format_text(
    words: _Buffer, starts: ArrayLike, ends: ArrayLike, vectors: _FloatArray, /
) -> bytes: ...
def format_binary(
    words: _Buffer, starts: ArrayLike, ends: ArrayLike, vectors: NDArray[np.float32], /
) -> bytes: ...
