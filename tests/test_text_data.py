"""Text data: He et al.'s synthetic sentences, the Vocabulary, fortunes/Yahoo/Yelp readers on small files written
here (and the real fortunes when installed), and every bad-input error."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from identkit import data
from identkit.data import text
from identkit.data.text import SPECIAL_TOKENS, TextData, Vocabulary

SMALL = dict(n_train=300, n_valid=60, n_test=40)


def plugin_mi(x: np.ndarray, c: np.ndarray) -> float:
    """Plug-in mutual information (nats) between two discrete samples."""
    joint = np.zeros((c.max() + 1, x.max() + 1))
    np.add.at(joint, (c, x), 1.0)
    joint /= joint.sum()
    outer = joint.sum(1, keepdims=True) @ joint.sum(0, keepdims=True)
    nz = joint > 0
    return float((joint[nz] * np.log(joint[nz] / outer[nz])).sum())


@pytest.fixture(scope="module")
def synthetic():
    """The default synthetic splits, generated once for the module (held here, whatever the caches do)."""
    return {s: data.synthetic_text(s) for s in text.TEXT_SPLITS}


# ------------------------------------------------------------------------------------------------ synthetic
def test_synthetic_shapes_sizes_and_conventions(synthetic):
    for split, n in text.SYNTHETIC_SIZES.items():
        d = synthetic[split]
        assert isinstance(d, TextData) and d.name == "synthetic" and d.split == split
        assert d.ids.shape == (n, 12) and d.ids.dtype == torch.long and len(d) == n
        assert torch.equal(d.lengths, torch.full((n,), 12))
        assert (d.ids[:, 0] == 1).all() and (d.ids[:, -1] == 2).all() and (d.ids[:, 1:-1] >= 4).all()
        assert d.z.shape == (n, 2) and d.z.dtype == torch.float32
        assert d.labels.shape == (n,) and set(d.labels.unique().tolist()) == {0, 1, 2, 3}
        assert len(d.vocab) == 1004 and d.vocab.tokens[:4] == SPECIAL_TOKENS and d.vocab["999"] == 1003
        assert d.vocab == synthetic["train"].vocab
        assert len(d.tokens(0)) == 10
    assert len(data.synthetic_text("valid", n=7)) == 7


def test_synthetic_latent_is_the_four_component_mixture(synthetic):
    d = synthetic["train"]
    z, c = d.z.numpy().astype(np.float64), d.labels.numpy()
    n = len(c)
    counts = np.bincount(c, minlength=4)
    assert np.all(np.abs(counts - n / 4) < 5 * np.sqrt(n * 3 / 16))  # Binomial(n, 1/4), 5 s.d.
    for k, mean in enumerate(text.SYNTHETIC_MEANS):
        zk = z[c == k]
        nk = len(zk)
        assert np.all(np.abs(zk.mean(0) - mean) < 5 / np.sqrt(nk))  # unit variance: s.e. of the mean 1/√n
        assert np.all(np.abs(zk.var(0) - 1.0) < 5 * np.sqrt(2 / nk))  # s.e. of a Gaussian variance √(2/n)
        assert abs(np.corrcoef(zk.T)[0, 1]) < 5 / np.sqrt(nk)  # identity covariance


def test_synthetic_sentences_depend_on_z(synthetic):
    d = synthetic["train"]
    words, c, z = d.ids[:, 1:-1].numpy() - 4, d.labels.numpy(), d.z.numpy()
    shuffled = np.random.default_rng(0).permutation(c)
    bias = 3 * 999 / (2 * len(c))  # plug-in MI bias for independent variables, (K−1)(V−1)/(2N)
    # The first word is uniform and independent of z (the reference's start token): only the bias is left.
    assert plugin_mi(words[:, 0], c) < 1.6 * bias
    # Every later word carries most of the log 4 nats that the component can give.
    for t in range(1, 10):
        mi = plugin_mi(words[:, t], c)
        assert mi > 1.0 > 10 * plugin_mi(words[:, t], shuffled), (t, mi)
    # Not only the component: within a component the words also depend on where z lies.
    for k, mean in enumerate(text.SYNTHETIC_MEANS):
        sel = c == k
        side = (z[sel, 0] > mean[0]).astype(int)
        mi = plugin_mi(words[sel, 1], side)
        assert mi > 0.08 and mi > 2.5 * plugin_mi(words[sel, 1], np.random.default_rng(k).permutation(side))


def test_synthetic_is_deterministic_and_seeded():
    text._synthetic_cached.cache_clear()
    a = data.synthetic_text("train", seed=5, **SMALL)
    text._synthetic_cached.cache_clear()
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        b = data.synthetic_text("train", seed=5, **SMALL)  # a fresh generation, other thread count
    finally:
        torch.set_num_threads(threads)
    assert torch.get_num_threads() == threads
    assert torch.equal(a.ids, b.ids) and torch.equal(a.z, b.z) and torch.equal(a.labels, b.labels)
    other = data.synthetic_text("train", seed=6, **SMALL)
    assert not torch.equal(a.ids, other.ids) and not torch.equal(a.z, other.z)
    # Splits come from their own streams: another validation size leaves train alone; splits differ.
    c = data.synthetic_text("train", seed=5, n_train=300, n_valid=10, n_test=40)
    assert torch.equal(a.ids, c.ids)
    v = data.synthetic_text("valid", seed=5, **SMALL)
    assert not torch.equal(a.ids[:60], v.ids)
    assert a.metadata["settings"]["seed"] == 5 and a.metadata["first_word"].startswith("uniform")


def test_synthetic_weight_scale_controls_dependence_on_z():
    weak = data.synthetic_text("train", seed=1, n_train=2000, n_valid=10, n_test=10, z_weight_scale=0.01)
    strong = data.synthetic_text("train", seed=1, n_train=2000, n_valid=10, n_test=10)
    c = weak.labels.numpy()
    assert torch.equal(weak.labels, strong.labels) and torch.equal(weak.z, strong.z)  # same latents
    shuffled = np.random.default_rng(0).permutation(c)

    def excess_mi(d):  # plug-in MI above its value with shuffled components, mean over the z-dependent words
        w = d.ids[:, 2:-1].numpy() - 4
        return np.mean([plugin_mi(w[:, t], c) - plugin_mi(w[:, t], shuffled) for t in range(w.shape[1])])

    assert excess_mi(strong) > excess_mi(weak) + 0.5


def test_synthetic_disk_cache(tmp_path):
    text._synthetic_cached.cache_clear()
    a = data.synthetic_text("test", seed=3, cache_dir=tmp_path, **SMALL)
    files = list(tmp_path.glob("synthetic_text-*.npz"))
    assert len(files) == 1 and a.metadata["cache"] == "generated"
    text._synthetic_cached.cache_clear()
    b = data.synthetic_text("test", seed=3, cache_dir=tmp_path, **SMALL)
    assert b.metadata["cache"].startswith("disk cache") and torch.equal(a.ids, b.ids) and torch.equal(a.z, b.z)
    files[0].write_bytes(b"not an npz")  # a broken cache is regenerated
    text._synthetic_cached.cache_clear()
    c = data.synthetic_text("test", seed=3, cache_dir=tmp_path, **SMALL)
    assert c.metadata["cache"] == "generated" and torch.equal(a.ids, c.ids)


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_train=0), "n_train"), (dict(n_valid=-1), "n_valid"), (dict(length=1), "length"),
    (dict(vocab_size=0), "vocab_size"), (dict(hidden=0), "hidden"), (dict(z_weight_scale=0.0), "z_weight_scale"),
    (dict(seed=-1), "seed"), (dict(n=0), "n must"), (dict(n=61), "n must be <="),
])
def test_synthetic_bad_arguments(kwargs, match):
    args = dict(SMALL, **kwargs)
    with pytest.raises(ValueError, match=match):
        data.synthetic_text("valid", **args)


# ----------------------------------------------------------------------------------------------- vocabulary
def test_vocabulary_build_cap_min_count_and_unk():
    docs = [["b", "a", "c", "a"], ["a", "b", "d", "<unk>"], ["e"]]
    v = Vocabulary.build(docs)
    assert v.tokens == SPECIAL_TOKENS + ("a", "b", "c", "d", "e")  # by count, ties alphabetical
    assert Vocabulary.build(docs, order="first").words == ("b", "a", "c", "d", "e")
    assert Vocabulary.build(docs, min_count=2).words == ("a", "b")
    capped = Vocabulary.build(docs, max_size=5)
    assert len(capped) == 5 and capped.words == ("a",)
    assert capped.encode(["a", "b", "zzz"]) == [4, 3, 3] and capped["never-seen"] == capped.unk_id == 3
    assert capped.encode(["a"], add_markers=True) == [1, 4, 2]
    assert "<unk>" not in v.words and "a" in v and "zzz" not in v


def test_vocabulary_round_trips():
    v = Vocabulary(["hello", "world", "!"])
    ids = v.encode(["hello", "!", "world"])
    assert v.decode(ids) == ["hello", "!", "world"] and v.encode(v.decode(ids)) == ids
    assert v.decode(torch.tensor([1, 4, 0]), skip_specials=True) == ["hello"]
    assert v.decode(np.array([3])) == ["<unk>"] and v.token(5) == "world"
    restored = Vocabulary.from_dict(json.loads(json.dumps(v.to_dict())))
    assert restored == v and hash(restored) == hash(v) and restored.fingerprint == v.fingerprint
    assert Vocabulary(["hello", "world"]) != v and v != v.tokens
    assert "7 tokens" in repr(v)


def test_vocabulary_errors():
    v = Vocabulary(["a"])
    with pytest.raises(ValueError, match="out of range.*5 tokens"):
        v.decode([5])
    with pytest.raises(ValueError, match="out of range"):
        v.decode([-1])
    with pytest.raises(ValueError, match="integers"):
        v.decode([1.5])
    with pytest.raises(ValueError, match="more than once"):
        Vocabulary(["a", "a"])
    with pytest.raises(ValueError, match="special"):
        Vocabulary(["<s>"])
    with pytest.raises(ValueError, match="whitespace"):
        Vocabulary(["a b"])
    with pytest.raises(ValueError, match="reserved"):
        Vocabulary.build([["a", "</s>"]])
    with pytest.raises(ValueError, match="max_size"):
        Vocabulary.build([["a"]], max_size=4)
    with pytest.raises(ValueError, match="min_count"):
        Vocabulary.build([["a"]], min_count=0)
    with pytest.raises(ValueError, match="order"):
        Vocabulary.build([["a"]], order="alphabetical")
    with pytest.raises(ValueError, match="format"):
        Vocabulary.from_dict({"words": ["a"]})
    with pytest.raises(ValueError, match="specials"):
        Vocabulary.from_dict({"format": "identkit.Vocabulary/1", "specials": ["<pad>"], "words": []})


def test_textdata_checks_ids_against_vocab():
    v = Vocabulary(["a", "b"])
    ids, lengths = torch.tensor([[1, 4, 5, 2], [1, 5, 2, 0]]), torch.tensor([4, 3])
    d = TextData(ids=ids, lengths=lengths, vocab=v, name="x", split="train")
    assert d.documents() == [[4, 5], [5]] and d.tokens(1) == ["b"]
    with pytest.raises(ValueError, match="do not match"):
        TextData(ids=ids, lengths=lengths, vocab=Vocabulary(["a"]), name="x", split="train")
    with pytest.raises(ValueError, match="<s> w_1"):
        TextData(ids=torch.tensor([[1, 4, 2, 5]]), lengths=torch.tensor([3]), vocab=v, name="x", split="train")
    with pytest.raises(ValueError, match="<s> w_1"):
        TextData(ids=torch.tensor([[1, 2, 2]]), lengths=torch.tensor([3]), vocab=v, name="x", split="train")
    with pytest.raises(ValueError, match="lengths"):
        TextData(ids=ids, lengths=torch.tensor([4, 2]), vocab=v, name="x", split="train")
    with pytest.raises(ValueError, match="split"):
        TextData(ids=ids, lengths=lengths, vocab=v, name="x", split="dev")
    with pytest.raises(ValueError, match="labels"):
        TextData(ids=ids, lengths=lengths, vocab=v, name="x", split="train", labels=torch.tensor([0, 2]),
                 label_names=("p", "q"))


def test_tokenize():
    assert data.tokenize("Don't PANIC!\n\t-- D. Adams, 1979") == \
        ["don't", "panic", "!", "-", "-", "d", ".", "adams", ",", "1979"]
    assert data.tokenize("  \n ") == []
    with pytest.raises(ValueError, match="text"):
        data.tokenize(b"bytes")


# ------------------------------------------------------------------------------------------------- fortunes
def write_fortunes(folder, n_per=10):
    """Two categories of numbered entries, plus the files and folders a Debian install has beside them."""
    folder.mkdir()
    for cat, word in (("alpha", "apple"), ("beta", "berry")):
        entries = [f"{word} number {i} is {'very ' * (i % 3)}good, uniq{word}{i}.\n\t\t-- Someone"
                   for i in range(n_per)]
        (folder / cat).write_text("%\n" + "\n%\n%\n".join(entries) + "\n%\n")  # leading and doubled separators
        (folder / f"{cat}.dat").write_bytes(b"\x00\x02\xff\xfe index")
        (folder / f"{cat}.u8").write_text("%\nduplicate copy\n%\n")
    (folder / "off").mkdir()
    (folder / "off" / "rude").write_text("never read\n%\n")
    (folder / ".hidden").write_text("never read\n%\n")
    return folder


def test_read_fortunes_format(tmp_path):
    folder = write_fortunes(tmp_path / "f", n_per=3)
    (folder / "gamma").write_text("one\n%\n  %  \ntwo\nlines\n%\n   \n%\nlast without separator")
    texts, cats, names = data.read_fortunes(folder)
    assert names == ("alpha", "beta", "gamma")
    assert [t for t, c in zip(texts, cats) if c == 2] == ["one", "two\nlines", "", "last without separator"]
    assert cats.count(0) == 3 and texts[0] == "apple number 0 is good, uniqapple0.\n\t\t-- Someone"
    assert not any("never" in t or "duplicate" in t for t in texts)


def test_load_fortunes_small(tmp_path):
    folder = write_fortunes(tmp_path / "f", n_per=20)
    tr = data.load_text("fortunes", "train", path=folder, min_count=1, max_size=None)
    va = data.load_text("fortunes", "validation", path=folder, min_count=1, max_size=None)
    te = data.load_text("fortunes", "test", path=folder, min_count=1, max_size=None)
    assert (len(tr), len(va), len(te)) == (32, 4, 4)  # round(0.8·40), round(0.1·40), rest
    assert va.split == "valid" and tr.label_names == ("alpha", "beta") and tr.vocab == va.vocab == te.vocab
    seen = [tuple(d.tokens(i)) for d in (tr, va, te) for i in range(len(d))]
    assert len(set(seen)) == 40  # the splits partition the entries
    for d in (tr, va):
        for i in range(len(d)):
            toks = d.tokens(i)
            assert toks[0] == ("apple" if d.label_names[d.labels[i]] == "alpha" else "berry")
            assert toks[-3:] == ["-", "-", "someone"]
    # Deterministic; another split seed permutes differently.
    again = data.load_fortunes("train", folder, min_count=1, max_size=None)
    assert torch.equal(again.ids, tr.ids) and torch.equal(again.labels, tr.labels)
    other = data.load_fortunes("train", folder, min_count=1, max_size=None, split_seed=1)
    assert not torch.equal(other.ids[:, :5], tr.ids[:, :5])
    # Vocabulary from the training split only: each entry's own word (uniq…) is a word in train, <unk> elsewhere.
    assert all(tr.tokens(i)[-5].startswith("uniq") for i in range(len(tr)))
    assert all(d.tokens(i)[-5] == "<unk>" for d in (va, te) for i in range(len(d)))
    assert len(tr.vocab) == 4 + len({w for i in range(len(tr)) for w in tr.tokens(i)})
    assert tr.metadata["n_dropped_long"] == 0 and tr.metadata["truncated"] == 0 and tr.metadata["unk_rate"] == 0


def test_fortunes_vocabulary_cap_and_unk_rate(tmp_path):
    folder = write_fortunes(tmp_path / "f", n_per=20)
    d = data.load_fortunes("train", folder, max_size=8, min_count=1)
    assert len(d.vocab) == 8 and d.metadata["vocab_size"] == 8
    assert d.vocab.words == ("-", ",", ".", "good")  # the most frequent (ties in string order) survive the cap
    assert 0 < d.metadata["unk_rate"] < 1 and (d.ids == 3).any()
    counted = data.load_fortunes("train", folder, min_count=100)
    assert len(counted.vocab) == 4 and counted.metadata["unk_rate"] == 1.0


def test_fortunes_length_cap_drops_or_rejects(tmp_path):
    folder = write_fortunes(tmp_path / "f", n_per=20)
    full = data.load_fortunes("train", folder, min_count=1)
    longest = int(full.lengths.max()) - 2
    capped = data.load_fortunes("train", folder, min_count=1, max_length=longest - 1)
    dropped = capped.metadata["n_dropped_long"]
    assert dropped > 0 and len(capped) == len(full) - dropped and int(capped.lengths.max()) - 2 <= longest - 1
    assert capped.metadata["truncated"] == 0
    with pytest.raises(ValueError, match="over max_length.*never truncated"):
        data.load_fortunes("train", folder, max_length=longest - 1, on_long="raise")
    with pytest.raises(ValueError, match="no train fortune"):
        data.load_fortunes("train", folder, max_length=1)


def test_fortunes_empty_entries(tmp_path):
    folder = write_fortunes(tmp_path / "f", n_per=20)
    (folder / "gamma").write_text("fine\n%\n  \n\n%\nalso fine\n%\n")
    with pytest.raises(ValueError, match="empty document.*on_empty='drop'"):
        for split in text.TEXT_SPLITS:  # the blank entry lies in one of the splits
            data.load_fortunes(split, folder)
    dropped = sum(data.load_fortunes(s, folder, on_empty="drop").metadata["n_dropped_empty"]
                  for s in text.TEXT_SPLITS)
    assert dropped == 1


def test_fortunes_errors(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="apt-get install fortunes"):
        data.load_text("fortunes", "train", path=tmp_path / "missing")
    only_index = tmp_path / "idx"
    only_index.mkdir()
    (only_index / "a.dat").write_bytes(b"\x00")
    with pytest.raises(FileNotFoundError, match="no fortune files"):
        data.load_fortunes("train", only_index)
    folder = write_fortunes(tmp_path / "f", n_per=20)
    monkeypatch.setenv("IDENTKIT_FORTUNES", str(folder))
    assert data.load_fortunes("test").metadata["source"] == str(folder)
    tr = data.load_fortunes("train")
    with pytest.raises(ValueError, match="vocab does not match"):
        data.load_fortunes("valid", vocab=Vocabulary(["apple"]))
    assert data.load_fortunes("valid", vocab=tr.vocab).vocab == tr.vocab
    with pytest.raises(ValueError, match="vocab must be a Vocabulary"):
        data.load_fortunes("valid", vocab={"apple": 4})
    with pytest.raises(ValueError, match="n must be <="):
        data.load_fortunes("valid", n=5)
    for kwargs, match in [(dict(max_length=0), "max_length"), (dict(max_size=4), "max_size"),
                          (dict(min_count=0), "min_count"), (dict(on_long="truncate"), "on_long"),
                          (dict(on_empty="keep"), "on_empty"), (dict(fractions=(0.8, 0.2)), "fractions"),
                          (dict(fractions=(0.9, 0.1, 0.0)), "fractions"), (dict(split_seed=-3), "split_seed"),
                          (dict(n=0), "n must")]:
        with pytest.raises(ValueError, match=match):
            data.load_fortunes("train", **kwargs)
    (folder / "latin1").write_bytes("caf\xe9\n%\n".encode("latin-1"))
    with pytest.raises(ValueError, match="not UTF-8"):
        data.load_fortunes("train")


@pytest.mark.skipif(not (text.DEFAULT_FORTUNES_DIR / "science").is_file(),
                    reason="Debian's fortunes package is not installed (make data)")
def test_real_fortunes(monkeypatch):
    monkeypatch.delenv("IDENTKIT_FORTUNES", raising=False)
    splits = {s: data.load_text("fortunes", s) for s in text.TEXT_SPLITS}
    meta = splits["train"].metadata
    assert meta["n_corpus"] > 10000 and len(splits["train"].label_names) >= 40
    assert sum(d.metadata["n_split"] for d in splits.values()) == meta["n_corpus"]
    for d in splits.values():
        assert len(d.vocab) == 5000 and d.vocab == splits["train"].vocab
        assert int(d.lengths.max()) <= 64 + 2 and d.metadata["n_dropped_empty"] == 0
        assert d.metadata["n_documents"] + d.metadata["n_dropped_long"] == d.metadata["n_split"]
        assert d.metadata["unk_rate"] < 0.2
    assert "science" in splits["train"].label_names


# -------------------------------------------------------------------------------------------- Yahoo / Yelp
def write_yahoo(root, train, valid, test, name="yahoo"):
    folder = root / f"{name}_data"
    folder.mkdir(parents=True)
    for split, lines in (("train", train), ("valid", valid), ("test", test)):
        (folder / f"{name}.{split}.txt").write_text("".join(line + "\n" for line in lines))
    return folder


def test_load_yahoo_small(tmp_path):
    folder = write_yahoo(tmp_path, ["what is it", "it is _UNK here", "what now ?"], ["what is new"], ["it"])
    tr = data.load_text("yahoo", "train", path=tmp_path)  # the folder above yahoo_data/ works too
    assert tr.vocab.words == ("what", "is", "it", "_UNK", "here", "now", "?")  # first appearance, as He et al.
    assert len(tr) == 3 and tr.labels is None and tr.tokens(1) == ["it", "is", "_UNK", "here"]
    assert tr.ids.shape == (3, 6) and tr.lengths.tolist() == [5, 6, 5]
    va = data.load_yahoo("valid", folder)
    assert va.tokens(0) == ["what", "is", "<unk>"] and va.vocab == tr.vocab and va.metadata["unk_rate"] == 1 / 3
    assert len(data.load_yahoo("train", folder, n=2)) == 2 and len(data.load_yahoo("train", folder, n=None)) == 3
    with pytest.raises(ValueError, match="n must be <= the 3"):
        data.load_yahoo("train", folder, n=4)
    capped = data.load_yahoo("train", folder, max_length=3)
    assert len(capped) == 2 and capped.metadata["n_dropped_long"] == 1 and "here" not in capped.vocab
    with pytest.raises(ValueError, match=r"yahoo.train.txt:2 has 4 tokens"):
        data.load_yahoo("train", folder, max_length=3, on_long="raise")
    with pytest.raises(ValueError, match="vocab does not match"):
        data.load_yahoo("test", folder, vocab=capped.vocab)


def test_yahoo_reference_sizes_and_vocab(tmp_path):
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(50)]
    train = [" ".join(rng.choice(words, size=rng.integers(1, 8))) for _ in range(30010)]
    folder = write_yahoo(tmp_path, train, ["w1"] * 10005, ["w2"] * 10001)
    tr, va = data.load_yahoo("train", folder), data.load_yahoo("valid", folder)
    assert (len(tr), len(va), len(data.load_yahoo("test", folder))) == (30000, 10000, 10000)
    assert tr.metadata["n_available"] == 30010
    assert set(tr.vocab.words) == {w for line in train for w in line.split()}  # the whole training file
    assert [tr.tokens(i) for i in (0, 29999)] == [train[0].split(), train[29999].split()]
    assert tr.metadata["unk_rate"] == 0 and va.tokens(0) == ["w1"]


def test_yahoo_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("IDENTKIT_YAHOO", raising=False)
    with pytest.raises(FileNotFoundError, match="IDENTKIT_YAHOO is unset.*prepare_data.py --dataset yahoo"):
        data.load_text("yahoo", "train")
    with pytest.raises(FileNotFoundError, match="no yahoo.train.txt.*vae-lagging-encoder"):
        data.load_yahoo("train", tmp_path)
    folder = write_yahoo(tmp_path, ["a b", "", "c"], ["a"], ["b"])
    monkeypatch.setenv("IDENTKIT_YAHOO", str(folder))
    with pytest.raises(ValueError, match=r"yahoo.train.txt:2 is an empty document.*on_empty='drop'"):
        data.load_yahoo("train")
    d = data.load_yahoo("train", on_empty="drop")
    assert len(d) == 2 and d.metadata["n_dropped_empty"] == 1
    with pytest.raises(FileNotFoundError, match="must be the folder"):
        data.load_yahoo("train", folder / "yahoo.train.txt")
    (folder / "yahoo.test.txt").write_text("fine\nnot <s> fine\n")
    with pytest.raises(ValueError, match="reserved token '<s>'"):
        data.load_yahoo("test", on_empty="drop")
    (folder / "yahoo.valid.txt").write_text("")
    with pytest.raises(ValueError, match="is empty"):
        data.load_yahoo("valid", on_empty="drop")
    (folder / "yahoo.valid.txt").write_bytes(b"\xff\xfe bad\n")
    with pytest.raises(ValueError, match="not UTF-8"):
        data.load_yahoo("valid", on_empty="drop")
    with pytest.raises(ValueError, match="n='reference' has no meaning"):
        data.load_fortunes("train", write_fortunes(tmp_path / "f"), n="reference")


def test_load_yelp_labels(tmp_path):
    folder = write_yahoo(tmp_path, ["4\tgreat food", "0 awful service here", "2\t\tok"], ["3\tfood"], ["1\tgreat"],
                         name="yelp")
    tr = data.load_text("yelp", "train", path=folder)
    assert tr.labels.tolist() == [4, 0, 2] and tr.label_names is None
    assert tr.tokens(1) == ["awful", "service", "here"] and tr.tokens(2) == ["ok"]
    assert tr.vocab.words == ("great", "food", "awful", "service", "here", "ok")
    assert data.load_yelp("valid", folder).labels.tolist() == [3]
    (folder / "yelp.test.txt").write_text("1\tgreat\nno label here\n")
    with pytest.raises(ValueError, match=r"yelp.test.txt:2: a Yelp line must start with an integer label"):
        data.load_yelp("test", folder)
    (folder / "yelp.test.txt").write_text("1\tgreat\n5\t\n")
    with pytest.raises(ValueError, match="empty document"):
        data.load_yelp("test", folder)
    assert data.load_yelp("test", folder, on_empty="drop").labels.tolist() == [1]
    with pytest.raises(FileNotFoundError, match="prepare_data.py --dataset yelp.*IDENTKIT_YELP"):
        data.load_yelp("train", tmp_path / "nowhere")


# ---------------------------------------------------------------------------------------------- dispatcher
def test_load_text_names_and_splits(tmp_path):
    with pytest.raises(ValueError, match="unknown text data set 'imdb'; known: fortunes, synthetic, yahoo, yelp"):
        data.load_text("imdb", "train")
    with pytest.raises(ValueError, match="name"):
        data.load_text(None, "train")
    with pytest.raises(ValueError, match=r"split must be one of \('train', 'valid', 'test'\)"):
        data.load_text("synthetic", "dev")
    with pytest.raises(ValueError, match="split"):
        data.load_fortunes(0)
    with pytest.raises(ValueError, match="generated"):
        data.load_text("synthetic", "train", path=tmp_path)
    d = data.load_text("Synthetic", "val", seed=5, **SMALL)
    assert d.split == "valid" and len(d) == 60
    with pytest.raises(ValueError, match="vocab does not match"):
        data.load_text("synthetic", "test", vocab=Vocabulary(["0"]), **SMALL)
    assert set(text.__all__) <= set(data.__all__)
