"""The second half of the bad-input case table (see bad_input_cases.py): Vectors, the loaders
and savers, Word2Vec, the optimizers and the plots."""
import warnings

import numpy as np

import pyembed
from pyembed import optim
from bad_input_cases import (HUGE, INF, NAN, NEW, PAST64, SIZE_ERRORS, TOO_BIG, case, ro,
                             strided)
from bad_input_world import DIM, ROWS


def pair_opt(w, g, cls=optim.Adam):
    return cls([(w, g)])


def quiet(f, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return f(*args)


def with_state(opt, **changes):
    sd = dict(opt.state_dict())
    sd.update(changes)
    opt.load_state_dict(sd)


def without(opt, key):
    sd = dict(opt.state_dict())
    del sd[key]
    opt.load_state_dict(sd)


def w2v(**kw):
    args = dict(vector_size=4, min_count=1, epochs=1, workers=1, progress=False)
    args.update(kw)
    return pyembed.Word2Vec(**args)


def vectors_cases():
    V = pyembed.Vectors
    return [
        case("Vectors keys/rows mismatch", lambda w: V(["a"], np.zeros((2, 3))), ValueError,
             "1 keys", "2 vectors"),
        case("Vectors duplicate key", lambda w: V(["a", "a"], np.zeros((2, 3))), ValueError,
             "duplicate", "'a'"),
        case("Vectors 1-D", lambda w: V(["a"], np.zeros(3)), ValueError, "vectors", "(3,)"),
        case("Vectors 3-D", lambda w: V(["a"], np.zeros((1, 1, 1))), ValueError, "vectors",
             "(1, 1, 1)"),
        case("Vectors str", lambda w: V(["a"], np.full((1, 2), "x")), TypeError, "vectors",
             "<U1"),
        case("Vectors object", lambda w: V(["a"], np.zeros((1, 2), object)), TypeError, "vectors",
             "object"),
        case("Vectors.get_vector missing", lambda w: w.kv.get_vector("nope"), KeyError, "nope"),
        case("Vectors[] missing", lambda w: w.kv["nope"], KeyError, "nope"),
        case("Vectors[] list missing", lambda w: w.kv[["w1", "nope"]], KeyError, "nope"),
        case("Vectors.get_index row 10", lambda w: w.kv.get_index(ROWS), KeyError, "10"),
        case("Vectors.most_similar missing", lambda w: w.kv.most_similar("nope"), KeyError,
             "nope"),
        case("Vectors.most_similar empty", lambda w: w.kv.most_similar([]), ValueError, "no input"),
        case("Vectors.most_similar vector size",
             lambda w: w.kv.most_similar([np.ones(5, np.float32)]), ValueError, "(5,)"),
        case("Vectors.most_similar topn str", lambda w: w.kv.most_similar("w1", topn="3"),
             TypeError, "topn"),
        case("Vectors.most_similar_batch missing",
             lambda w: w.kv.most_similar_batch(["w1", "nope"]), KeyError, "nope"),
        case("Vectors.most_similar_cosmul missing",
             lambda w: w.kv.most_similar_cosmul("nope"), KeyError, "nope"),
        case("Vectors.similar_by_vector size",
             lambda w: w.kv.similar_by_vector(np.ones(7, np.float32)), ValueError, "(7,)"),
        case("Vectors.similarity float key", lambda w: w.kv.similarity("w1", 3.5), KeyError,
             "3.5"),
        case("Vectors.most_similar_batch vector size",
             lambda w: w.kv.most_similar_batch(np.ones((2, 5))), ValueError, "(2, 5)"),
        case("Vectors.distances vector size", lambda w: w.kv.distances(np.ones(5)), ValueError,
             "(5,)"),
        case("Vectors.similarity missing", lambda w: w.kv.similarity("w1", "nope"), KeyError,
             "nope"),
        case("Vectors.n_similarity empty", lambda w: w.kv.n_similarity([], ["w1"]),
             ZeroDivisionError, "empty"),
        case("Vectors.get_mean_vector empty", lambda w: w.kv.get_mean_vector([]), ValueError,
             "no input"),
        case("Vectors.get_mean_vector weights", lambda w: w.kv.get_mean_vector(["w1"], [1, 2]),
             ValueError, "weights"),
        case("Vectors.get_mean_vector missing",
             lambda w: w.kv.get_mean_vector(["nope"], ignore_missing=False), KeyError, "nope"),
        case("Vectors.distances missing", lambda w: w.kv.distances("w1", ["nope"]), KeyError,
             "nope"),
        case("Vectors.rank_by_centrality empty", lambda w: w.kv.rank_by_centrality([]),
             ValueError, "empty"),
        case("Vectors.doesnt_match all missing", lambda w: quiet(w.kv.doesnt_match, ["x", "y"]),
             ValueError, "empty"),
        case("Vectors.get_vecattr missing attr", lambda w: w.kv.get_vecattr("w1", "nope"),
             KeyError, "nope"),
        case("Vectors.set_vecattr missing key", lambda w: w.kv.set_vecattr("nope", "count", 1),
             KeyError, "nope"),
        case("Vectors.set_vecattr PAST64", lambda w: w.kv.set_vecattr("w1", "count", PAST64),
             (TypeError, OverflowError, ValueError), "count"),
        case("Vectors.evaluate_word_analogies missing",
             lambda w: w.kv.evaluate_word_analogies(w.missing), FileNotFoundError, "missing"),
        case("Vectors.evaluate_word_pairs folder",
             lambda w: w.kv.evaluate_word_pairs(w.sub), OSError, "a_folder"),
        case("Vectors.evaluate_word_pairs bad score",
             lambda w: w.kv.evaluate_word_pairs(w.pairs), ValueError, "pairs.txt"),
        case("Vectors.save to a folder", lambda w: w.kv.save(w.sub), OSError, "a_folder"),
        case("Vectors.save format bogus", lambda w: w.kv.save(w.dir + "/o.txt", format="bogus"),
             ValueError, "format", "bogus"),
        case("Vectors.load missing", lambda w: V.load(w.missing), FileNotFoundError, "missing"),
    ]


def io_cases():
    lv, sv = pyembed.load_vectors, pyembed.save_vectors
    ls, ss = pyembed.load_safetensors, pyembed.save_safetensors
    return [
        case("load_vectors missing", lambda w: lv(w.missing), FileNotFoundError, "missing"),
        case("load_vectors folder", lambda w: lv(w.sub), OSError, "a_folder"),
        case("load_vectors empty", lambda w: lv(w.empty), ValueError, "empty.txt"),
        case("load_vectors format bogus", lambda w: lv(w.vec_txt, format="bogus"), ValueError,
             "format", "bogus"),
        case("load_vectors limit -1", lambda w: lv(w.vec_txt, limit=-1), ValueError, "limit",
             "-1"),
        case("load_vectors limit 1.5", lambda w: lv(w.vec_txt, limit=1.5), ValueError, "limit",
             "1.5"),
        case("load_vectors dtype int", lambda w: lv(w.vec_txt, dtype=np.int32), ValueError,
             "dtype", "int32"),
        case("load_vectors unicode_errors bogus",
             lambda w: lv(w.vec_txt, unicode_errors="bogus"), (ValueError, LookupError),
             "bogus"),
        case("load_vectors encoding bogus", lambda w: lv(w.vec_txt, encoding="bogus"),
             (ValueError, LookupError), "bogus"),
        case("load_vectors fvocab missing", lambda w: lv(w.vec_txt, fvocab=w.missing),
             FileNotFoundError, "missing"),
        case("load_vectors binary str", lambda w: lv(w.vec_txt, binary="no"), TypeError,
             "binary"),
        case("load_vectors path None", lambda w: lv(None), TypeError, "path"),
        case("load_vectors glove binary", lambda w: lv(w.vec_txt, format="glove", binary=True),
             ValueError, "binary"),
        case("load_vectors huge header", lambda w: lv(w.huge_header, binary=False), ValueError,
             "huge_header.txt", "line"),
        case("load_vectors huge glove", lambda w: lv(w.huge_glove, format="glove"), ValueError,
             "huge_glove.txt", "line"),
        case("load_vectors bad header", lambda w: lv(w.bad_header, format="word2vec"), ValueError,
             "bad_header.txt", "line 1"),
        case("load_vectors short row", lambda w: lv(w.short_row), ValueError, "short_row.txt",
             "3"),
        case("load_vectors truncated binary", lambda w: lv(w.truncated, binary=True), ValueError,
             "truncated.bin"),
        case("save_vectors not Vectors", lambda w: sv(np.zeros((2, 2)), w.dir + "/o.txt"),
             TypeError, "vectors", "ndarray"),
        case("save_vectors format bogus", lambda w: sv(w.kv, w.dir + "/o.txt", format="bogus"),
             ValueError, "format", "bogus"),
        case("save_vectors binary glove",
             lambda w: sv(w.kv, w.dir + "/o.txt", format="glove", binary=True), ValueError,
             "binary"),
        case("save_vectors to a folder", lambda w: sv(w.kv, w.sub), OSError, "a_folder"),
        case("save_vectors into a missing folder", lambda w: sv(w.kv, w.missing), OSError,
             "missing"),
        case("save_vectors fvocab to a folder",
             lambda w: sv(w.kv, w.dir + "/o.txt", fvocab=w.sub), OSError, "a_folder"),
        case("save_vectors fvocab missing attr",
             lambda w: sv(pyembed.Vectors(["a"], np.ones((1, 2))), w.dir + "/o.txt",
                          fvocab=w.dir + "/c.txt"), ValueError, "fvocab"),
        case("load_safetensors missing", lambda w: ls(w.missing), FileNotFoundError, "missing"),
        case("load_safetensors folder", lambda w: ls(w.sub), OSError, "a_folder"),
        case("load_safetensors empty", lambda w: ls(w.empty), ValueError, "empty.txt"),
        case("load_safetensors garbage", lambda w: ls(w.garbage), ValueError,
             "garbage.safetensors"),
        case("load_safetensors name missing", lambda w: ls(w.st, name="nope"), KeyError, "nope"),
        case("load_safetensors dtype bogus", lambda w: ls(w.st, dtype="bogus"), TypeError,
             "bogus"),
        case("save_safetensors empty", lambda w: ss(w.dir + "/o.st", {}), ValueError, "tensors"),
        case("save_safetensors not a dict", lambda w: ss(w.dir + "/o.st", [np.zeros(2)]),
             ValueError, "tensors"),
        case("save_safetensors name int", lambda w: ss(w.dir + "/o.st", {1: np.zeros(2)}),
             ValueError, "1"),
        case("save_safetensors object", lambda w: ss(w.dir + "/o.st",
                                                     {"a": np.zeros(2, object)}),
             ValueError, "'a'", "object"),
        case("save_safetensors complex", lambda w: ss(w.dir + "/o.st", {"a": np.zeros(2, complex)}),
             ValueError, "'a'", "complex128"),
        case("save_safetensors metadata", lambda w: ss(w.dir + "/o.st", {"a": np.zeros(2)},
                                                       metadata={"k": 1}),
             ValueError, "metadata"),
        case("save_safetensors to a folder", lambda w: ss(w.sub, {"a": np.zeros(2)}), OSError,
             "a_folder"),
    ]


def word2vec_cases():
    sents = [["a", "b", "c"]] * 5
    out = []
    for arg in ("vector_size", "window", "negative", "min_count", "epochs", "batch_words"):
        out += [
            case(f"Word2Vec({arg}=0)", lambda w, a=arg: w2v(**{a: 0}), ValueError, arg, "0"),
            case(f"Word2Vec({arg}=1.5)", lambda w, a=arg: w2v(**{a: 1.5}), TypeError, arg),
            case(f"Word2Vec({arg}=True)", lambda w, a=arg: w2v(**{a: True}), TypeError, arg),
        ]
    for arg in ("sample", "alpha", "min_alpha"):
        for v in (-1.0, NAN, INF, "a"):
            out.append(case(f"Word2Vec({arg}={v})", lambda w, a=arg, v=v: w2v(**{a: v}),
                            ValueError, arg, str(v)))
    out += [
        case("Word2Vec(negative=65)", lambda w: w2v(negative=65), ValueError, "negative", "65"),
        case("Word2Vec(vector_size HUGE)", lambda w: w2v(sentences=sents, vector_size=HUGE),
             SIZE_ERRORS, "vector_size", xfail=TOO_BIG.format("vector_size")),
        case("Word2Vec(window HUGE)", lambda w: w2v(sentences=sents, window=2 ** 40),
             (ValueError, OverflowError), "window", str(2 ** 40)),
        case("Word2Vec(ns_exponent=nan)", lambda w: w2v(ns_exponent=NAN), ValueError,
             "ns_exponent", "nan"),
        case("Word2Vec(ns_exponent=inf)", lambda w: w2v(ns_exponent=INF), ValueError,
             "ns_exponent", "inf"),
        case("Word2Vec.build_vocab ns_exponent nan",
             lambda w: w.w2v_nan.build_vocab([["x", "y", "z"]] * 5), ValueError,
             "ns_exponent"),
        case("Word2Vec(seed -1)", lambda w: w2v(seed=-1), ValueError, "seed", "-1"),
        case("Word2Vec(workers 0)", lambda w: w2v(workers=0), ValueError, "workers", "0"),
        case("Word2Vec(workers 1.5)", lambda w: w2v(workers=1.5), TypeError, "workers"),
        case("Word2Vec(workers/threads)", lambda w: w2v(workers=None, threads=2) and
             w2v(workers=1, threads=2), ValueError, "workers", "threads"),
        case("Word2Vec(progress bogus)", lambda w: w2v(progress="bogus"), ValueError, "progress",
             "bogus"),
        case("Word2Vec(sg=0)", lambda w: w2v(sg=0), NotImplementedError, "sg"),
        case("Word2Vec(hs=1)", lambda w: w2v(hs=1), NotImplementedError, "hs"),
        case("Word2Vec(str)", lambda w: w2v(sentences="a b c"), TypeError, "sentences"),
        case("Word2Vec(sentences and corpus_file)",
             lambda w: w2v(sentences=sents, corpus_file=w.vec_txt), ValueError, "corpus_file"),
        case("Word2Vec(corpus_file missing)", lambda w: w2v(corpus_file=w.missing),
             FileNotFoundError, "missing"),
        case("Word2Vec(corpus_file folder)", lambda w: w2v(corpus_file=w.sub), OSError,
             "a_folder"),
        case("Word2Vec.build_vocab all rare", lambda w: w2v(min_count=5).build_vocab([["rare"]]),
             ValueError, "min_count=5"),
        case("Word2Vec.build_vocab str", lambda w: w.w2v.build_vocab("a b"), TypeError,
             "sentences"),
        case("Word2Vec.train before build_vocab", lambda w: w2v().train(), RuntimeError,
             "build_vocab"),
        case("Word2Vec.wv before build_vocab", lambda w: w2v().wv, RuntimeError, "build_vocab"),
        case("Word2Vec.train epochs str", lambda w: w.w2v.train(epochs="a"), (TypeError,
                                                                             ValueError),
             "epochs"),
        case("Word2Vec.train epochs -1", lambda w: w.w2v.train(epochs=-1), ValueError, "epochs",
             "-1"),
        case("Word2Vec.save to a folder", lambda w: w.w2v.save(w.sub), OSError, "a_folder"),
    ]
    return out


def optim_cases():
    A, W, S, G = optim.Adam, optim.AdamW, optim.SparseAdam, optim.SGD
    out = []
    for cls in (A, W):
        n = cls.__name__
        out += [
            case(f"{n}(lr -1)", lambda w, c=cls: c(w.e1, lr=-1), ValueError, "learning rate", "-1"),
            case(f"{n}(lr nan)", lambda w, c=cls: c(w.e1, lr=NAN), ValueError, "learning rate",
                 "nan"),
            case(f"{n}(lr str)", lambda w, c=cls: c(w.e1, lr="a"), TypeError, "lr", "str"),
            case(f"{n}(lr True)", lambda w, c=cls: c(w.e1, lr=True), TypeError, "lr", "bool"),
            case(f"{n}(lr None)", lambda w, c=cls: c(w.e1, lr=None), TypeError, "lr"),
            case(f"{n}(eps -1)", lambda w, c=cls: c(w.e1, eps=-1), ValueError, "epsilon", "-1"),
            case(f"{n}(eps nan)", lambda w, c=cls: c(w.e1, eps=NAN), ValueError, "epsilon",
                 "nan"),
            case(f"{n}(betas 1)", lambda w, c=cls: c(w.e1, betas=(1.0, 0.9)), ValueError,
                 "beta", "index 0", "1.0"),
            case(f"{n}(betas nan)", lambda w, c=cls: c(w.e1, betas=(0.9, NAN)), ValueError,
                 "beta", "index 1", "nan"),
            case(f"{n}(betas one)", lambda w, c=cls: c(w.e1, betas=(0.9,)), ValueError, "betas"),
            case(f"{n}(betas str)", lambda w, c=cls: c(w.e1, betas="ab"), (TypeError, ValueError),
                 "betas"),
            case(f"{n}(weight_decay -1)", lambda w, c=cls: c(w.e1, weight_decay=-1), ValueError,
                 "weight_decay", "-1"),
            case(f"{n}(weight_decay inf)", lambda w, c=cls: c(w.e1, weight_decay=INF),
                 ValueError, "weight_decay", "inf"),
            case(f"{n}(per_row_step w/o lazy)", lambda w, c=cls: c(w.e1, per_row_step=True),
                 ValueError, "per_row_step", "lazy"),
        ]
    out += [
        case("Adam([])", lambda w: A([]), ValueError, "empty"),
        case("Adam(ndarray)", lambda w: A(np.zeros(3)), TypeError, "array"),
        case("Adam(str)", lambda w: A("emb"), TypeError, "str"),
        case("Adam(5)", lambda w: A(5), TypeError, "int"),
        case("Adam(None)", lambda w: A(None), TypeError, "NoneType"),
        case("Adam(pair int)", lambda w: pair_opt(np.zeros(3, int), np.zeros(3, int)), ValueError,
             "float32", "int64"),
        case("Adam(pair strided)", lambda w: pair_opt(strided((4,)), np.zeros(4, np.float32)),
             ValueError, "contiguous"),
        case("Adam(pair read-only)", lambda w: pair_opt(ro(3), np.zeros(3, np.float32)),
             ValueError, "writeable"),
        case("Adam(pair shapes)", lambda w: pair_opt(np.zeros(3, np.float32),
                                                     np.zeros(4, np.float32)),
             ValueError, "(4,)", "(3,)"),
        case("Adam(pair shared)", lambda w: pair_opt(w.pw, w.pw), ValueError, "share"),
        case("Adam(duplicate)", lambda w: A([w.e1, w.e1]), ValueError, "more than once"),
        case("Adam(mixed dicts)", lambda w: A([{"params": [w.e1]}, w.e2]), TypeError, "dicts"),
        case("Adam(unknown option)", lambda w: A([{"params": [w.e1], "momentum": 0.9}]),
             TypeError, "momentum"),
        case("Adam.add_param_group not dict", lambda w: w.adam2.add_param_group([w.e3]),
             TypeError, "param_group", "list"),
        case("Adam.add_param_group no params", lambda w: w.adam2.add_param_group({"lr": 0.1}),
             ValueError, "params"),
        case("Adam.add_param_group duplicate",
             lambda w: w.adam2.add_param_group({"params": [w.e1]}), ValueError, "more than once"),
        case("Adam.add_param_group lr nan",
             lambda w: w.adam2.add_param_group({"params": [w.e3], "lr": NAN}), ValueError,
             "learning rate", "nan"),
        case("Adam.step lr nan (group 0)", lambda w: w.adam_nan0.step(), ValueError,
             "learning rate", "nan"),
        case("Adam.step lr nan (group 1)", lambda w: w.adam_nan1.step(), ValueError,
             "learning rate", "nan"),
        case("Adam.step per_row_step changed (group 1)", lambda w: w.adam_prs.step(), ValueError,
             "per_row_step"),
        case("SGD.step momentum nan", lambda w: w.sgd_nan.step(), ValueError, "momentum", "nan"),
        case("Adam.load_state_dict group count",
             lambda w: w.adam2.load_state_dict(w.adam.state_dict()), ValueError, "2", "1"),
        case("Adam.load_state_dict param count",
             lambda w: w.adam.load_state_dict(A([w.e1, w.e2]).state_dict()), ValueError,
             "parameters"),
        case("Adam.load_state_dict state shape",
             lambda w: with_state(w.adam, **{"state.0.exp_avg": np.zeros((2, 2), np.float32)}),
             ValueError, "state.0.exp_avg", "(2, 2)", "(10, 4)"),
        case("Adam.load_state_dict step negative",
             lambda w: with_state(w.adam, **{"state.0.step": np.array(-1)}), ValueError,
             "step", "-1"),
        case("Adam.load_state_dict step float",
             lambda w: with_state(w.adam, **{"state.0.step": np.array(1.5)}), ValueError,
             "step", "1.5"),
        case("Adam.load_state_dict step past int64",
             lambda w: with_state(w.adam, **{"state.0.step": np.array(2 ** 70)}),
             (ValueError, OverflowError), "step"),
        case("Adam.load_state_dict other optimizer",
             lambda w: w.sgd.load_state_dict(w.adam.state_dict()), ValueError, "Adam", "SGD"),
        case("Adam.load_state_dict unknown index",
             lambda w: with_state(w.adam, **{"state.5.step": np.array(1)}), ValueError, "5"),
        case("Adam.load_state_dict params float",
             lambda w: with_state(w.adam, **{"param_groups.0.params": np.array([0.0])}),
             (ValueError, TypeError), "param_groups.0.params"),
        case("Adam.load_state_dict step str",
             lambda w: with_state(w.adam, **{"state.0.step": np.array("3")}),
             (ValueError, TypeError),
             "step"),
        case("Adam.load_state_dict amsgrad str",
             lambda w: with_state(w.adam, **{"param_groups.0.amsgrad": np.array("no")}),
             (ValueError, TypeError), "amsgrad"),
        case("Adam.load_state_dict exp_avg str",
             lambda w: with_state(w.adam, **{"state.0.exp_avg": np.full((ROWS, DIM), "a")}),
             (ValueError, TypeError), "state.0.exp_avg"),
        case("Adam.load_state_dict lr nan",
             lambda w: with_state(w.adam, **{"param_groups.0.lr": np.array(NAN)}), ValueError,
             "learning rate", "nan"),
        case("Adam.load_state_dict no params key",
             lambda w: without(w.adam, "param_groups.0.params"), (ValueError, KeyError),
             "parameter groups"),
        case("Adam.load_state_dict not a mapping", lambda w: w.adam.load_state_dict([1, 2]),
             (TypeError, ValueError), "state_dict"),
        case("SparseAdam(lr 0)", lambda w: S(w.e1, lr=0), ValueError, "learning rate", "0"),
        case("SparseAdam(eps 0)", lambda w: S(w.e1, eps=0), ValueError, "epsilon", "0"),
        case("SparseAdam(lr nan)", lambda w: S(w.e1, lr=NAN), ValueError, "learning rate", "nan"),
        case("SGD(lr -1)", lambda w: G(w.e1, lr=-1), ValueError, "learning rate", "-1"),
        case("SGD(lr nan)", lambda w: G(w.e1, lr=NAN), ValueError, "learning rate", "nan"),
        case("SGD(momentum -1)", lambda w: G(w.e1, momentum=-1), ValueError, "momentum", "-1"),
        case("SGD(momentum nan)", lambda w: G(w.e1, momentum=NAN), ValueError, "momentum",
             "nan"),
        case("SGD(dampening inf)", lambda w: G(w.e1, dampening=INF), ValueError, "dampening",
             "inf"),
        case("SGD(weight_decay nan)", lambda w: G(w.e1, weight_decay=NAN), ValueError,
             "weight_decay", "nan"),
        case("SGD(nesterov w/o momentum)", lambda w: G(w.e1, nesterov=True), ValueError,
             "Nesterov"),
        case("SGD(lr str)", lambda w: G(w.e1, lr="a"), TypeError, "lr"),
        case("clip_grad_norm_ max_norm str", lambda w: optim.clip_grad_norm_(w.e1, "a"),
             TypeError, "max_norm"),
        case("clip_grad_norm_ norm_type 0", lambda w: optim.clip_grad_norm_(w.e1, 1.0, 0),
             ValueError, "norm_type", "0"),
        case("clip_grad_norm_ norm_type nan", lambda w: optim.clip_grad_norm_(w.e1, 1.0, NAN),
             ValueError, "norm_type", "nan"),
        case("clip_grad_norm_ max_norm nan", lambda w: optim.clip_grad_norm_(w.e1, NAN),
             ValueError, "max_norm", "nan"),
        case("clip_grad_norm_ max_norm -1", lambda w: optim.clip_grad_norm_(w.e1, -1.0),
             ValueError, "max_norm", "-1"),
        case("clip_grad_norm_ params str", lambda w: optim.clip_grad_norm_("e1", 1.0), TypeError,
             "str"),
        case("clip_grad_norm_ nonfinite",
             lambda w: optim.clip_grad_norm_([w.e1, w.enan], 1.0, error_if_nonfinite=True),
             RuntimeError, "non-finite"),
    ]
    return out


def plot_cases():
    p = pyembed.plot
    return [
        case("pca_2d 1-D", lambda w: p.pca_2d(np.zeros(3)), ValueError, "(3,)"),
        case("pca_2d 3-D", lambda w: p.pca_2d(np.zeros((1, 2, 3))), ValueError, "(1, 2, 3)"),
        case("pca_2d str", lambda w: p.pca_2d(np.full((2, 2), "a")), (TypeError, ValueError),
             "x"),
        case("plot_heatmap 1-D", lambda w: p.plot_heatmap(np.zeros(3)), ValueError, "table",
             "(3,)"),
        case("plot_heatmap complex", lambda w: p.plot_heatmap(np.ones((2, 2), complex)),
             (TypeError, ValueError), "table", "complex128"),
        case("plot_heatmap vmin nan", lambda w: p.plot_heatmap(np.ones((2, 2)), vmin=NAN),
             ValueError, "vmin", "nan"),
        case("plot_heatmap cmap bogus", lambda w: p.plot_heatmap(np.ones((2, 2)), cmap="bogus"),
             ValueError, "cmap", "bogus"),
        case("plot_heatmap path is a folder", lambda w: p.plot_heatmap(np.ones((2, 2)),
                                                                       path=w.sub),
             OSError, "a_folder"),
        case("plot_2d method", lambda w: p.plot_2d(w.kv, method="tsne"), ValueError, "method",
             "tsne"),
        case("plot_2d 1-D", lambda w: p.plot_2d(np.zeros(3)), ValueError, "vectors", "(3,)"),
        case("plot_2d words count", lambda w: p.plot_2d(np.zeros((3, 2)), words=["a"]),
             ValueError, "1 words", "3 vectors"),
        case("plot_2d missing word", lambda w: p.plot_2d(w.kv, words=["nope"]), KeyError, "nope"),
        case("plot_2d path is a folder", lambda w: p.plot_2d(w.kv, words=["w1", "w2"],
                                                             path=w.sub),
             OSError, "a_folder"),
    ]
