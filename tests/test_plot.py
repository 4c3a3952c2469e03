"""pyembed.plot: PCA against a NumPy reference, the figure, and the missing-matplotlib error."""
import sys

import numpy as np
import pytest

import pyembed
from pyembed.plot import pca_2d, plot_2d


def test_pca_matches_covariance_eigenvectors():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 6)) @ np.diag([5, 3, 1, 0.5, 0.2, 0.1])
    xy = pca_2d(x)
    xc = x - x.mean(0)
    w, vecs = np.linalg.eigh(np.cov(xc.T))
    ref = xc @ vecs[:, ::-1][:, :2]
    for k in range(2):  # equal up to each axis's sign
        s = np.sign(ref[:, k] @ xy[:, k])
        np.testing.assert_allclose(xy[:, k], s * ref[:, k], atol=1e-9)
    assert xy[:, 0].var() > xy[:, 1].var()


def test_pca_edge_shapes():
    assert pca_2d(np.ones((1, 4))).shape == (1, 2)
    assert pca_2d(np.arange(5.0)[:, None]).shape == (5, 2)
    assert pca_2d(np.zeros((0, 3))).shape == (0, 2)
    with pytest.raises(ValueError, match="2-D"):
        pca_2d(np.ones(3))


def test_plot_vectors_saves_png(tmp_path):
    pytest.importorskip("matplotlib")
    rng = np.random.default_rng(1)
    kv = pyembed.Vectors([f"w{i}" for i in range(20)], rng.standard_normal((20, 8)).astype(np.float32))
    p = tmp_path / "words.png"
    fig = plot_2d(kv, words=["w1", "w2", "w3"], path=p, title="three")
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ax = fig.axes[0]
    assert ax.get_title() == "three"
    assert [t.get_text() for t in ax.texts] == ["w1", "w2", "w3"]
    fig2 = plot_2d(kv)  # default: the first 100 words (all 20 here)
    assert len(fig2.axes[0].texts) == 20


def test_plot_array_labels_and_errors():
    pytest.importorskip("matplotlib")
    x = np.eye(4)
    fig = plot_2d(x)
    assert [t.get_text() for t in fig.axes[0].texts] == ["0", "1", "2", "3"]
    fig = plot_2d(x, words=list("abcd"))
    assert [t.get_text() for t in fig.axes[0].texts] == list("abcd")
    with pytest.raises(ValueError, match="3 words for 4 vectors"):
        plot_2d(x, words=list("abc"))
    with pytest.raises(ValueError, match="method"):
        plot_2d(x, method="tsne")
    with pytest.raises(KeyError):
        plot_2d(pyembed.Vectors(["a"], np.ones((1, 2))), words=["zz"])


def test_missing_matplotlib_names_the_extra(monkeypatch):
    for name in list(sys.modules):
        if name == "matplotlib" or name.startswith("matplotlib."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(ImportError, match=r"pip install 'pyembed\[plot\]'"):
        plot_2d(np.eye(3))


def test_labels_of_close_points_do_not_overlap():
    pytest.importorskip("matplotlib")
    rng = np.random.default_rng(0)
    # three tight clusters (as synonyms are), far apart
    x = np.concatenate([c + 1e-3 * rng.standard_normal((6, 4)) for c in
                        (np.zeros(4), np.full(4, 5.0), np.array([5.0, -5, 0, 0]))])
    words = [f"word{i}" for i in range(len(x))]
    fig = pyembed.plot.plot_2d(x, words=words)
    fig.canvas.draw()  # annotations are positioned at draw time
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    texts = [t for t in ax.texts if t.get_text() in words]
    assert sorted(t.get_text() for t in texts) == sorted(words)
    from matplotlib.text import Text
    boxes = [Text.get_window_extent(t, renderer) for t in texts]  # the text, not its leader line
    frame = ax.get_window_extent(renderer)
    for i, a in enumerate(boxes):
        assert frame.x0 - 1 <= a.x0 and a.x1 <= frame.x1 + 1 and frame.y0 - 1 <= a.y0 and a.y1 <= frame.y1 + 1
        for b in boxes[i + 1:]:
            assert not a.overlaps(b), (a, b)
