"""2-D pictures of word vectors: PCA (an SVD in NumPy) and labelled points (matplotlib).

matplotlib is a dependency of pyembed (the demo draws with it); the module still imports without
it and says how to install it when a figure is asked for. The figure is drawn with the
object-oriented API on matplotlib's Agg canvas (no pyplot, no display, no global state), so it
works on servers and in notebooks alike (Jupyter shows a returned Figure).
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from ._checks import as_float
from .vectors import Vectors

__all__ = ["plot_2d", "plot_heatmap", "pca_2d"]

_MAX_DEFAULT_WORDS = 100


def _matplotlib():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError("pyembed.plot needs matplotlib, which is not installed: "
                          "pip install 'pyembed[plot]' (or pip install matplotlib)") from e
    return Figure, FigureCanvasAgg


def pca_2d(x: ArrayLike) -> np.ndarray:
    """(n, 2) coordinates of the rows of ``x`` on their first two principal axes (centred,
    SVD in float64; each axis's sign fixed so its largest loading is positive)."""
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise TypeError(f"x must be an array of real numbers, got dtype {x.dtype}")
    x = x.astype(np.float64, copy=False)
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


# Label positions tried around each point, nearest first: (dx, dy) in points from the point,
# with the text's alignment so that it grows away from the point.
_RADII = (3, 9, 16, 25, 36, 50)
_DIRECTIONS = ((1, 1), (1, -1), (-1, 1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1))
_FONTSIZE = 9


def _place_labels(ax, xy, labels):
    """Annotate each point with its label at the nearest of a ring of candidate spots where it
    overlaps no label placed before it, no other point and stays inside the axes (the spot that
    overlaps least when none is free); labels pushed away from their point get a thin leader
    line. Greedy, in the given order (the first words keep the closest spots)."""
    if len(labels) == 0:
        return
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    ax.autoscale_view()
    ax.set_xlim(ax.get_xlim())  # freeze the limits: positions are computed in pixels
    ax.set_ylim(ax.get_ylim())
    pts = ax.transData.transform(xy)
    frame = ax.get_window_extent(renderer)
    px_per_pt = fig.dpi / 72.0
    # each label's size in pixels, measured once
    probe = ax.text(0, 0, "", fontsize=_FONTSIZE)
    sizes = []
    for label in labels:
        probe.set_text(label)
        bb = probe.get_window_extent(renderer)
        sizes.append((bb.width, bb.height))
    probe.remove()
    dot = 3.0  # half the marker's size in pixels
    dots = np.column_stack([pts - dot, pts + dot])  # (n, 4) boxes of the markers
    # the candidate spots, nearest first: (r, ux, uy) and their offsets in pixels
    cand = np.array([(r, ux, uy) for r in _RADII for ux, uy in _DIRECTIONS], dtype=np.float64)
    off = cand[:, 1:] * cand[:, :1] * px_per_pt
    placed = np.empty((0, 4))  # labels placed so far
    for i, (w, h) in enumerate(sizes):
        x0 = pts[i, 0] + off[:, 0] - np.where(cand[:, 1] < 0, w, np.where(cand[:, 1] == 0, w / 2, 0))
        y0 = pts[i, 1] + off[:, 1] - np.where(cand[:, 2] < 0, h, np.where(cand[:, 2] == 0, h / 2, 0))
        boxes = np.column_stack([x0, y0, x0 + w, y0 + h])
        others = np.concatenate([placed, np.delete(dots, i, axis=0)])
        cost = _overlap(boxes, others).sum(axis=1)
        cost += w * h - _overlap(boxes, np.array([[frame.x0, frame.y0, frame.x1, frame.y1]]))[:, 0]
        free = np.flatnonzero(cost <= 0)
        k = int(free[0]) if free.size else int(np.argmin(cost))  # argmin: the first of the best
        r, ux, uy = cand[k]
        placed = np.vstack([placed, boxes[k]])
        ha = "left" if ux > 0 else "right" if ux < 0 else "center"
        va = "bottom" if uy > 0 else "top" if uy < 0 else "center"
        arrow = dict(arrowstyle="-", color="0.6", lw=0.6, shrinkA=0, shrinkB=2) if r > 9 else None
        ax.annotate(labels[i], tuple(xy[i]), xytext=(ux * r, uy * r), textcoords="offset points",
                    fontsize=_FONTSIZE, ha=ha, va=va, arrowprops=arrow)


def _overlap(a, b):
    """Areas shared by each box of ``a`` (k, 4) with each of ``b`` (m, 4), boxes as
    (x0, y0, x1, y1): a (k, m) array."""
    wx = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    wy = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    return np.clip(wx, 0, None) * np.clip(wy, 0, None)


def plot_2d(vectors: Vectors | ArrayLike, words: Sequence | None = None,
            path: str | os.PathLike | None = None, method: str = "pca", title: str | None = None, *,
            figsize: tuple[float, float] = (8, 6), dpi: float = 100):
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
    ax.margins(0.12)  # room for the labels of the outermost points
    _place_labels(ax, xy, labels)
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    if title is not None:
        ax.set_title(title)
    if path is not None:
        fig.savefig(path, format="png")
    return fig


def plot_heatmap(table: ArrayLike, path: str | os.PathLike | None = None, *,
                 title: str | None = None, xlabel: str | None = None, ylabel: str | None = None,
                 figsize: tuple[float, float] = (10, 5), dpi: float = 100, cmap: str = "RdBu",
                 vmin: float = -1.0, vmax: float = 1.0):
    """A 2-D array as a heat map, rows down and columns across, with a colour bar (the picture
    of a positional-encoding table in every transformer tutorial). Saves a PNG at ``path`` when
    given; returns the ``matplotlib.figure.Figure``."""
    table = np.asarray(table)
    if table.ndim != 2:
        raise ValueError(f"table must be 2-D, got shape {table.shape}")
    if table.dtype.kind not in "biuf":
        raise TypeError(f"table must be an array of real numbers, got dtype {table.dtype}")
    for name, v in (("vmin", vmin), ("vmax", vmax)):
        if not np.isfinite(as_float(name, v)):
            raise ValueError(f"{name} must be finite, got {v}")
    Figure, FigureCanvasAgg = _matplotlib()
    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(table, aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    if title is not None:
        ax.set_title(title)
    fig.colorbar(im, ax=ax)
    if path is not None:
        fig.savefig(path, format="png")
    return fig
