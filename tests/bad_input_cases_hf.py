"""Bad-input cases (tests/test_bad_input.py) for the BERT-style input stage: segment
(token-type) ids, LayerNorm's options, the tied head and InputEmbedding.from_pretrained."""
import math

import numpy as np

import pyembed
from bad_input_cases import case
from bad_input_world import DIM, ROWS, ones

NAN = math.nan


def half_stage(segment_dtype=np.float16):
    """A float16 BERT-style stage, its segment table replaced by one of `segment_dtype`."""
    inp = pyembed.InputEmbedding(ROWS, DIM, max_len=8, positional="learned", num_segments=2,
                                 norm="layernorm", dtype=np.float16, seed=16)
    if segment_dtype != np.float16:
        inp.segment = pyembed.Embedding(2, DIM, dtype=segment_dtype, seed=17)
    return inp


def hf_cases():
    I = pyembed.InputEmbedding
    fp = I.from_pretrained
    return [
        case("InputEmbedding(num_segments 0)", lambda w: I(ROWS, DIM, num_segments=0), ValueError,
             "num_segments", "0"),
        case("InputEmbedding(num_segments 1.5)", lambda w: I(ROWS, DIM, num_segments=1.5),
             TypeError, "num_segments"),
        case("InputEmbedding(norm bogus)", lambda w: I(ROWS, DIM, norm="rmsnorm"), ValueError,
             "norm", "rmsnorm"),
        case("InputEmbedding(eps -1)", lambda w: I(ROWS, DIM, norm="layernorm", eps=-1.0),
             ValueError, "eps", "-1.0"),
        case("InputEmbedding(eps nan)", lambda w: I(ROWS, DIM, norm="layernorm", eps=NAN),
             ValueError, "eps", "nan"),
        case("InputEmbedding(eps str)", lambda w: I(ROWS, DIM, norm="layernorm", eps="1e-5"),
             TypeError, "eps"),
        case("InputEmbedding segment_ids without a segment table",
             lambda w: w.inp([1], segment_ids=[0]), ValueError, "segment_ids", "num_segments"),
        case("InputEmbedding segment_ids shape", lambda w: w.inpb([[1, 2]], segment_ids=[0, 1]),
             ValueError, "segment_ids", "(2,)", "(1, 2)"),
        case("InputEmbedding segment_ids 2 of 2", lambda w: w.inpb([[1, 2]], segment_ids=[[0, 2]]),
             IndexError, "segment_ids", "2"),
        case("InputEmbedding segment_ids -1", lambda w: w.inpb([[1, 2]], segment_ids=[[-1, 0]]),
             IndexError, "segment_ids", "-1"),
        case("InputEmbedding segment_ids float",
             lambda w: w.inpb([[1, 2]], segment_ids=np.zeros((1, 2))), TypeError, "segment_ids",
             "float64"),
        case("InputEmbedding(layernorm) id out of range", lambda w: w.inpb([[1, ROWS]]),
             IndexError, str(ROWS)),
        case("InputEmbedding(layernorm) out dtype",
             lambda w: w.inpb([1, 2], out=np.zeros((2, DIM))), ValueError, "out", "float64"),
        case("InputEmbedding(float16, layernorm) out float16",
             lambda w: half_stage()([1, 2], out=np.zeros((2, DIM), np.float16)), ValueError,
             "out", "float16", "float32"),
        case("InputEmbedding(float16) float32 segment table",
             lambda w: half_stage(np.float32)([1, 2]), ValueError, "segment table", "float32",
             "float16"),
        case("InputEmbedding.backward(float16) float32 segment table",
             lambda w: half_stage(np.float32).backward([1, 2], ones(2, DIM)), ValueError,
             "segment table", "float32", "float16"),
        case("InputEmbedding.backward segment_ids 5 of 2",
             lambda w: w.inpb.backward([[1, 2]], ones(1, 2, DIM), segment_ids=[[0, 5]]),
             IndexError, "segment_ids", "5"),
        case("InputEmbedding.backward segment_ids without a segment table",
             lambda w: w.inpl.backward([1], ones(1, DIM), segment_ids=[0]), ValueError,
             "segment_ids"),
        case("InputEmbedding.backward(layernorm) grad shape",
             lambda w: w.inpb.backward([[1, 2]], ones(1, 3, DIM)), ValueError, "grad_output",
             "(1, 3, 4)", "(1, 2, 4)"),
        case("InputEmbedding.backward(layernorm) id out of range",
             lambda w: w.inpb.backward([[1, 99]], ones(1, 2, DIM)), IndexError, "99"),
        case("InputEmbedding positions with start", lambda w: w.inpl([1, 2], 0, positions=[0, 1]),
             ValueError, "start", "positions"),
        case("InputEmbedding positions 8 of max_len 8",
             lambda w: w.inpb([[1, 2]], positions=[[0, 8]]), IndexError, "positions", "8",
             "max_len"),
        case("InputEmbedding positions -1", lambda w: w.inp([1, 2], positions=[-1, 0]),
             IndexError, "positions", "-1"),
        case("InputEmbedding positions shape", lambda w: w.inpb([[1, 2]], positions=[0, 1, 2]),
             ValueError, "positions", "(3,)", "(1, 2)"),
        case("InputEmbedding positions float", lambda w: w.inpl([1, 2], positions=[0.0, 1.0]),
             TypeError, "positions", "float64"),
        case("InputEmbedding positions without a position term",
             lambda w: pyembed.InputEmbedding(ROWS, DIM, positional=None)([1], positions=[0]),
             ValueError, "positions", "positional"),
        case("InputEmbedding.backward positions 9 of max_len 8",
             lambda w: w.inpl.backward([[1, 2]], ones(1, 2, DIM), positions=[0, 9]), IndexError,
             "positions", "9"),
        case("InputEmbedding.backward positions with start",
             lambda w: w.inpb.backward([[1, 2]], ones(1, 2, DIM), 1, positions=[[0, 1]]),
             ValueError, "start", "positions"),
        case("InputEmbedding.backward(float16) positions shape",
             lambda w: half_stage().backward([[1, 2]], ones(1, 2, DIM), positions=[[0], [1]]),
             ValueError, "positions", "(2, 1)"),
        case("InputEmbedding.attend h width", lambda w: w.inpb.attend(ones(2, DIM + 1)),
             ValueError, "h", f"(2, {DIM + 1})"),
        case("InputEmbedding.attend_backward grad shape",
             lambda w: w.inpb.attend_backward(ones(2, DIM), ones(2, ROWS + 1)), ValueError,
             "grad_logits", f"(2, {ROWS + 1})"),
        case("InputEmbedding.from_pretrained missing folder", lambda w: fp(w.missing),
             FileNotFoundError, "folder"),
        case("InputEmbedding.from_pretrained model_type t5", lambda w: fp(w.hf_t5), ValueError,
             "model_type", "'t5'"),
        case("InputEmbedding.from_pretrained missing tensor", lambda w: fp(w.hf_no_types),
             KeyError, "bert.embeddings.token_type_embeddings.weight"),
        case("InputEmbedding.from_pretrained no config.json", lambda w: fp(w.hf_no_config),
             FileNotFoundError, "config.json"),
        case("InputEmbedding.from_pretrained bad JSON", lambda w: fp(w.hf_bad_json), ValueError,
             "config.json", "JSON"),
        case("InputEmbedding.from_pretrained dtype int", lambda w: fp(w.hf_t5, dtype=np.int32),
             ValueError, "dtype"),
    ]
