"""pyembed.optim.lr_scheduler against torch.optim.lr_scheduler, step by step: the same schedule
on a pyembed optimizer and on a torch optimizer (two param groups, different lrs) gives equal
learning rates (bitwise: both are the same Python double arithmetic), equal momentum / betas
for OneCycleLR, and parameters that agree to the optimizers' tolerance; state_dict round trips
continue the schedule exactly."""
import copy
import math
import pickle
import warnings

import numpy as np
import pytest

from pyembed import optim
from pyembed.optim import lr_scheduler as ls

torch = pytest.importorskip("torch")

STEPS = 25


def _pairs():
    rng = np.random.default_rng(3)
    p0 = [rng.standard_normal((5, 7)), rng.standard_normal((3, 7))]
    grads = [[rng.standard_normal(p.shape) for p in p0] for _ in range(STEPS)]
    return p0, grads


def _optimizers(kind):
    p0, grads = _pairs()
    ours = [(p.copy(), np.zeros_like(p)) for p in p0]
    theirs = [torch.tensor(p, requires_grad=True) for p in p0]
    if kind == "sgd":
        mk, tk = optim.SGD, torch.optim.SGD
        kw = dict(momentum=0.9)
    else:
        mk, tk = optim.Adam, torch.optim.Adam
        kw = {}
    opt = mk([{"params": [ours[0]]}, {"params": [ours[1]], "lr": 0.05}], lr=0.1, **kw)
    topt = tk([{"params": [theirs[0]]}, {"params": [theirs[1]], "lr": 0.05}], lr=0.1, **kw)
    return opt, topt, ours, theirs, grads


def _groups_equal(opt, topt):
    for g, tg in zip(opt.param_groups, topt.param_groups, strict=True):
        for k in ("lr", "initial_lr", "momentum", "betas", "max_lr", "min_lr"):
            if k in tg:
                want = tuple(tg[k]) if k == "betas" else tg[k]
                assert g[k] == want, (k, g[k], want)


def _run(make, kind="sgd", steps=STEPS, check_params=True):
    """Step both side by side; return the pyembed optimizer and scheduler at the end."""
    opt, topt, ours, theirs, grads = _optimizers(kind)
    sched, tsched = make(ls, opt), make(torch.optim.lr_scheduler, topt)
    assert sched.get_last_lr() == tsched.get_last_lr()
    _groups_equal(opt, topt)
    for k in range(steps):
        for (_, g), t, gr in zip(ours, theirs, grads[k]):
            g[...] = gr
            t.grad = torch.tensor(gr)
        opt.step()
        topt.step()
        sched.step()
        tsched.step()
        assert sched.get_last_lr() == tsched.get_last_lr(), k
        assert sched.last_epoch == tsched.last_epoch
        _groups_equal(opt, topt)
    if check_params:
        for (p, _), t in zip(ours, theirs):
            np.testing.assert_allclose(p, t.detach().numpy(), rtol=1e-9, atol=1e-12)
    return opt, sched


SCHEDULES = {
    "lambda": lambda m, o: m.LambdaLR(o, lambda e: 0.95 ** e),
    "lambda_per_group": lambda m, o: m.LambdaLR(o, [lambda e: 1 / (e + 1), lambda e: 0.9 ** e]),
    "step": lambda m, o: m.StepLR(o, step_size=3, gamma=0.5),
    "multistep": lambda m, o: m.MultiStepLR(o, milestones=[2, 5, 5, 11], gamma=0.3),
    "exponential": lambda m, o: m.ExponentialLR(o, gamma=0.9),
    "cosine": lambda m, o: m.CosineAnnealingLR(o, T_max=7, eta_min=0.001),
    "cosine_no_min": lambda m, o: m.CosineAnnealingLR(o, T_max=10),
    "linear": lambda m, o: m.LinearLR(o, start_factor=0.25, end_factor=0.9, total_iters=6),
    "linear_default": lambda m, o: m.LinearLR(o),
    "onecycle_cos": lambda m, o: m.OneCycleLR(o, max_lr=[0.5, 0.2], total_steps=STEPS),
    "onecycle_linear": lambda m, o: m.OneCycleLR(o, max_lr=0.4, total_steps=STEPS + 3,
                                                 anneal_strategy="linear"),
    "onecycle_three_phase": lambda m, o: m.OneCycleLR(o, max_lr=0.3, epochs=5,
                                                      steps_per_epoch=5, three_phase=True,
                                                      pct_start=0.25),
    "onecycle_no_momentum": lambda m, o: m.OneCycleLR(o, max_lr=0.3, total_steps=STEPS,
                                                      cycle_momentum=False),
    "sequential": lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.1, total_iters=4),
            m.ExponentialLR(o, gamma=0.8), m.StepLR(o, step_size=2)], milestones=[4, 9]),
    "sequential_cosine": lambda m, o: m.SequentialLR(
        o, [m.ExponentialLR(o, gamma=0.5), m.CosineAnnealingLR(o, T_max=6)], milestones=[3]),
}


@pytest.mark.parametrize("kind", ["sgd", "adam"])
@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedule_matches_torch_step_by_step(name, kind):
    _run(SCHEDULES[name], kind)


def test_two_chained_schedulers_match_torch():
    """The recursive form composes: two schedulers on one optimizer multiply, as in torch."""
    def make(m, o):
        a, b = m.ExponentialLR(o, gamma=0.9), m.CosineAnnealingLR(o, T_max=5)

        class Both:
            def step(self):
                a.step()
                b.step()

            def get_last_lr(self):
                return b.get_last_lr()

            last_epoch = property(lambda self: b.last_epoch)
        return Both()
    _run(make)


def test_lr_changed_by_hand_is_annealed_from_where_it_is():
    """CosineAnnealingLR's recursive form (torch 2.13's): a hand-set lr carries through."""
    def make(m, o):
        s = m.CosineAnnealingLR(o, T_max=8)
        with warnings.catch_warnings():  # torch: "scheduler stepped before the optimizer"
            warnings.simplefilter("ignore", UserWarning)
            for _ in range(3):
                s.step()
        o.param_groups[0]["lr"] = 0.02
        return s
    _run(make, check_params=False)


def test_closed_form_step_epoch_matches_torch():
    opt, topt, *_ = _optimizers("sgd")
    for name in ("step", "multistep", "exponential", "cosine", "linear"):
        s, t = SCHEDULES[name](ls, opt), SCHEDULES[name](torch.optim.lr_scheduler, topt)
        for e in (3, 7, 4, 12):
            with pytest.warns(UserWarning):
                s.step(e)
            with pytest.warns(UserWarning):
                t.step(e)
            assert s.get_last_lr() == t.get_last_lr(), (name, e)


@pytest.mark.parametrize("name", ["lambda", "step", "multistep", "cosine", "linear",
                                  "onecycle_cos", "onecycle_three_phase", "sequential"])
def test_state_dict_round_trip_continues_the_schedule(name):
    """Save after 6 steps (optimizer and scheduler), load both into fresh ones created the
    torch way (scheduler first, then the loads), and the next steps equal an unbroken run."""
    make = SCHEDULES[name]
    opt, _, ours, _, _ = _optimizers("adam")
    sched = make(ls, opt)
    for _ in range(6):
        opt.step()
        sched.step()
    osd = {k: np.array(v) for k, v in opt.state_dict().items()}
    ssd = pickle.loads(pickle.dumps(
        {k: v for k, v in sched.state_dict().items()
         if not callable(v) and k != "lr_lambdas"} | (
            {"lr_lambdas": sched.state_dict()["lr_lambdas"]} if name == "lambda" else {})))
    opt2, _, _, _, _ = _optimizers("adam")
    sched2 = make(ls, opt2)
    opt2.load_state_dict(osd)
    sched2.load_state_dict(copy.deepcopy(ssd))
    assert sched2.last_epoch == sched.last_epoch
    assert sched2.get_last_lr() == sched.get_last_lr()
    for _ in range(8):
        opt.step()
        opt2.step()
        sched.step()
        sched2.step()
        assert sched2.get_last_lr() == sched.get_last_lr()
        assert [g["lr"] for g in opt2.param_groups] == [g["lr"] for g in opt.param_groups]
        assert [g["betas"] for g in opt2.param_groups] == [g["betas"] for g in opt.param_groups]


def test_state_dict_has_torchs_keys():
    opt, topt, *_ = _optimizers("sgd")
    for name in ("step", "cosine", "onecycle_cos", "sequential"):
        s, t = SCHEDULES[name](ls, opt), SCHEDULES[name](torch.optim.lr_scheduler, topt)
        assert set(s.state_dict()) <= set(t.state_dict()), name
        assert s.state_dict().get("base_lrs") == t.state_dict().get("base_lrs")


def test_resume_with_last_epoch_needs_initial_lr():
    opt, topt, *_ = _optimizers("sgd")
    with pytest.raises(KeyError, match="initial_lr"):
        ls.StepLR(opt, step_size=2, last_epoch=3)
    with pytest.raises(KeyError, match="initial_lr"):
        torch.optim.lr_scheduler.StepLR(topt, step_size=2, last_epoch=3)
    for g in opt.param_groups:
        g["initial_lr"] = 1.0
    s = ls.StepLR(opt, step_size=2, last_epoch=3)
    assert s.last_epoch == 4 and s.base_lrs == [1.0, 1.0]


def test_bad_arguments_raise_as_torch():
    opt, topt, *_ = _optimizers("sgd")
    cases = [
        (ValueError, lambda m, o: m.LambdaLR(o, [lambda e: 1.0])),
        (TypeError, lambda m, o: m.LambdaLR(o, 3)),
        (ValueError, lambda m, o: m.LinearLR(o, start_factor=0)),
        (ValueError, lambda m, o: m.LinearLR(o, end_factor=1.5)),
        (ValueError, lambda m, o: m.OneCycleLR(o, max_lr=0.1)),
        (ValueError, lambda m, o: m.OneCycleLR(o, max_lr=0.1, total_steps=0)),
        (ValueError, lambda m, o: m.OneCycleLR(o, max_lr=0.1, total_steps=5, pct_start=1)),
        (ValueError, lambda m, o: m.OneCycleLR(o, max_lr=0.1, total_steps=5,
                                               anneal_strategy="exp")),
        (ValueError, lambda m, o: m.OneCycleLR(o, max_lr=[0.1], total_steps=5)),
        (ValueError, lambda m, o: m.SequentialLR(o, [], milestones=[])),
        (ValueError, lambda m, o: m.SequentialLR(o, [m.StepLR(o, 2)], milestones=[1])),
        (TypeError, lambda m, o: m.StepLR(object(), 2)),
    ]
    for exc, make in cases:
        with pytest.raises(exc):
            make(torch.optim.lr_scheduler, topt)
        with pytest.raises(exc):
            make(ls, opt)


def test_onecycle_past_total_steps_raises():
    opt, *_ = _optimizers("sgd")
    s = ls.OneCycleLR(opt, max_lr=0.1, total_steps=3)
    for _ in range(3):
        s.step()
    with pytest.raises(ValueError, match="Tried to step 4 times"):
        s.step()


def test_onecycle_needs_momentum_or_betas():
    p = np.zeros((2, 2))
    opt = optim.Adam([(p, np.zeros_like(p))], lr=0.1)
    del opt.defaults["betas"]
    with pytest.raises(ValueError, match="momentum or beta1"):
        ls.OneCycleLR(opt, max_lr=0.1, total_steps=3)


def test_get_lr_outside_step_warns_and_cosine_ends_at_eta_min():
    opt, *_ = _optimizers("sgd")
    s = ls.CosineAnnealingLR(opt, T_max=4, eta_min=0.01)
    with pytest.warns(UserWarning, match="get_last_lr"):
        s.get_lr()
    for _ in range(4):
        s.step()
    assert all(math.isclose(lr, 0.01) for lr in s.get_last_lr())


def test_optimizer_state_loads_scheduler_entries_before_the_scheduler_exists():
    """torch loads a saved group's initial_lr (and OneCycleLR's entries) whether or not the
    new optimizer has them, so resuming with last_epoch works after the optimizer's load."""
    opt, *_ = _optimizers("sgd")
    sched = ls.OneCycleLR(opt, max_lr=0.5, total_steps=10)
    for _ in range(4):
        opt.step()
        sched.step()
    saved = opt.state_dict()
    opt2, *_ = _optimizers("sgd")
    opt2.load_state_dict(saved)
    for g, g2 in zip(opt.param_groups, opt2.param_groups):
        for k in ("initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum", "lr"):
            assert g2[k] == g[k]
    sched2 = ls.OneCycleLR(opt2, max_lr=0.5, total_steps=10, last_epoch=sched.last_epoch)
    sched.step()
    assert sched2.get_last_lr() == sched.get_last_lr()
    bad = dict(saved)
    bad["param_groups.0.unheard_of"] = np.asarray(1.0)
    with pytest.raises(ValueError, match="unheard_of"):
        opt2.load_state_dict(bad)
