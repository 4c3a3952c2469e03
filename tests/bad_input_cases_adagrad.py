"""Bad-input cases of Adagrad and RowWiseAdagrad (see bad_input_cases.py): hyper-parameters,
options changed between steps and state that does not fit, each refused before anything
changes. The optimizers are built inside the calls, so the shared world only lends its tables."""
import numpy as np

from pyembed import optim
from bad_input_cases import INF, NAN, case
from bad_input_world import DIM, ROWS


def _stepped(cls, emb, **kw):
    """An optimizer that has taken one step on emb's current gradient with lr=0, which leaves
    emb's weights bit for bit as they were (the world's tables are only lent)."""
    opt = cls(emb, lr=0.0, **kw)
    opt.step()
    return opt


def _set_and_step(cls, emb, key, value):
    opt = _stepped(cls, emb)
    opt.param_groups[0][key] = value
    opt.step()


def _load(cls, emb, **changes):
    opt = _stepped(cls, emb)
    sd = dict(opt.state_dict())
    sd.update(changes)
    opt.load_state_dict(sd)


# (option, bad value, exception, what the message names), for both optimizers
BAD_OPTIONS = [
    ("lr", -1, ValueError, ("learning rate", "-1")),
    ("lr", NAN, ValueError, ("learning rate", "nan")),
    ("lr", "a", TypeError, ("lr", "str")),
    ("lr", None, TypeError, ("lr",)),
    ("eps", -1, ValueError, ("epsilon", "-1")),
    ("eps", NAN, ValueError, ("epsilon", "nan")),
    ("weight_decay", -1, ValueError, ("weight_decay", "-1")),
    ("weight_decay", INF, ValueError, ("weight_decay", "inf")),
    ("lr_decay", -1, ValueError, ("lr_decay", "-1")),
    ("lr_decay", NAN, ValueError, ("lr_decay", "nan")),
    ("initial_accumulator_value", -1, ValueError, ("initial_accumulator_value", "-1")),
    ("initial_accumulator_value", "a", TypeError, ("initial_accumulator_value", "str")),
]


def adagrad_cases():
    out = []
    for cls in (optim.Adagrad, optim.RowWiseAdagrad):
        n = cls.__name__
        out += [case(f"{n}({k} {v})", lambda w, c=cls, k=k, v=v: c(w.e1, **{k: v}), exc, *needles)
                for k, v, exc, needles in BAD_OPTIONS]
        out += [
            case(f"{n}(params str)", lambda w, c=cls: c("e1"), TypeError, "str"),
            case(f"{n}(unknown option)", lambda w, c=cls: c([{"params": [w.e1], "betas": 1}]),
                 TypeError, "betas"),
            case(f"{n}.step lr nan", lambda w, c=cls: _set_and_step(c, w.e1, "lr", NAN),
                 ValueError, "learning rate", "nan"),
            case(f"{n}.step eps -1", lambda w, c=cls: _set_and_step(c, w.e1, "eps", -1.0),
                 ValueError, "epsilon", "-1"),
            case(f"{n}.load_state_dict lr_decay -1",
                 lambda w, c=cls: _load(c, w.e1, **{"param_groups.0.lr_decay": np.array(-1.0)}),
                 ValueError, "lr_decay", "-1"),
            case(f"{n}.load_state_dict step -1",
                 lambda w, c=cls: _load(c, w.e1, **{"state.0.step": np.array(-1)}),
                 ValueError, "state.0.step"),
            case(f"{n}.load_state_dict sum str",
                 lambda w, c=cls: _load(c, w.e1, **{"state.0.sum": np.full(ROWS, "a")}),
                 ValueError, "state.0.sum"),
            case(f"{n}.load_state_dict Adam's state",
                 lambda w, c=cls: c(w.e2).load_state_dict(w.adam.state_dict()), ValueError,
                 "Adam", n),
        ]
    out += [
        case("Adagrad.load_state_dict sum of one per row",
             lambda w: _load(optim.Adagrad, w.e1, **{"state.0.sum": np.zeros(ROWS, np.float32)}),
             ValueError, "state.0.sum", f"({ROWS},)"),
        case("RowWiseAdagrad.load_state_dict sum of one per element",
             lambda w: _load(optim.RowWiseAdagrad, w.e1,
                             **{"state.0.sum": np.zeros((ROWS, DIM), np.float32)}),
             ValueError, "state.0.sum", f"({ROWS}, {DIM})"),
        case("Adagrad(foreach str)", lambda w: optim.Adagrad(w.e1, foreach="yes"), TypeError,
             "foreach", "yes"),
    ]
    return out
