"""Bench rows for pyembed.torch (python -m pyembed.bench --only torch), issue 14's "done when":
one whole torch training step -- ``EmbeddingBag(V, D, mode="sum")`` -> ``Linear(D, 16)`` ->
cross-entropy, then ``zero_grad``, ``backward`` and the optimizers' ``step`` -- on a batch of
bags of Zipf ids, with

- pyembed.torch.EmbeddingBag, dense gradient, torch.optim.Adam;
- pyembed.torch.EmbeddingBag(sparse=True), torch.optim.SparseAdam (the head: Adam);
- pyembed.torch.EmbeddingBag with pyembed.optim.Adam(bag, lazy=True, in_backward=True): the table
  updated inside torch's backward, no weight gradient at all (the head: torch's Adam);

against the same steps with torch.nn.EmbeddingBag (dense + Adam, sparse=True + SparseAdam),
all four raced together. The head and the loss are the same torch code in every variant.
"""
import numpy as np

from .. import optim as pe_optim
from .harness import zipf_ids


def _trainer(torch, bag, head, sparse, ids, labels):
    """One training step of ``bag`` -> ``head`` -> cross-entropy, as a callable."""
    if sparse == "in_backward":
        # the pyembed optimizer is attached to the table; its step and zero_grad are no-ops
        opts = [pe_optim.Adam(bag, lr=1e-3, lazy=True, in_backward=True),
                torch.optim.Adam(head.parameters(), lr=1e-3)]
    elif sparse:
        opts = [torch.optim.SparseAdam(bag.parameters(), lr=1e-3),
                torch.optim.Adam(head.parameters(), lr=1e-3)]
    else:
        opts = [torch.optim.Adam([*bag.parameters(), *head.parameters()], lr=1e-3)]

    def step():
        loss = torch.nn.functional.cross_entropy(head(bag(ids)), labels)
        for opt in opts:
            opt.zero_grad()
        loss.backward()
        for opt in opts:
            opt.step()

    return step


def rows(ctx):
    torch = ctx.torch
    if torch is None:
        return []
    from .. import torch as pe_torch  # imports torch: only when the bench has it

    V, D, B, L = (32000, 128, 1024, 20) if ctx.quick else (128000, 512, 4096, 20)
    rng = np.random.default_rng(0)
    ids = torch.from_numpy(zipf_ids(rng, B * L, V).reshape(B, L))
    labels = torch.from_numpy(rng.integers(0, 16, B))
    uniq = len(np.unique(ids.numpy()))
    torch.manual_seed(0)
    weight = torch.randn(V, D)
    head_init = torch.nn.Linear(D, 16)
    steps = {}
    for name, module, sparse in (("pyembed dense", pe_torch.EmbeddingBag, False),
                                 ("pyembed sparse", pe_torch.EmbeddingBag, True),
                                 ("pyembed Adam in backward", pe_torch.EmbeddingBag,
                                  "in_backward"),
                                 ("torch.nn EmbeddingBag + Adam", torch.nn.EmbeddingBag, False),
                                 ("torch.nn EmbeddingBag(sparse) + SparseAdam",
                                  torch.nn.EmbeddingBag, True)):
        bag = module.from_pretrained(weight.clone(), freeze=False, mode="sum",
                                     sparse=sparse is True)
        head = torch.nn.Linear(D, 16)
        head.load_state_dict(head_init.state_dict())
        steps[name] = _trainer(torch, bag, head, sparse, ids, labels)
        steps[name]()  # the optimizer state exists before the timing, as in a training run
    t = ctx.race(steps, min_runs=3, max_runs=6)
    shape = f"{V}x{D} sum, {B} bags of {L} Zipf ids ({uniq} unique) -> Linear({D}, 16)"
    anchors = {k: v for k, v in t.items() if k.startswith("torch")}
    return [{"kernel": "torch step dense Adam", "shape": shape, "pyembed_s": t["pyembed dense"],
             "anchors": anchors, "bytes": None},
            {"kernel": "torch step SparseAdam", "shape": shape, "pyembed_s": t["pyembed sparse"],
             "anchors": anchors, "bytes": None},
            {"kernel": "torch step Adam in backward", "shape": shape,
             "pyembed_s": t["pyembed Adam in backward"], "anchors": anchors, "bytes": None}]
