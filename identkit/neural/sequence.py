r"""Sequential VAEs for text: He et al.'s LSTM-VAE and the identifiable sequential VAE (IDSVAE).

Both follow the protocol of :mod:`identkit.neural.models` (``encode``, ``log_likelihood``, ``log_prior``,
``loss_terms``, ``elbo``, ``latent_dim``, ``likelihood``), so :func:`identkit.neural.train.fit`, the metrics
of :mod:`identkit.metrics` and every training method of :mod:`identkit.neural.baselines` apply unchanged.
The data are token ids, a ``(B, T)`` integer tensor whose rows read ``<s> w_1 … w_L </s> <pad> …``
(:class:`identkit.data.text.TextData`); ``likelihood`` is ``"categorical"`` and ``data_dim`` is None (rows of
any padded width).

The model of a document x = (x_1, …, x_T) with latent z ~ N(0, I_K) is autoregressive,

.. math:: \log p(x \mid z) = \sum_{t} \log \mathrm{Cat}\big(x_t;\ \mathrm{softmax}\,\ell_t(z, x_{<t})\big),

summed over the positions after ``<s>`` up to and including ``</s>`` (padding is not scored). The targets
never include ``<pad>`` or ``<s>``, so the categorical is over the V − 2 tokens ``</s>``, ``<unk>``, words
(He et al. normalise over all V ids; the two never-observed ids only take probability mass away).

* :class:`LSTMVAE` (He et al. 2019, ``modules/decoders/dec_lstm.py``): the decoder LSTM is fed z twice, as
  its initial state (c_0 = W z, h_0 = tanh c_0) and concatenated to every input embedding; ℓ_t = h_t W_out.
  Nothing stops the LSTM from modelling x without z: an autoregressive decoder can make p(x|z) the same for
  every z, and then z is non-identifiable and the posterior collapses.
* :class:`IDSVAE` (Wang, Blei & Cunningham 2021, the reference's ``sequential_pytorch``): the decoder LSTM
  never sees z (its initial state is a learned constant), and z enters only through the injective head

  .. math:: η_t = g_2\big(β^\top g_1([h_t, z])\big) ∈ \mathbb R^{V-3}, \qquad ℓ_t = [0, η_t],

  with g1, g2 Brenier maps and β a full-rank (H + K) × (V − 3) matrix
  (:class:`~identkit.neural.decoders.InjectiveDecoder` on R^{H+K}). Since h_t depends on x_{<t} only, for every
  t and every prefix, ‖η_t(z) − η_t(z')‖ ≥ λ1·s_min(β)·λ2·‖z − z'‖ (:meth:`IDSVAE.injectivity_bound`).

Where the IDSVAE departs from the reference code, and why:

* **Minimal natural parameters.** The reference applies g2 to all V logits. A softmax is unchanged when a
  constant is added to every logit, so an injective map into R^V does not make z ↦ p(x_t | z, x_<t) injective.
  Here ``</s>``'s logit is fixed at 0 and η_t holds the logits of the other V − 3 support tokens relative to
  it: the natural parameter of a minimal exponential family, which identifies the distribution. Injectivity of
  z ↦ η_t then *is* injectivity of z ↦ p(x_t | z, x_<t).
* **β trained and every layer registered** (the reference never trains β, keeps its ICNN layers in Python
  lists and clamps positive weights at 0.01 from an initialisation below it); the Brenier maps are strongly
  monotone (``+ λu``), so injectivity holds provably; their nonlinear parts are calibrated at initialisation
  (``init_ratio``, as for the image models).

Initialisation follows He et al. (every encoder/decoder weight ~ U(−0.01, 0.01), embeddings ~ U(−0.1, 0.1)),
except the injective head, which keeps its own (calibrated) initialisation. Dropout (He et al.: 0.5 on the
decoder's input embeddings and on its LSTM outputs) draws its masks from a generator the model owns, seeded
by ``seed``; its state is part of ``state_dict`` (``get_extra_state``), so checkpoints and resumed runs
continue the same stream.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from .. import config
from .._checks import check_int, check_positive, check_seed
from ..data.text import BOS_ID, EOS_ID, PAD_ID
from .decoders import InjectiveDecoder
from .models import LatentVariableModel
from .train import make_generator

__all__ = ["LSTMEncoder", "SequenceVAE", "LSTMVAE", "IDSVAE", "SUPPORT_OFFSET", "token_log_probs"]

#: Support index j of the output categorical ↔ token id j + SUPPORT_OFFSET (``</s>`` is j = 0).
SUPPORT_OFFSET = EOS_ID
_MAX_POSITIONS = 1 << 15  # token positions scored per head call (memory of the V-wide logits)


def _uniform_init(module: nn.Module, scale: float) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.uniform_(-scale, scale)


def _check_dropout(p, name: str) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1), got {p!r}")
    return float(p)


class _Dropout(nn.Module):
    """Inverted dropout whose masks come from a generator owned by the module (saved in ``state_dict``)."""

    def __init__(self, seed: int):
        super().__init__()
        self.generator = torch.Generator().manual_seed(check_seed(seed))

    def forward(self, t: torch.Tensor, p: float) -> torch.Tensor:
        if not self.training or p == 0.0:
            return t
        keep = torch.empty(t.shape, dtype=t.dtype).bernoulli_(1.0 - p, generator=self.generator)
        return t * keep.to(t.device) / (1.0 - p)

    def get_extra_state(self) -> torch.Tensor:
        return self.generator.get_state()

    def set_extra_state(self, state) -> None:
        self.generator.set_state(state)


class LSTMEncoder(nn.Module):
    """q(z|x) = N(μ, diag σ²) from the last state of an LSTM over the document (He et al.'s ``LSTMEncoder``).

    ``ids → Embedding(V, E) → LSTM(E, H) → h_L → Linear(H, 2K, no bias) → (μ, log σ²)``, where h_L is the state
    after the row's last non-padding token (``<s> w_1 … w_L </s>``; rows are packed, so padding never enters).

    Parameters
    ----------
    vocab_size, latent_dim : int
        V and K.
    embed_dim, hidden : int
        E and H (He et al.'s synthetic configuration: 50 and 50; Yahoo/Yelp: 512 and 1024).
    """

    def __init__(self, vocab_size: int, latent_dim: int, embed_dim: int = 50, hidden: int = 50):
        super().__init__()
        self.embed = nn.Embedding(check_int(vocab_size, "vocab_size"), check_int(embed_dim, "embed_dim"))
        self.lstm = nn.LSTM(embed_dim, check_int(hidden, "hidden"), batch_first=True)
        self.linear = nn.Linear(hidden, 2 * check_int(latent_dim, "latent_dim"), bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(mu, logvar)``, each (B, K), for ids ``x`` (B, T)."""
        lengths = (x != PAD_ID).sum(1)
        packed = pack_padded_sequence(self.embed(x), lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, (h, _) = self.lstm(packed)
        mu, logvar = self.linear(h[-1]).chunk(2, dim=-1)
        return mu, logvar


def token_log_probs(logits: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
    """``log softmax(logits)[support]`` per row: (N,) for logits (N, V − 2) and support indices (N,)."""
    return torch.log_softmax(logits, dim=-1).gather(-1, support.unsqueeze(-1)).squeeze(-1)


class SequenceVAE(LatentVariableModel):
    """Shared parts of the text VAEs: the LSTM encoder, the decoder LSTM, id checks, scoring and generation.

    Subclasses define :meth:`_decoder_inputs` (what the decoder LSTM reads besides the previous word),
    :meth:`_initial_state` and :meth:`_head` (LSTM outputs and z → logits over the V − 2 support tokens).
    """

    likelihood = "categorical"
    data_dim = None  # rows of token ids of any padded width
    #: Whether the decoder LSTM sees z (LSTMVAE) or only the head does (IDSVAE).
    z_in_recurrence = True

    def _setup_text(self, vocab_size, latent_dim, embed_dim, hidden, dropout_in, dropout_out, seed) -> None:
        self.vocab_size = check_int(vocab_size, "vocab_size", minimum=5)
        self.latent_dim = check_int(latent_dim, "latent_dim")
        self.embed_dim = check_int(embed_dim, "embed_dim")
        self.hidden = check_int(hidden, "hidden")
        self.dropout_in = _check_dropout(dropout_in, "dropout_in")
        self.dropout_out = _check_dropout(dropout_out, "dropout_out")
        self.support_size = self.vocab_size - SUPPORT_OFFSET
        self.seed = check_seed(seed)

    def _build_common(self, decoder_input_dim: int) -> None:
        self.encoder = LSTMEncoder(self.vocab_size, self.latent_dim, self.embed_dim, self.hidden)
        self.decoder = nn.Module()
        self.decoder.embed = nn.Embedding(self.vocab_size, self.embed_dim)
        self.decoder.lstm = nn.LSTM(decoder_input_dim, self.hidden, batch_first=True)
        _uniform_init(self.encoder, 0.01)
        with torch.no_grad():
            self.encoder.embed.weight.uniform_(-0.1, 0.1)
        self.dropout = _Dropout(self.seed + 1)

    def _init_decoder_rnn(self) -> None:
        """He et al.'s initialisation of the decoder's embedding (U(−0.1, 0.1)) and LSTM (U(−0.01, 0.01))."""
        _uniform_init(self.decoder.lstm, 0.01)
        with torch.no_grad():
            self.decoder.embed.weight.uniform_(-0.1, 0.1)

    def reset_decoder(self) -> None:
        """Re-initialise the decoder as at construction (from torch's global generator; the encoder is kept).

        Li et al.'s decoder reset (:class:`~identkit.neural.baselines.KLThreshold`) calls it, inside a seeded block.
        """
        raise NotImplementedError

    # ------------------------------------------------------------------ checks
    def _check_x(self, x: torch.Tensor, name: str = "x") -> torch.Tensor:
        if not torch.is_tensor(x) or x.ndim != 2 or x.dtype not in (torch.int64, torch.int32) or x.shape[1] < 3:
            got = (tuple(x.shape), x.dtype) if torch.is_tensor(x) else type(x).__name__
            raise ValueError(f"{name} must be an integer tensor of token ids, shape (B, T) with T >= 3, got {got}; "
                             "pass TextData.ids")
        if x.shape[0] and (int(x.min()) < 0 or int(x.max()) >= self.vocab_size):
            raise ValueError(f"{name} holds ids outside [0, {self.vocab_size}): the data's vocabulary does not match "
                             f"the model's vocab_size={self.vocab_size}")
        body = x[:, 1:]
        pad = body == PAD_ID
        if (x[:, 0] != BOS_ID).any() or (body == BOS_ID).any() or (pad[:, :1]).any() \
                or (pad[:, :-1] & ~pad[:, 1:]).any():
            raise ValueError(f"{name} rows must read <s> w_1 … </s> <pad> … (TextData.ids): every row starts with "
                             "<s>, has at least one target and pads only at its end")
        return x

    # ------------------------------------------------------------------ decoder
    def _initial_state(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def _decoder_inputs(self, emb: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _head(self, h: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Logits over the V − 2 support tokens for LSTM outputs h (N, H) and latents z (N, K): (N, V − 2)."""
        raise NotImplementedError

    def _run_decoder(self, src: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """LSTM outputs (after output dropout) for inputs ``src`` (N, T') and latents ``z`` (N, K): (N, T', H)."""
        emb = self.dropout(self.decoder.embed(src), self.dropout_in)
        out, _ = self.decoder.lstm(self._decoder_inputs(emb, z), self._initial_state(z))
        return self.dropout(out, self.dropout_out)

    def _score(self, h: torch.Tensor, z: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
        """Σ log p of the targets at the given positions, head evaluated in chunks: (N,) per position."""
        parts = [token_log_probs(self._head(h[i:i + _MAX_POSITIONS], z[i:i + _MAX_POSITIONS]),
                                 support[i:i + _MAX_POSITIONS]) for i in range(0, h.shape[0], _MAX_POSITIONS)]
        return torch.cat(parts) if parts else h.new_zeros(0)

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z) = Σ_t log p(x_t | x_<t, z) over each row's targets: (S, B) for x (B, T) and z (S, B, K)."""
        x = self._check_x(x)
        z = self._check_z(z)
        if z.ndim != 3 or z.shape[1] != x.shape[0]:
            raise ValueError(f"z must have shape (S, {x.shape[0]}, {self.latent_dim}) for x of {x.shape[0]} rows, "
                             f"got {tuple(z.shape)}")
        s, b = z.shape[:2]
        src, tgt = x[:, :-1], x[:, 1:]
        mask = tgt != PAD_ID                                            # (B, T')
        if self.z_in_recurrence:
            zz = z.reshape(s * b, -1)
            h = self._run_decoder(src.repeat(s, 1), zz)                 # (S·B, T', H)
            m = mask.repeat(s, 1)
            rows = torch.arange(s * b, device=x.device).unsqueeze(1).expand_as(m)[m]
            lp = self._score(h[m], zz[rows], (tgt.repeat(s, 1)[m] - SUPPORT_OFFSET))
            out = torch.zeros(s * b, dtype=lp.dtype, device=lp.device).index_add_(0, rows, lp)
            return out.reshape(s, b)
        # The recurrence never sees z: run it once per row, pair its states with every draw of z.
        h = self._run_decoder(src, z[0])[mask]                          # (P, H)
        rows = torch.arange(b, device=x.device).unsqueeze(1).expand_as(mask)[mask]
        support = tgt[mask] - SUPPORT_OFFSET
        p = h.shape[0]
        lp = self._score(h.repeat(s, 1), z[:, rows].reshape(s * p, -1), support.repeat(s))
        flat_rows = (rows.unsqueeze(0) + b * torch.arange(s, device=x.device).unsqueeze(1)).reshape(-1)
        out = torch.zeros(s * b, dtype=lp.dtype, device=lp.device).index_add_(0, flat_rows, lp)
        return out.reshape(s, b)

    def next_token_logits(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Logits over the V − 2 support tokens at every position of ``x``: (B, T − 1, V − 2), for z (B, K)."""
        x = self._check_x(x)
        z = self._check_z(z)
        src = x[:, :-1]
        h = self._run_decoder(src, z)
        b, t, _ = h.shape
        zz = z.unsqueeze(1).expand(b, t, -1).reshape(b * t, -1)
        return self._head(h.reshape(b * t, -1), zz).reshape(b, t, -1)

    @torch.no_grad()
    def generate(self, z: torch.Tensor, max_length: int = 20, *, greedy: bool = True,
                 generator: torch.Generator | int | None = None) -> torch.Tensor:
        """Decode one document per row of ``z`` (B, K): ``<s>`` then tokens until ``</s>`` or ``max_length`` words.

        ``greedy=True``: x_t = argmax p(x_t | x_<t, z) (He et al.'s ``greedy_decode``); otherwise x_t is sampled
        from ``generator``. Returns ids (B, T) in the :class:`~identkit.data.text.TextData` layout (``<pad>``
        after ``</s>``; a row that reaches ``max_length`` words is closed with ``</s>``).
        """
        z = self._check_z(z)
        if z.ndim != 2:
            raise ValueError(f"z must have shape (B, {self.latent_dim}), got {tuple(z.shape)}")
        max_length = check_int(max_length, "max_length")
        gen = None if greedy else make_generator(generator)
        was_training = self.training
        self.eval()
        b = z.shape[0]
        out = torch.full((b, max_length + 2), PAD_ID, dtype=torch.long, device=z.device)
        out[:, 0] = BOS_ID
        done = torch.zeros(b, dtype=torch.bool, device=z.device)
        state = self._initial_state(z)
        prev = out[:, :1]
        for t in range(1, max_length + 1):
            emb = self.decoder.embed(prev)
            h, state = self.decoder.lstm(self._decoder_inputs(emb, z), state)
            logits = self._head(h[:, 0], z)
            if greedy:
                j = logits.argmax(-1)
            else:
                probs = torch.softmax(logits.double(), -1).cpu()
                j = torch.multinomial(probs, 1, generator=gen).squeeze(-1).to(z.device)
            tok = j + SUPPORT_OFFSET
            out[:, t] = torch.where(done, torch.full_like(tok, PAD_ID), tok)
            done = done | (tok == EOS_ID)
            prev = tok.unsqueeze(1)
            if bool(done.all()):
                break
        out[~done, max_length + 1] = EOS_ID
        self.train(was_training)
        width = int((out != PAD_ID).sum(1).max())
        return out[:, :width]

    def extra_repr(self) -> str:
        return (f"vocab_size={self.vocab_size}, latent_dim={self.latent_dim}, embed_dim={self.embed_dim}, "
                f"hidden={self.hidden}")


class LSTMVAE(SequenceVAE):
    """He et al. (2019)'s LSTM-VAE for text: z feeds the decoder LSTM's initial state and every input.

    ``c_0 = W z``, ``h_0 = tanh(c_0)``; the LSTM reads ``[emb(x_{t-1}), z]``; logits ``h_t W_out`` (no bias)
    over the V − 2 support tokens (see the module docstring).

    Parameters
    ----------
    vocab_size, latent_dim : int
        V (``len(TextData.vocab)``) and K.
    embed_dim, hidden : int
        Embedding width E and LSTM width H of encoder and decoder (synthetic: 50, 50; Yahoo: 512, 1024).
    dropout_in, dropout_out : float
        Dropout on the decoder's input embeddings and LSTM outputs (He et al.: 0.5, 0.5).
    seed : int
        Seeds the initialisation and the dropout generator.
    """

    def __init__(self, vocab_size: int, latent_dim: int = 2, embed_dim: int = 50, hidden: int = 50, *,
                 dropout_in: float = 0.5, dropout_out: float = 0.5, seed: int = config.DEFAULT_SEED):
        super().__init__()
        self._setup_text(vocab_size, latent_dim, embed_dim, hidden, dropout_in, dropout_out, seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self._build_common(self.embed_dim + self.latent_dim)
            self.decoder.init_state = nn.Linear(self.latent_dim, self.hidden, bias=False)
            self.decoder.out = nn.Linear(self.hidden, self.support_size, bias=False)
            self.reset_decoder()

    def reset_decoder(self) -> None:
        self._init_decoder_rnn()
        _uniform_init(self.decoder.init_state, 0.01)
        _uniform_init(self.decoder.out, 0.01)

    def _initial_state(self, z):
        c0 = self.decoder.init_state(z).unsqueeze(0)
        return torch.tanh(c0), c0

    def _decoder_inputs(self, emb, z):
        return torch.cat([emb, z.unsqueeze(1).expand(-1, emb.shape[1], -1)], dim=-1)

    def _head(self, h, z):
        return self.decoder.out(h)


class IDSVAE(SequenceVAE):
    """Identifiable sequential VAE: logits ``[0, g2(βᵀ g1([h_t, z]))]``, z outside the recurrence.

    The decoder LSTM reads the previous word only, from a learned initial state (c_0 a parameter,
    h_0 = tanh c_0); the head is an :class:`~identkit.neural.decoders.InjectiveDecoder` from R^{H+K} to the
    V − 3 minimal natural parameters (the logits relative to ``</s>``), so for every position t and prefix
    x_<t the map z ↦ p(x_t | x_<t, z) is injective (module docstring).

    Parameters
    ----------
    vocab_size, latent_dim, embed_dim, hidden, dropout_in, dropout_out, seed
        As for :class:`LSTMVAE`. Needs V − 3 ≥ H + K (β full rank).
    icnn_hidden, icnn_layers : int
        Width and depth of the two ICNN potentials (the reference: 2 × 128 synthetic, 2 × 1024 Yahoo/Yelp).
    lam : float
        λ of both Brenier maps.
    min_singular : float
        Lower bound of β's singular values.
    activation : {"leaky_relu", "softplus", "celu"}
        ICNN activation of layers ≥ 2 (softplus: a continuous Brenier map).
    init_ratio : float or None
        Initial size of the maps' nonlinear parts relative to λu (see :class:`InjectiveDecoder`).
    """

    z_in_recurrence = False

    def __init__(self, vocab_size: int, latent_dim: int = 2, embed_dim: int = 50, hidden: int = 50, *,
                 icnn_hidden: int = 128, icnn_layers: int = 2, lam: float = 1.0, min_singular: float = 0.1,
                 activation: str = "softplus", init_ratio: float | None = 0.3, dropout_in: float = 0.5,
                 dropout_out: float = 0.5, seed: int = config.DEFAULT_SEED):
        super().__init__()
        self._setup_text(vocab_size, latent_dim, embed_dim, hidden, dropout_in, dropout_out, seed)
        self.lam = check_positive(lam, "lam")
        head_in, head_out = self.hidden + self.latent_dim, self.support_size - 1
        if head_out < head_in:
            raise ValueError(f"vocab_size - 3 ({head_out}) must be >= hidden + latent_dim ({head_in}) for a full-rank "
                             "β: use a larger vocabulary or a smaller LSTM/latent")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self._build_common(self.embed_dim)
            self.decoder.c0 = nn.Parameter(torch.empty(self.hidden))
            icnn_hidden = check_int(icnn_hidden, "icnn_hidden")
            self.decoder.head = InjectiveDecoder(head_in, head_out, hidden=icnn_hidden, icnn_hidden=icnn_hidden,
                                                 layers=check_int(icnn_layers, "icnn_layers"), lam=self.lam,
                                                 min_singular=min_singular, activation=activation,
                                                 init_ratio=init_ratio)
            self.init_ratio = init_ratio
            self._init_decoder_rnn()
            with torch.no_grad():
                self.decoder.c0.uniform_(-0.01, 0.01)

    def reset_decoder(self) -> None:
        self._init_decoder_rnn()
        with torch.no_grad():
            self.decoder.c0.uniform_(-0.01, 0.01)
            for module in self.decoder.head.modules():
                if module is not self.decoder.head and hasattr(module, "reset_parameters"):
                    module.reset_parameters()
            head = self.decoder.head
            for g in (head.g1, head.g2):
                if g.log_scale is not None:
                    g.log_scale.zero_()
        if self.init_ratio is not None:
            self.decoder.head.calibrate(self.init_ratio)

    def _initial_state(self, z):
        c0 = self.decoder.c0.expand(1, z.shape[0], self.hidden).contiguous()
        return torch.tanh(c0), c0

    def _decoder_inputs(self, emb, z):
        return emb

    def natural_parameters(self, h: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """η = g2(βᵀ g1([h, z])) (…, V − 3): logits of ``<unk>`` and the words relative to ``</s>``."""
        return self.decoder.head(torch.cat([h, z], dim=-1))

    def _head(self, h, z):
        eta = self.natural_parameters(h, z)
        return torch.cat([eta.new_zeros(eta.shape[:-1] + (1,)), eta], dim=-1)

    def injectivity_bound(self) -> float:
        """c with ‖η_t(z) − η_t(z')‖ ≥ c‖z − z'‖ for every t and prefix: λ1 · s_min(β) · λ2."""
        return self.decoder.head.injectivity_bound()

