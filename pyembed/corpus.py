"""Built-in corpora, so that training needs no download.

``default_corpus()`` generates English-like sentences from a small probabilistic grammar over the
words of the classic examples: animals and their young (cat/kitten, dog/puppy, ...), fruit,
vehicles, people with a gender, a rank and an age (king/queen, man/woman, prince/princess, ...)
and countries with their capitals and adjectives (france/paris/french, ...). Every word's
contexts are drawn from pools tied to its attributes, and words in a known relation share a
pool of their own (king and queen share "crown"/"throne", cat and kitten share "meows"), so
the relations the demo shows are really in the data: cat's neighbours are animals, car's are
vehicles, and king - man + woman lands on queen.

``questions_words()`` and ``word_pairs()`` turn the grammar's known relations into evaluation
files in the formats of gensim's ``evaluate_word_analogies`` (Mikolov et al.'s
questions-words.txt) and ``evaluate_word_pairs`` (WordSim-353 style).

``stdlib_corpus()`` is real English: the docstrings of the Python standard library, read with
``ast`` from the source files of the running interpreter.

>>> from pyembed.corpus import default_corpus
>>> sents = default_corpus(n_sentences=1000, seed=0)
>>> len(sents), sents[0][:3]  # doctest: +SKIP
(1000, ['the', 'little', 'kitten'])
"""
import ast
import os
import re
import sysconfig

import numpy as np

from ._util import gc_paused

__all__ = ["default_corpus", "stdlib_corpus", "questions_words", "word_pairs", "CATEGORIES"]

# -- the grammar ----------------------------------------------------------------------------------

_PRON = {
    "m": {"subj": ["he"], "poss": ["his"], "obj": ["him"]},
    "f": {"subj": ["she"], "poss": ["her"], "obj": ["her"]},
}
_RANK = {
    "royal": ["palace", "court", "royal", "servants", "noble", "majesty"],
    "common": ["village", "street", "town", "market", "house", "neighbours"],
}
_AGE = {
    "adult": ["old", "wise", "grown", "tall"],
    "young": ["young", "little", "small", "tiny"],
}
# (male, female, rank, age, the pool the two share)
_PEOPLE_PAIRS = [
    ("king", "queen", "royal", "adult", ["crown", "throne", "kingdom", "reign"]),
    ("prince", "princess", "royal", "young", ["dragon", "tale", "ball", "tower"]),
    ("emperor", "empress", "royal", "adult", ["empire", "imperial", "legions", "conquest"]),
    ("duke", "duchess", "royal", "adult", ["estate", "manor", "duchy", "hunt"]),
    ("man", "woman", "common", "adult", ["work", "office", "job", "colleagues"]),
    ("boy", "girl", "common", "young", ["school", "toys", "playground", "homework"]),
    ("father", "mother", "common", "adult", ["family", "children", "home", "kitchen"]),
    ("son", "daughter", "common", "young", ["parents", "birthday", "bedroom", "treehouse"]),
    ("husband", "wife", "common", "adult", ["married", "wedding", "ring", "anniversary"]),
    ("brother", "sister", "common", "young", ["twin", "sibling", "games", "cousin"]),
]
_PEOPLE_TEMPLATES = [
    "the {age} {E} said that {subj} lived in the {rank} near the {pair}",
    "{subj} is the {E} and {poss} {pair} is in the {rank}",
    "the {E} saw {poss} {pair} at the {rank}",
    "everyone in the {rank} loved the {age} {E} and {poss} {pair}",
    "the {E} and {poss} {pair} walked to the {rank} where {subj} met the {age} {pair}",
    "people of the {rank} told the {E} that {obj} {pair} was {age}",
]

# (adult, young, sounds, things)
_ANIMAL_PAIRS = [
    ("cat", "kitten", ["meows", "purrs"], ["mouse", "whiskers", "yarn"]),
    ("dog", "puppy", ["barks", "wags"], ["bone", "leash", "stick"]),
    ("cow", "calf", ["moos", "chews"], ["milk", "grass", "barn"]),
    ("horse", "foal", ["neighs", "gallops"], ["saddle", "hay", "stable"]),
    ("sheep", "lamb", ["bleats", "grazes"], ["wool", "flock", "shepherd"]),
    ("pig", "piglet", ["oinks", "snorts"], ["mud", "trough", "sty"]),
    ("duck", "duckling", ["quacks", "paddles"], ["pond", "feathers", "bread"]),
    ("bear", "cub", ["roars", "growls"], ["honey", "cave", "salmon"]),
    ("hen", "chick", ["clucks", "pecks"], ["eggs", "coop", "seeds"]),
]
_ANIMAL_AGE = {"adult": ["old", "big", "grown", "strong"], "young": ["baby", "little", "tiny", "newborn"]}
_ANIMAL_GENERAL = {
    "anoun": ["animal", "pet", "fur", "tail", "paws", "vet"],
    "averb": ["slept", "ate", "ran", "played", "rested", "hid"],
}
# one species slot at most per sentence: the contexts animals share outweigh their own
_ANIMAL_TEMPLATES = [
    "the {age} {E} {sound} near the {anoun}",
    "a {age} {E} is an {anoun} that {averb}",
    "the farmer fed the {E} and it {sound}",
    "our {anoun} {E} {averb} with the {anoun}",
    "i saw a {age} {E} with a {thing} near the {anoun}",
    "the {E} {averb} and {averb} by the {anoun}",
    "the {age} {E} {averb} in the yard with its {anoun}",
]

# (vehicle, its own word)
_VEHICLES = [
    ("car", "seatbelt"), ("truck", "cargo"), ("bus", "passengers"), ("van", "delivery"),
    ("taxi", "fare"), ("bicycle", "pedals"), ("motorcycle", "helmet"), ("tractor", "field"),
    ("train", "rails"), ("tram", "tracks"), ("scooter", "handlebar"),
]
_VEHICLE_GENERAL = {
    "vverb": ["drove", "parked", "fixed", "washed", "rode", "stopped"],
    "vnoun": ["road", "engine", "wheels", "garage", "highway", "traffic", "fuel", "driver",
              "tires"],
    "vadj": ["fast", "slow", "new", "noisy", "electric", "broken"],
}
_VEHICLE_TEMPLATES = [
    "we {vverb} the {vadj} {E} on the {vnoun}",
    "the {E} has a {vnoun} and {spec}",
    "the {vadj} {E} stopped in the {vnoun}",
    "they {vverb} the {E} to the {vnoun} because of the {spec}",
    "a {vadj} {E} needs {vnoun} and {vnoun}",
]

_FRUIT = ["apple", "banana", "orange", "pear", "cherry", "grape", "mango", "peach", "plum",
          "lemon", "strawberry", "melon"]
_FRUIT_GENERAL = {
    "fverb": ["ate", "picked", "sliced", "peeled", "bought", "squeezed"],
    "fnoun": ["juice", "tree", "basket", "seeds", "skin", "orchard", "salad"],
    "fadj": ["ripe", "sweet", "fresh", "juicy", "sour", "delicious"],
}
_FRUIT_TEMPLATES = [
    "i {fverb} a {fadj} {E} from the {fnoun}",
    "this {E} is {fadj} and {fadj}",
    "we {fverb} the {E} for the {fnoun}",
    "the {fadj} {E} in the {fnoun} was {fadj}",
    "she {fverb} an {E} and a {F2}",
]

# (country, capital, adjective)
_COUNTRIES = [
    ("france", "paris", "french"), ("germany", "berlin", "german"), ("italy", "rome", "italian"),
    ("spain", "madrid", "spanish"), ("japan", "tokyo", "japanese"), ("china", "beijing", "chinese"),
    ("russia", "moscow", "russian"), ("egypt", "cairo", "egyptian"), ("greece", "athens", "greek"),
    ("portugal", "lisbon", "portuguese"), ("poland", "warsaw", "polish"),
    ("sweden", "stockholm", "swedish"), ("norway", "oslo", "norwegian"),
    ("austria", "vienna", "austrian"), ("canada", "ottawa", "canadian"), ("peru", "lima", "peruvian"),
]
_COUNTRY_GENERAL = {
    "cnoun": ["country", "nation", "border", "population", "government", "flag"],
    "tnoun": ["city", "capital", "mayor", "downtown", "museum", "metro"],
}
_COUNTRY_TEMPLATES = [
    "{cap} is the capital of {ctry}",
    "the {adj} {cnoun} of {ctry} is large",
    "{cap} is a beautiful {adj} {tnoun}",
    "many tourists visit the {tnoun} of {cap} in {ctry}",
    "the {adj} {cnoun} meets in {cap}",
    "{ctry} is a {cnoun} and {cap} is its {tnoun}",
    "the {adj} people of {ctry} love the {tnoun} {cap}",
]

#: category -> the words the demo and tests treat as its members
CATEGORIES = {
    "people": [w for p in _PEOPLE_PAIRS for w in p[:2]],
    "animals": [w for p in _ANIMAL_PAIRS for w in p[:2]],
    "vehicles": [v for v, _ in _VEHICLES],
    "fruit": list(_FRUIT),
    "countries": [c for c, _, _ in _COUNTRIES],
    "capitals": [c for _, c, _ in _COUNTRIES],
}


def _categories():
    """[(entities, templates, weight)]: each entity maps a template slot to its candidate words."""
    people = []
    for m, f, rank, age, pair in _PEOPLE_PAIRS:
        for word, g in ((m, "m"), (f, "f")):
            people.append(dict(E=[word], rank=_RANK[rank], age=_AGE[age], pair=pair, **_PRON[g]))
    animals = []
    for adult, young, sound, thing in _ANIMAL_PAIRS:
        for word, age in ((adult, "adult"), (young, "young")):
            animals.append(dict(E=[word], sound=sound, thing=thing, age=_ANIMAL_AGE[age],
                                **_ANIMAL_GENERAL))
    vehicles = [dict(E=[v], spec=[s], **_VEHICLE_GENERAL) for v, s in _VEHICLES]
    fruit = [dict(E=[f], F2=[g for g in _FRUIT if g != f], **_FRUIT_GENERAL) for f in _FRUIT]
    countries = [dict(ctry=[c], cap=[t], adj=[a], **_COUNTRY_GENERAL) for c, t, a in _COUNTRIES]
    # weights: sentences per entity, roughly even across words (a country entity names 3 words)
    return [
        (people, _PEOPLE_TEMPLATES, 1.0),
        (animals, _ANIMAL_TEMPLATES, 1.0),
        (vehicles, _VEHICLE_TEMPLATES, 1.0),
        (fruit, _FRUIT_TEMPLATES, 1.0),
        (countries, _COUNTRY_TEMPLATES, 2.0),
    ]


def default_corpus(n_sentences=200_000, seed=0):
    """Sentences (lists of lowercase words) from the built-in grammar, a function of the seed.

    Generation is vectorised with NumPy (no per-sentence Python work besides the final
    ``tolist``): for every template, entities and pool choices are drawn for all its sentences
    at once.
    """
    if n_sentences < 0:
        raise ValueError(f"n_sentences must be >= 0, got {n_sentences}")
    rng = np.random.default_rng(seed)
    cats = _categories()
    weights = np.array([len(ents) * w for ents, _, w in cats], dtype=float)
    per_cat = np.floor(n_sentences * weights / weights.sum()).astype(int)
    per_cat[0] += n_sentences - per_cat.sum()
    vocab, index = [], {}

    def wid(w):
        if w not in index:
            index[w] = len(vocab)
            vocab.append(w)
        return index[w]

    blocks = []  # (ids matrix (n, L)) per template
    for (ents, templates, _), n_cat in zip(cats, per_cat):
        per_tpl = np.full(len(templates), n_cat // len(templates))
        per_tpl[: n_cat % len(templates)] += 1
        for tpl, n in zip(templates, per_tpl):
            if n == 0:
                continue
            ent = rng.integers(0, len(ents), size=n)
            cols = []
            for tok in tpl.split():
                if tok.startswith("{"):
                    slot = tok[1:-1]
                    pools = [[wid(w) for w in e[slot]] for e in ents]
                    width = max(len(p) for p in pools)
                    table = np.array([p + p[:1] * (width - len(p)) for p in pools])
                    sizes = np.array([len(p) for p in pools])
                    pick = (rng.random(n) * sizes[ent]).astype(np.int64)
                    cols.append(table[ent, pick])
                else:
                    cols.append(np.full(n, wid(tok)))
            blocks.append(np.stack(cols, axis=1))
    words = np.array(vocab)

    with gc_paused():
        out = []
        for b in blocks:
            out.extend(words[b].tolist())
        order = rng.permutation(len(out))
        return list(map(out.__getitem__, order.tolist()))


# -- evaluation files from the grammar's relations ------------------------------------------------


def questions_words():
    """Analogy questions in the questions-words.txt format (``: section`` lines, then
    ``a b c d`` meaning a : b :: c : d), from the grammar's known relations."""
    sections = {
        "capital-country": [(t, c) for c, t, _ in _COUNTRIES],
        "country-adjective": [(c, a) for c, _, a in _COUNTRIES],
        "gender": [(m, f) for m, f, *_ in _PEOPLE_PAIRS],
        "animal-young": [(a, y) for a, y, *_ in _ANIMAL_PAIRS],
    }
    lines = []
    for name, pairs in sections.items():
        lines.append(f": {name}")
        for a, b in pairs:
            for c, d in pairs:
                if a != c:
                    lines.append(f"{a} {b} {c} {d}")
    return "\n".join(lines) + "\n"


def word_pairs(n_pairs=400, seed=0):
    """Human-judgement-style word pairs ``(w1, w2, score)`` with scores from the grammar:
    10 for a known relation (cat/kitten, king/queen, paris/france), 7 for two words of one
    category sharing an attribute (two royals, two young animals), 5 for one category, 1 otherwise.
    """
    attrs = {}
    for m, f, rank, age, _ in _PEOPLE_PAIRS:
        attrs[m] = ("people", {rank, age, "m"}, (m, f))
        attrs[f] = ("people", {rank, age, "f"}, (m, f))
    for a, y, *_ in _ANIMAL_PAIRS:
        attrs[a] = ("animals", {"adult"}, (a, y))
        attrs[y] = ("animals", {"young"}, (a, y))
    for v, _ in _VEHICLES:
        attrs[v] = ("vehicles", set(), (v,))
    for f in _FRUIT:
        attrs[f] = ("fruit", set(), (f,))
    for c, t, _ in _COUNTRIES:
        attrs[c] = ("places", {"country"}, (c, t))
        attrs[t] = ("places", {"capital"}, (c, t))
    words = sorted(attrs)
    rng = np.random.default_rng(seed)
    seen, out = set(), []
    # half the pairs within a category, so that every score level is well represented
    while len(out) < n_pairs:
        i = int(rng.integers(len(words)))
        w1 = words[i]
        if len(out) % 2:
            same = [w for w in words if attrs[w][0] == attrs[w1][0] and w != w1]
            w2 = same[int(rng.integers(len(same)))]
        else:
            w2 = words[int(rng.integers(len(words)))]
        key = tuple(sorted((w1, w2)))
        if w1 == w2 or key in seen:
            continue
        seen.add(key)
        c1, a1, g1 = attrs[w1]
        c2, a2, g2 = attrs[w2]
        if g1 == g2:
            score = 10.0
        elif c1 == c2 and a1 & a2:
            score = 7.0
        elif c1 == c2:
            score = 5.0
        else:
            score = 1.0
        out.append((w1, w2, score))
    return out


# -- the standard library's docstrings ------------------------------------------------------------

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_SENTENCE_END = re.compile(r"[.!?:;]\s+|\n\s*\n")


def stdlib_corpus(max_files=None, min_words=3):
    """Sentences of lowercase words from the docstrings (module, class, function) of the Python
    standard library's source files, read with ``ast`` (nothing is imported). Test suites and
    third-party packages are skipped; files that do not parse are skipped."""
    root = sysconfig.get_paths()["stdlib"]
    skip_dirs = {"test", "tests", "idlelib", "site-packages", "dist-packages", "lib2to3",
                 "__pycache__", "turtledemo", "ensurepip"}
    paths = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in skip_dirs and not d.startswith("."))
        paths.extend(os.path.join(dirpath, f) for f in sorted(filenames) if f.endswith(".py"))
    if max_files is not None:
        paths = paths[:max_files]
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    sentences = []
    for path in paths:
        try:
            with open(path, "rb") as fh:
                tree = ast.parse(fh.read())
        except (SyntaxError, ValueError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, kinds):
                doc = ast.get_docstring(node, clean=True)
                if not doc:
                    continue
                for part in _SENTENCE_END.split(doc.lower()):
                    words = _WORD.findall(part)
                    if len(words) >= min_words:
                        sentences.append(words)
    return sentences
