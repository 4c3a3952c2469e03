"""2-D pictures of word vectors: PCA (an SVD in NumPy) and labelled points (matplotlib).

matplotlib is an optional extra: ``pip install 'pyembed[plot]'``. The figure is drawn with the
object-oriented API on matplotlib's Agg canvas (no pyplot, no display, no global state), so it
works on servers and in notebooks alike (Jupyter shows a returned Figure).
"""
import numpy as np

__all__ = ["plot_2d", "pca_2d"]

_MAX_DEFAULT_WORDS = 100


def _matplotlib():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError("pyembed.plot needs matplotlib, which is not installed: "
                          "pip install 'pyembed[plot]' (or pip install matplotlib)") from e
    return Figure, FigureCanvasAgg


def pca_2d(x):
    """(n, 2) coordinates of the rows of ``x`` on their first two principal axes (centred,
    SVD in float64; each axis's sign fixed so its largest loading is positive)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"need a 2-D array of vectors, got shape {x.shape}")
    if x.shape[0] == 0:
        return np.zeros((0, 2))
    xc = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(xc, full_matrices=False)
    axes = vt[:2]
    # deterministic signs (an SVD's are arbitrary)
    flip = np.sign(axes[np.arange(axes.shape[0]), np.argmax(np.abs(axes), axis=1)])
    flip[flip == 0] = 1.0
    coords = xc @ (axes * flip[:, None]).T
    if coords.shape[1] < 2:  # one-dimensional vectors or a single point
        coords = np.hstack([coords, np.zeros((coords.shape[0], 2 - coords.shape[1]))])
    return coords


def plot_2d(vectors, words=None, path=None, method="pca", title=None, *, figsize=(8, 6), dpi=100):
    """Project vectors to 2-D and draw them as labelled points.

    Args:
        vectors: a :class:`pyembed.Vectors` (labels are its words), or a 2-D array (labels are
            ``words`` if given, else row numbers).
        words: which words to draw (default: the first 100 of a Vectors); for an array, the
            labels of its rows.
        path: save a PNG there too.
        method: ``"pca"`` (the only one; t-SNE/UMAP need packages we do not depend on).
        title: the figure title.

    Returns the ``matplotlib.figure.Figure``. Raises ImportError naming the ``plot`` extra when
    matplotlib is missing.

    Example:
        >>> import numpy as np, pyembed
        >>> kv = pyembed.Vectors(["a", "b", "c"], np.eye(3, dtype=np.float32))
        >>> fig = pyembed.plot.plot_2d(kv)   # doctest: +SKIP
    """
    from .vectors import Vectors

    if method != "pca":
        raise ValueError(f"method must be 'pca', got {method!r}")
    if isinstance(vectors, Vectors):
        if words is None:
            words = vectors.index_to_key[:_MAX_DEFAULT_WORDS]
        words = list(words)
        x = vectors[words] if words else np.zeros((0, vectors.vector_size), np.float32)
        labels = [str(w) for w in words]
    else:
        x = np.asarray(vectors)
        if x.ndim != 2:
            raise ValueError(f"vectors must be a Vectors or a 2-D array, got shape {x.shape}")
        if words is not None:
            labels = [str(w) for w in words]
            if len(labels) != x.shape[0]:
                raise ValueError(f"{len(labels)} words for {x.shape[0]} vectors")
        else:
            labels = [str(i) for i in range(x.shape[0])]
    Figure, FigureCanvasAgg = _matplotlib()
    xy = pca_2d(x)
    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.scatter(xy[:, 0], xy[:, 1], s=12, color="tab:blue")
    for (px, py), label in zip(xy.tolist(), labels):
        ax.annotate(label, (px, py), xytext=(3, 3), textcoords="offset points", fontsize=9)
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    if title is not None:
        ax.set_title(title)
    if path is not None:
        fig.savefig(path, format="png")
    return fig
