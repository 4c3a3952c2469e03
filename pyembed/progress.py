"""The progress report of a training run (pyembed/train.py): a tqdm bar on a terminal, plain
lines otherwise."""
from __future__ import annotations

import os
import sys
import time

__all__ = ["Progress"]


class Progress:
    """A tqdm bar (words, words/s, loss) on a terminal; otherwise ten plain lines, one per tenth
    of the run, each with the mean loss since the line before (so the loss is seen falling)."""

    LINES = 10

    def __init__(self, mode, epochs, n_tokens):
        self.epochs = epochs
        self.total = max(epochs * n_tokens, 1)
        self.bar = None
        self.plain = mode is True or (mode == "auto" and not _isatty())
        self.enabled = mode is not False
        self.t0 = time.perf_counter()
        self.done = 0
        self.cur_epoch = 0
        self.next_line = 1
        self.line_loss, self.line_terms = 0.0, 0
        self.run_loss, self.run_terms = 0.0, 0
        if self.enabled and not self.plain:
            # imported when a bar is shown: tqdm takes 40 ms to import, half of import pyembed
            from tqdm import tqdm

            self.bar = tqdm(total=epochs * n_tokens, unit="word", unit_scale=True,
                            desc="training", dynamic_ncols=True, leave=True)

    def batch(self, words, loss, pairs):
        self.done += words
        self.run_loss += loss
        self.run_terms += pairs
        self.line_loss += loss
        self.line_terms += pairs
        if self.bar is not None:
            self.bar.update(words)
            self.bar.set_postfix(loss=f"{self.run_loss / max(self.run_terms, 1):.4f}",
                                 refresh=False)
        elif self.enabled and self.done * self.LINES >= self.next_line * self.total:
            rate = self.done / max(time.perf_counter() - self.t0, 1e-9)
            print(f"{100 * self.done / self.total:5.0f}%  epoch {self.cur_epoch + 1}/{self.epochs}"
                  f"  loss {self.line_loss / max(self.line_terms, 1):.4f}  "
                  f"{rate / 1e6:.2f}M words/s", flush=True)
            self.line_loss, self.line_terms = 0.0, 0
            while self.next_line * self.total <= self.done * self.LINES:
                self.next_line += 1

    def epoch(self, epoch, mean_loss):
        self.run_loss, self.run_terms = 0.0, 0
        self.cur_epoch = epoch + 1
        if self.bar is not None:
            self.bar.write(f"epoch {epoch + 1}/{self.epochs}: loss {mean_loss:.4f}")

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _isatty():
    try:
        return sys.stderr.isatty() and os.environ.get("TERM", "") != "dumb"
    except (AttributeError, ValueError):
        return False
