"""torch.optim.Optimizer's hooks and param-group rules on pyembed's optimizers, each case run
on a torch optimizer too and the two compared (what the hooks see, in what order, what their
return values do; which groups are accepted)."""
import numpy as np
import pytest

from pyembed import optim

torch = pytest.importorskip("torch")


def _pair(seed=0, shape=(4, 3)):
    p = np.random.default_rng(seed).standard_normal(shape)
    return p, np.ones_like(p)


def _both(kind="adam", **kw):
    p, g = _pair()
    t = torch.tensor(p, requires_grad=True)
    t.grad = torch.ones_like(t)
    mk = {"adam": (optim.Adam, torch.optim.Adam), "sgd": (optim.SGD, torch.optim.SGD)}[kind]
    return mk[0]([(p, g)], lr=0.1, **kw), mk[1]([t], lr=0.1, **kw)


def _trace_step_hooks(opt, calls, call):
    pre = opt.register_step_pre_hook(
        lambda o, a, k: calls.append(("pre", o is opt, len(a), a[0] is opt, sorted(k))))
    post = opt.register_step_post_hook(
        lambda o, a, k: calls.append(("post", o is opt, len(a), a[0] is opt, sorted(k))))
    call(opt)
    return pre, post


@pytest.mark.parametrize("call", [lambda o: o.step(), lambda o: o.step(lambda: 1.0),
                                  lambda o: o.step(closure=lambda: 1.0)],
                         ids=["bare", "positional", "keyword"])
def test_step_hooks_see_what_torchs_see(call):
    ours, theirs = _both()
    seen = {}
    for name, opt in (("ours", ours), ("theirs", theirs)):
        calls = []
        pre, post = _trace_step_hooks(opt, calls, call)
        pre.remove()
        post.remove()
        call(opt)  # removed: no more calls
        seen[name] = calls
    assert seen["ours"] == seen["theirs"]
    assert [c[0] for c in seen["ours"]] == ["pre", "post"]


def test_step_pre_hook_can_replace_the_arguments():
    for opt in _both():
        opt.register_step_pre_hook(lambda o, a, k: (a, {"closure": lambda: 7.0}))
        assert opt.step() == 7.0
        opt.register_step_pre_hook(lambda o, a, k: 3)
        with pytest.raises(RuntimeError, match="must return None or a tuple"):
            opt.step()


def test_state_dict_hooks_order_prepend_and_replacement():
    for opt in _both():
        calls = []
        opt.register_state_dict_pre_hook(lambda o: calls.append("pre1"))
        opt.register_state_dict_pre_hook(lambda o: calls.append("pre0"), prepend=True)
        opt.register_state_dict_post_hook(lambda o, sd: calls.append("post1"))
        h = opt.register_state_dict_post_hook(lambda o, sd: {"replaced": sd}, prepend=True)
        sd = opt.state_dict()
        assert calls == ["pre0", "pre1", "post1"]
        assert list(sd) == ["replaced"]
        h.remove()
        assert "replaced" not in opt.state_dict()


def test_load_state_dict_hooks():
    for opt in _both():
        opt.step()
        saved = opt.state_dict()
        calls = []

        def pre(o, sd):
            calls.append(("pre", o is opt, sd is saved))
            return sd

        opt.register_load_state_dict_pre_hook(pre)
        opt.register_load_state_dict_post_hook(lambda o: calls.append(("post", o is opt)))
        opt.load_state_dict(saved)
        # torch hands the pre-hook a shallow copy, never the caller's dict
        assert calls == [("pre", True, False), ("post", True)]


def test_load_state_dict_pre_hook_can_rewrite_the_dict():
    opt, _ = _both()
    opt.step()
    saved = opt.state_dict()
    bumped = dict(saved)
    bumped["param_groups.0.lr"] = np.asarray(0.5)

    with opt.register_load_state_dict_pre_hook(lambda o, sd: bumped):
        opt.load_state_dict(saved)
    assert opt.param_groups[0]["lr"] == 0.5
    opt.load_state_dict(saved)  # the handle's with-block removed the hook
    assert opt.param_groups[0]["lr"] == 0.1


# ---- param groups -------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["adam", "sgd"])
@pytest.mark.parametrize("option", [dict(fused=None), dict(foreach=False), dict(fused=False),
                                    dict(foreach=None, fused=None)], ids=str)
def test_group_accepts_every_constructor_option(kind, option):
    (p, g), (q, h) = _pair(1), _pair(2)
    cls = {"adam": optim.Adam, "sgd": optim.SGD}[kind]
    opt = cls([{"params": [(p, g)], **option}, {"params": [(q, h)], "lr": 0.5, **option}],
              lr=0.1, **option)
    tcls = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}[kind]
    tcls([{"params": [torch.zeros(2, requires_grad=True)], **option}], lr=0.1, **option)
    opt.step()
    assert [grp["lr"] for grp in opt.param_groups] == [0.1, 0.5]
    with pytest.raises(TypeError, match="fused must be None or a bool"):
        opt.add_param_group({"params": [_pair(3)], "fused": "yes"})


def test_group_appended_twice_is_refused_by_state_dict_as_torch_refuses_it():
    (p, g), (q, h) = _pair(1), _pair(2)
    opt = optim.Adam([(p, g), (q, h)], lr=0.1)
    opt.step()
    want = opt.state_dict()
    assert sorted(k for k in want if k.startswith("state.0.")) == [
        "state.0.exp_avg", "state.0.exp_avg_sq", "state.0.step"]
    opt.param_groups.append(opt.param_groups[0])
    # before: the repeated group's two parameters were both numbered 2 and one state was lost
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.state_dict()
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.load_state_dict(want)
    t = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="more than one parameter group"):
        torch.optim.Adam([{"params": [t]}, {"params": [t]}])


def test_sgd_without_momentum_keeps_no_state_as_torch():
    ours, theirs = _both("sgd")
    ours.step()
    theirs.step()
    assert len(ours.state) == len(theirs.state) == 0
    assert not any(k.startswith("state.") for k in ours.state_dict())
    ours, theirs = _both("sgd", momentum=0.9)
    ours.step()
    theirs.step()
    assert len(ours.state) == len(theirs.state) == 1
