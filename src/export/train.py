#!/usr/bin/env python3
"""An mHC Playground experiment, exported for PyTorch.

Residual, Hyper-Connection (HC) and Manifold-Constrained Hyper-Connection (mHC) networks of
DESIGN.md section 1 (the MLP) or section 1b (the transformer on text and digit puzzles), trained
in lockstep exactly as the playground trains them: the same initial
weights (init.<mode>.safetensors), the same data (data.safetensors), the same batch at every step
(a port of the playground's SplitMix64 generator), the same AdamW/SGD, and metrics in the
playground's JSON-lines schema, so a run here and a run in the browser sit on one chart.

  python train.py [--steps N] [--device cpu|cuda|mps] [--metrics m.jsonl] [--save PREFIX]
                  [--set key=value]... [--init CKPT]... [--log-every N] [--grads PREFIX]
  torchrun --nproc_per_node=N train.py ... [--fsdp]   (DDP, or FSDP2 sharding: gloo on CPU, nccl on CUDA)

Needs torch and safetensors only. Everything below is plain PyTorch: read it, change it, scale it.
"""
import argparse
import json
import math
import os
import struct
import sys
import time

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
MODES = ("residual", "hc", "mhc")
EVAL_MAX_ROWS = 2048      # test metrics use at most this many held-out examples
ADAM_EPS = 1e-8           # PyTorch's default, as in the playground
N_POINTS = 1000           # points of a 2-D data set, and of the teacher's fixed samples
TEACHER_SIZES = (16, 32, 32, 10)
TOKEN_TASKS = ("text", "reverse", "sort", "add")
ALGORITHMIC_SYMBOLS = "0123456789|+=."   # tokens of reverse, sort and add: digits are their own values
SEPARATOR, PLUS, EQUALS, PAD = 10, 11, 12, 13
MAX_DIGITS = 8
ALGORITHMIC_TEST_EXAMPLES = 512


def f32(x):
    """The nearest float32 of a Python float: the playground holds every scalar in f32."""
    return struct.unpack("f", struct.pack("f", x))[0]


# ------------------------------------------------------------------ the experiment (config)
class Config:
    """The experiment's keys (DESIGN.md section 4), their ranges, and the share query string."""

    def __init__(self, experiment):
        self.specs = experiment["keys"]                 # key -> {"kind", "min", "max", "names"}
        self.order = experiment["order"]                # the keys in the playground's table order
        self.defaults = experiment["defaults"]          # key -> value as the playground writes it
        self.text = dict(experiment["config"])          # key -> value as the playground writes it
        self.changed = []                               # keys changed by --set

    def set(self, key, value):
        spec = self.specs.get(key)
        if spec is None:
            raise SystemExit("error: unknown key %r (keys: %s)" % (key, ", ".join(self.specs)))
        kind, value = spec["kind"], value.strip()
        if kind in ("float", "int"):
            try:
                number = float(value) if kind == "float" else int(value)
            except ValueError:
                raise SystemExit("error: %s=%s: not %s" % (key, value, "an integer" if kind == "int" else "a number"))
            if not math.isfinite(number):
                raise SystemExit("error: %s=%s: not a finite number" % (key, value))
            clamped = min(max(number, spec["min"]), spec["max"])
            if clamped != number:
                log("note: %s=%s is outside %s..%s, clamped to %s" % (key, value, spec["min"], spec["max"], clamped))
            value = repr(clamped) if kind == "float" else str(clamped)
        elif kind == "choice":
            if value not in spec["names"]:
                raise SystemExit("error: %s=%s: must be one of %s" % (key, value, ", ".join(spec["names"])))
        else:                                           # modes: a non-empty subset, kept in order
            chosen = [m.strip() for m in value.split(",") if m.strip()]
            if not chosen or any(m not in MODES for m in chosen) or len(set(chosen)) != len(chosen):
                raise SystemExit("error: modes=%s: a comma list of distinct %s" % (value, ", ".join(MODES)))
            value = ",".join(m for m in MODES if m in chosen)
        if self.text[key] != value:
            self.changed.append(key)
        self.text[key] = value

    def __getattr__(self, key):
        text, spec = self.__dict__["text"], self.__dict__["specs"]
        if key not in text:
            raise AttributeError(key)
        kind = spec[key]["kind"]
        if kind == "float":
            return f32(float(text[key]))
        if kind == "int":
            return int(text[key])
        if kind == "modes":
            return text[key].split(",")
        return text[key]

    def query(self, mode=None):
        """The share string the playground reads (checkpoint metadata key `config`)."""
        text = dict(self.text, modes=mode) if mode else self.text
        same = lambda k: self.specs[k]["kind"] in ("float", "int") and float(text[k]) == float(self.defaults[k])
        keys = [k for k in self.order if k == "seed" or (text[k] != self.defaults[k] and not same(k))]
        return "&".join(["v=1"] + ["%s=%s" % (k, text[k]) for k in keys])

    def transformer(self):
        return self.arch == "transformer"

    def d_in(self):
        return {"teacher": 16, "modadd": 2 * self.p}.get(self.task, 2)

    def classes(self):
        """Classes of the MLP's tasks; the vocabulary of the token tasks (text: its characters)."""
        if self.task == "text":
            return self.__dict__["vocabulary_size"]
        if self.task in TOKEN_TASKS:
            return len(ALGORITHMIC_SYMBOLS)
        return {"teacher": 10, "modadd": self.p}.get(self.task, 2)

    def units(self):
        """Residual units: the MLP's blocks, or the transformer's sublayers (2 per block)."""
        return self.depth * (2 if self.transformer() else 1)

    def streams_for(self, mode):
        return 1 if mode == "residual" else self.streams


# ------------------------------------------------------------------ the playground's generator
M64 = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15


def mix(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


class Rng:
    """SplitMix64 with the playground's derived streams (src/rng.rs), draw for draw."""

    def __init__(self, state):
        self.state = state & M64

    @staticmethod
    def derive(seed, label, index):
        fnv = 0xCBF29CE484222325
        for byte in label.encode():
            fnv = ((fnv ^ byte) * 0x100000001B3) & M64
        a = mix((seed + GAMMA) & M64) ^ fnv
        b = mix((a + GAMMA) & M64) ^ index
        return Rng(mix((b + GAMMA) & M64))

    def next_u64(self):
        self.state = (self.state + GAMMA) & M64
        return mix(self.state)

    def next_f64(self):
        return (self.next_u64() >> 11) * (1.0 / (1 << 53))

    def uniform(self, lo, hi):
        return lo + (hi - lo) * self.next_f64()

    def below(self, n):
        threshold = ((1 << 64) - n) % n
        while True:
            x = self.next_u64()
            if x >= threshold:
                return x % n

    def normal(self):
        while True:
            v1, v2 = 2.0 * self.next_f64() - 1.0, 2.0 * self.next_f64() - 1.0
            s = v1 * v1 + v2 * v2
            if 0.0 < s < 1.0:
                return v1 * math.sqrt(-2.0 * math.log(s) / s)

    def shuffle(self, items):
        for i in range(len(items) - 1, 0, -1):
            j = self.below(i + 1)
            items[i], items[j] = items[j], items[i]


# ------------------------------------------------------------------ tasks (DESIGN.md section 2)
def spiral(n, noise, rng):
    pts, half = [], n // 2
    for delta_t, label in ((0.0, 1), (math.pi, 0)):
        for i in range(half):
            r, t = i / half * 5.0, 1.75 * i / half * 2.0 * math.pi + delta_t
            x = r * math.sin(t) + rng.uniform(-1.0, 1.0) * noise
            y = r * math.cos(t) + rng.uniform(-1.0, 1.0) * noise
            pts.append(((x, y), label))
    return pts


def circles(n, noise, rng):
    pts = []
    for r_lo, r_hi in ((0.0, 2.5), (3.5, 5.0)):
        for _ in range(n // 2):
            r, angle = rng.uniform(r_lo, r_hi), rng.uniform(0.0, 2.0 * math.pi)
            x, y = r * math.sin(angle), r * math.cos(angle)
            nx, ny = x + rng.uniform(-5.0, 5.0) * noise, y + rng.uniform(-5.0, 5.0) * noise
            pts.append(((x, y), int(math.sqrt(nx * nx + ny * ny) < 2.5)))
    return pts


def xor(n, noise, rng):
    padded = lambda v: v + (0.3 if v > 0.0 else -0.3)
    pts = []
    for _ in range(n):
        x, y = padded(rng.uniform(-5.0, 5.0)), padded(rng.uniform(-5.0, 5.0))
        nx, ny = x + rng.uniform(-5.0, 5.0) * noise, y + rng.uniform(-5.0, 5.0) * noise
        pts.append(((x, y), int(nx * ny >= 0.0)))
    return pts


def gauss(n, noise, rng):
    std, pts = math.sqrt(0.5 + noise / 0.5 * 3.5), []
    for c, label in ((2.0, 1), (-2.0, 0)):
        for _ in range(n // 2):
            x = c + std * rng.normal()
            y = c + std * rng.normal()
            pts.append(((x, y), label))
    return pts


def teacher_weights(seed):
    """The teacher MLP 16-32-32-10: weights 2 N(0, 1/fan_in), biases N(0, 0.01), in f64."""
    rng, layers = Rng.derive(seed, "teacher", 0), []
    for fan_in, fan_out in zip(TEACHER_SIZES, TEACHER_SIZES[1:]):
        w = [2.0 / math.sqrt(fan_in) * rng.normal() for _ in range(fan_in * fan_out)]
        b = [0.1 * rng.normal() for _ in range(fan_out)]
        layers.append((torch.tensor(w, dtype=torch.float64).reshape(fan_out, fan_in), torch.tensor(b, dtype=torch.float64)))
    return layers


def teacher_sample(layers, rng, rows):
    x = torch.tensor([f32(rng.normal()) for _ in range(rows * TEACHER_SIZES[0])], dtype=torch.float32).reshape(rows, -1)
    h = x.double()
    for k, (w, b) in enumerate(layers):
        h = h @ w.T + b
        if k + 1 < len(layers):
            h = torch.tanh(h)
    return x, h.argmax(dim=1)


def make_data(cfg):
    """The playground's data set, generated from the seed (used when --set changes data keys)."""
    seed, rng = cfg.seed, Rng.derive(cfg.seed, "data", 0)
    if cfg.task == "teacher":
        layers = teacher_weights(seed)
        train = teacher_sample(layers, Rng.derive(seed, "teacher-train", 0), N_POINTS)
        test = teacher_sample(layers, Rng.derive(seed, "teacher-test", 0), N_POINTS)
        return Data(*train, *test, layers, seed)

    def split(items):
        rng.shuffle(items)
        n_train = min(max(int(math.floor(cfg.train_frac * len(items) + 0.5)), 1), len(items) - 1)
        return items[:n_train], items[n_train:]

    if cfg.task == "modadd":
        p = cfg.p
        pairs = [(a, b) for a in range(p) for b in range(p)]

        def encode(items):
            x = torch.zeros(len(items), 2 * p)
            for r, (a, b) in enumerate(items):
                x[r, a] = x[r, p + b] = 1.0
            return x, torch.tensor([(a + b) % p for a, b in items], dtype=torch.int64)
    else:
        pairs = {"spiral": spiral, "circles": circles, "xor": xor, "gauss": gauss}[cfg.task](N_POINTS, float(cfg.noise), rng)

        def encode(items):       # the Playground's domain [-5, 5]^2, scaled to [-1, 1]
            x = torch.tensor([(pt[0] / 5.0, pt[1] / 5.0) for pt, _ in items], dtype=torch.float32)
            return x, torch.tensor([label for _, label in items], dtype=torch.int64)
    train, test = split(pairs)
    return Data(*encode(train), *encode(test), None, seed)


class Data:
    def __init__(self, train_x, train_y, test_x, test_y, teacher, seed):
        self.train_x, self.train_y, self.test_x, self.test_y = train_x, train_y.long(), test_x, test_y.long()
        self.teacher, self.seed = teacher, seed

    @staticmethod
    def load(path, seed):
        t = load_file(path)
        teacher = None
        if "teacher.0.weight" in t:
            teacher = [(t["teacher.%d.weight" % k], t["teacher.%d.bias" % k]) for k in range(len(TEACHER_SIZES) - 1)]
        return Data(t["train_x"], t["train_y"], t["test_x"], t["test_y"], teacher, seed)

    def batch(self, step, rows):
        """The training batch of step `step`: drawn with replacement from the train split by
        Rng.derive(seed, "batch", step), the same rows the playground trains on (teacher: fresh
        inputs from that stream, labelled by the teacher)."""
        rng = Rng.derive(self.seed, "batch", step)
        if self.teacher is not None:
            return teacher_sample(self.teacher, rng, rows)
        picks = torch.tensor([rng.below(len(self.train_y)) for _ in range(rows)])
        return self.train_x[picks], self.train_y[picks]


# ------------------------------------------------------------------ the token tasks (src/tokens.rs)
def digits(task, ctx):
    """Digits per operand of an algorithmic task at context `ctx`."""
    if task == "add":
        return max(1, min(MAX_DIGITS, (ctx - 3) // 3))
    return max(1, min(MAX_DIGITS, (ctx - 1) // 2))


def scoring(cfg):
    """(positions per example, scored positions per example, whether accuracy counts whole answers)."""
    if not cfg.transformer():
        return 1, 1, False
    if cfg.task == "text":
        return cfg.ctx, cfg.ctx, False
    k = digits(cfg.task, cfg.ctx)
    return cfg.ctx, k + 1 if cfg.task == "add" else k, True


def algorithmic_set(task, ctx, rng, examples):
    """`examples` fresh examples: `k` digits, `|`, the digits reversed or sorted; or `a+b=` and
    the `k + 1`-digit sum; padded with `.`. Only the answer's positions have targets (-1 else)."""
    k = digits(task, ctx)
    scored = k + 1 if task == "add" else k
    inputs, targets = [], []
    for _ in range(examples):
        operand = lambda: [rng.below(10) for _ in range(k)]
        if task == "add":
            a, b = operand(), operand()
            total = int("".join(map(str, a))) + int("".join(map(str, b)))
            sequence = a + [PLUS] + b + [EQUALS]
            start = len(sequence)
            sequence += [total // 10 ** p % 10 for p in reversed(range(k + 1))]
        else:
            a = operand()
            sequence = a + [SEPARATOR]
            start = len(sequence)
            sequence += sorted(a) if task == "sort" else a[::-1]
        sequence = (sequence + [PAD] * (ctx + 1))[:ctx + 1]
        inputs.append(sequence[:ctx])
        targets.append([sequence[i + 1] if start <= i + 1 < start + scored else -1 for i in range(ctx)])
    return torch.tensor(inputs, dtype=torch.int64), torch.tensor(targets, dtype=torch.int64)


class TokenData:
    """A token task's data: the text's splits (first 90% train, windows drawn per batch; last
    10% test, consecutive windows), or the puzzles' fixed test set and fresh training examples."""

    def __init__(self, cfg, text_tokens):
        self.task, self.ctx, self.seed = cfg.task, cfg.ctx, cfg.seed
        ctx = self.ctx
        if self.task == "text":
            split = len(text_tokens) * 9 // 10
            windows = (len(text_tokens) - split - 1) // ctx
            starts = [split + w * ctx for w in range(windows)]
            self.test_x = torch.stack([text_tokens[s:s + ctx] for s in starts])
            self.test_y = torch.stack([text_tokens[s + 1:s + ctx + 1] for s in starts])
            self.train = text_tokens[:split]
        else:
            self.test_x, self.test_y = algorithmic_set(self.task, ctx, Rng.derive(self.seed, "tokens-test", 0), ALGORITHMIC_TEST_EXAMPLES)

    def batch(self, step, rows):
        """Step `step`'s `rows` examples, `[rows, ctx]` tokens and targets, from Rng.derive(seed, "batch", step)."""
        rng, ctx = Rng.derive(self.seed, "batch", step), self.ctx
        if self.task != "text":
            return algorithmic_set(self.task, ctx, rng, rows)
        starts = [rng.below(len(self.train) - ctx) for _ in range(rows)]
        return (torch.stack([self.train[s:s + ctx] for s in starts]),
                torch.stack([self.train[s + 1:s + ctx + 1] for s in starts]))


# ------------------------------------------------------------------ the model (DESIGN.md section 1)
def rms(v):
    return torch.sqrt(torch.mean(v * v, dim=-1, keepdim=True) + 1e-6)


class RoundToF16(torch.autograd.Function):
    """The residual stream held in f16: nearest f16 value forward, gradient passed through."""

    @staticmethod
    def forward(ctx, x):
        return x.half().float()

    @staticmethod
    def backward(ctx, g):
        return g


class RMSNorm(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(c))

    def forward(self, u):
        return u / rms(u) * self.weight


class HyperConnection(nn.Module):
    """ByteDance's dynamic HC in mHC orientation; no constraint of any kind."""

    def __init__(self, n, c, l):
        super().__init__()
        self.w_pre, self.w_res, self.w_post = nn.Parameter(torch.zeros(c)), nn.Parameter(torch.zeros(n, c)), nn.Parameter(torch.zeros(c))
        self.s_alpha, self.s_beta = nn.Parameter(torch.full((1,), 0.01)), nn.Parameter(torch.full((1,), 0.01))
        self.b_pre = nn.Parameter(F.one_hot(torch.tensor(l % n), n).float())
        self.b_res = nn.Parameter(torch.eye(n))
        self.b_post = nn.Parameter(torch.ones(n))

    def forward(self, X):                                                # X: [B, n, C]
        z = X / rms(X)                                                   # per stream, no weight
        h_pre = self.s_alpha * torch.tanh(z @ self.w_pre) + self.b_pre                       # [B, n]
        h_res = self.s_alpha * torch.tanh(torch.einsum("bic,kc->bki", z, self.w_res)) + self.b_res   # [B, n, n]
        h_post = self.s_beta * torch.tanh(z @ self.w_post) + self.b_post                     # [B, n]
        return h_pre, h_post, h_res


def sinkhorn(logits, iters, eps):
    """exp(L - max L), then `iters` times: columns, then rows, divided by (their sum + eps).
    The max's gradient goes to the first maximal logit, as in the playground."""
    b, n, _ = logits.shape
    m = torch.exp(logits - logits.reshape(b, n * n).max(dim=1).values[:, None, None])
    for _ in range(iters):
        m = m / (m.sum(dim=1, keepdim=True) + eps)
        m = m / (m.sum(dim=2, keepdim=True) + eps)
    return m


class ManifoldHyperConnection(nn.Module):
    """DeepSeek's mHC in the paper's fused form: H_res projected onto the Birkhoff polytope."""

    def __init__(self, n, c, l, iters, eps):
        super().__init__()
        self.n, self.iters, self.eps = n, iters, eps
        self.phi = nn.Parameter(torch.zeros(n * n + 2 * n, n * c))
        self.alpha = nn.Parameter(torch.full((3,), 0.01))
        bias = torch.cat([-3.0 + 6.0 * F.one_hot(torch.tensor(l % n), n).float(), torch.zeros(n), 4.0 * torch.eye(n).flatten()])
        self.bias = nn.Parameter(bias)

    def forward(self, X):
        b, n, c = X.shape
        v = X.reshape(b, n * c)                                          # stream-major
        m = (v @ self.phi.T) / rms(v)                                    # [B, n*n + 2n]: pre | post | res
        h_pre = torch.sigmoid(self.alpha[0] * m[:, :n] + self.bias[:n])
        h_post = 2.0 * torch.sigmoid(self.alpha[1] * m[:, n:2 * n] + self.bias[n:2 * n])
        logits = self.alpha[2] * m[:, 2 * n:].reshape(b, n, n) + self.bias[2 * n:].reshape(n, n)
        return h_pre, h_post, sinkhorn(logits, self.iters, self.eps)


class Wrapped(nn.Module):
    """A residual unit: a sublayer wrapped by the variant, with its own coefficients. `index` is
    the unit's number (the MLP's block l; the transformer's sublayer 2l + s), which sets the
    coefficients' initial values."""

    def __init__(self, cfg, mode, index):
        super().__init__()
        c, n = cfg.width, cfg.streams_for(mode)
        self.mode, self.f16 = mode, cfg.precision == "f16"
        self.norm = RMSNorm(c)
        if mode == "hc":
            self.hc = HyperConnection(n, c, index)
        elif mode == "mhc":
            self.mhc = ManifoldHyperConnection(n, c, index, cfg.sinkhorn_iters, cfg.sinkhorn_eps)

    def forward(self, X):
        """X: [R, n, C] (R rows: examples, or positions) -> X', and the coefficients (None for residual)."""
        if self.mode == "residual":
            X, coeffs = X + self.sublayer(X[:, 0])[:, None], None
        else:
            h_pre, h_post, h_res = coeffs = (self.hc if self.mode == "hc" else self.mhc)(X)
            y = self.sublayer(torch.einsum("bi,bic->bc", h_pre, X))
            X = torch.einsum("bki,bic->bkc", h_res, X) + h_post[:, :, None] * y[:, None, :]
        return (RoundToF16.apply(X) if self.f16 else X), coeffs


class Block(Wrapped):
    """The MLP's block, and the transformer's FFN sublayer: fc2(act(fc1(norm(u))))."""

    def __init__(self, cfg, mode, index):
        super().__init__(cfg, mode, index)
        self.act = cfg.act
        self.fc1, self.fc2 = nn.Linear(cfg.width, cfg.ffn * cfg.width), nn.Linear(cfg.ffn * cfg.width, cfg.width)

    def sublayer(self, u):
        a = self.fc1(self.norm(u))
        a = {"gelu": lambda t: F.gelu(t, approximate="tanh"), "relu": F.relu, "tanh": torch.tanh}[self.act](a)
        return self.fc2(a)


class Attention(Wrapped):
    """Causal multi-head self-attention over each sequence: proj(attend(qkv(norm(u))))."""

    def __init__(self, cfg, mode, index):
        super().__init__(cfg, mode, index)
        c = cfg.width
        self.t, self.heads = cfg.ctx, cfg.heads
        self.qkv, self.proj = nn.Linear(c, 3 * c), nn.Linear(c, c)

    def sublayer(self, u):                                               # u: [B*T, C]
        c, t, h = u.shape[1], self.t, self.heads
        qkv = self.qkv(self.norm(u)).reshape(-1, t, 3, h, c // h)        # [B, T, q|k|v, H, dh]
        q, k, v = (qkv[:, :, part].transpose(1, 2) for part in range(3))  # [B, H, T, dh]
        scores = (q @ k.transpose(2, 3)) * (1.0 / math.sqrt(c // h))
        future = torch.triu(torch.ones(t, t, dtype=torch.bool, device=u.device), diagonal=1)
        attended = torch.softmax(scores.masked_fill(future, float("-inf")), dim=3) @ v
        return self.proj(attended.transpose(1, 2).reshape(-1, c))


class TransformerBlock(nn.Module):
    def __init__(self, cfg, mode, l):
        super().__init__()
        self.attn, self.ffn = Attention(cfg, mode, 2 * l), Block(cfg, mode, 2 * l + 1)


class Head(nn.Module):
    def __init__(self, c, k):
        super().__init__()
        self.norm = RMSNorm(c)
        self.weight, self.bias = nn.Parameter(torch.empty(k, c)), nn.Parameter(torch.zeros(k))

    def forward(self, z):
        return F.linear(self.norm(z), self.weight, self.bias)


class Net(nn.Module):
    """Parameter names are DESIGN.md's checkpoint names (state_dict() keys)."""

    def __init__(self, cfg, mode):
        super().__init__()
        self.n = cfg.streams_for(mode)
        self.embed = nn.Linear(cfg.d_in(), cfg.width)
        self.blocks = nn.ModuleList(Block(cfg, mode, l) for l in range(cfg.depth))
        self.head = Head(cfg.width, cfg.classes())
        for name, p in self.named_parameters():         # DESIGN.md: biases start at 0
            if name.endswith(("embed.bias", "fc1.bias", "fc2.bias")):
                nn.init.zeros_(p)

    def forward(self, x):
        """Logits [B, K], and per block the streams after it and the coefficients."""
        h0 = self.embed(x)
        X = h0[:, None, :].expand(-1, self.n, -1)                       # expand ONCE
        streams, coeffs = [], []
        for block in self.blocks:
            X, c = block(X)
            streams.append(X)
            coeffs.append(c)
        return self.head(X.sum(dim=1)), streams, coeffs                 # collapse ONCE


class TransformerNet(nn.Module):
    """DESIGN.md section 1b; parameter names are its checkpoint names."""

    def __init__(self, cfg, mode):
        super().__init__()
        self.n = cfg.streams_for(mode)
        self.tok, self.pos = nn.Embedding(cfg.classes(), cfg.width), nn.Embedding(cfg.ctx, cfg.width)
        self.blocks = nn.ModuleList(TransformerBlock(cfg, mode, l) for l in range(cfg.depth))
        self.head = Head(cfg.width, cfg.classes())
        for name, p in self.named_parameters():          # DESIGN.md: biases start at 0
            if name.endswith(".bias") and not name.startswith("head.") and ".hc." not in name and ".mhc." not in name:
                nn.init.zeros_(p)

    def forward(self, x):
        """x: [B, T] tokens -> logits [B*T, V], and per sublayer the streams after it and the coefficients."""
        b, t = x.shape
        h0 = (self.tok(x) + self.pos.weight[:t]).reshape(b * t, -1)
        X = h0[:, None, :].expand(-1, self.n, -1)                       # expand ONCE, per position
        streams, coeffs = [], []
        for block in self.blocks:
            for unit in (block.attn, block.ffn):
                X, c = unit(X)
                streams.append(X)
                coeffs.append(c)
        return self.head(X.sum(dim=1)), streams, coeffs                 # collapse ONCE


def fresh_weights(cfg, generator):
    """DESIGN.md's initial weights from torch's seeded generator (shared tensors identical
    across variants): N(0, 1/fan_in), fc2 N(0, 1/(F C 2 depth)), biases 0, norms 1; the
    transformer's of section 1b."""
    c, fc, depth = cfg.width, cfg.ffn * cfg.width, cfg.depth
    normal = lambda shape, std: torch.randn(shape, generator=generator) * std
    if cfg.transformer():
        w = {"tok.weight": normal((cfg.classes(), c), 1.0), "pos.weight": normal((cfg.ctx, c), 0.01)}
        out_std = lambda fan_in: 1 / (math.sqrt(fan_in) * math.sqrt(4 * depth))
        for l in range(depth):
            w["blocks.%d.attn.qkv.weight" % l] = normal((3 * c, c), 1 / math.sqrt(c))
            w["blocks.%d.attn.proj.weight" % l] = normal((c, c), out_std(c))
            w["blocks.%d.ffn.fc1.weight" % l] = normal((fc, c), 1 / math.sqrt(c))
            w["blocks.%d.ffn.fc2.weight" % l] = normal((c, fc), out_std(fc))
        w["head.weight"] = normal((cfg.classes(), c), 1 / math.sqrt(c))
        return w
    w = {"embed.weight": normal((c, cfg.d_in()), 1 / math.sqrt(cfg.d_in()))}
    for l in range(depth):
        w["blocks.%d.fc1.weight" % l] = normal((fc, c), 1 / math.sqrt(c))
        w["blocks.%d.fc2.weight" % l] = normal((c, fc), 1 / (math.sqrt(fc) * math.sqrt(2 * depth)))
    w["head.weight"] = normal((cfg.classes(), c), 1 / math.sqrt(c))
    return w


# ------------------------------------------------------------------ what is measured (section 3)
def composite_gains(h_res):
    """Per row: prefix products H_l..H_0 (max absolute row sum) and suffix products
    H_{L-1}..H_l (max absolute column sum); per-row values, [B, L] each."""
    b, n, _ = h_res[0].shape
    fwd, bwd, acc = [], [None] * len(h_res), torch.eye(n).expand(b, n, n)
    for h in h_res:
        acc = h @ acc
        fwd.append(acc.abs().sum(dim=2).amax(dim=1))
    acc = torch.eye(n).expand(b, n, n)
    for l in reversed(range(len(h_res))):
        acc = acc @ h_res[l]
        bwd[l] = acc.abs().sum(dim=1).amax(dim=1)
    return torch.stack(fwd, 1), torch.stack(bwd, 1)


def finite(x):
    """A metric as the playground writes it: None (JSON null) when not finite, else the float32
    value with the shortest decimal that reads back as it (0.003, not 0.003000000026077032)."""
    x = float(x)
    if not math.isfinite(x):
        return None
    x = f32(x)
    for digits in range(1, 10):
        short = float("%.*g" % (digits, x))
        if f32(short) == x:
            return short
    return x


class Variant:
    """One variant's model, optimiser state and divergence record."""

    def __init__(self, cfg, mode, weights, device, ddp, complete=True):
        self.mode, self.cfg = mode, cfg
        net = TransformerNet(cfg, mode) if cfg.transformer() else Net(cfg, mode)
        with torch.no_grad():
            state = net.state_dict()
            missing = sorted(set(state) - set(weights))
            if complete and missing:
                raise SystemExit("error: %s: the weights lack %s" % (mode, ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")))
            for name, value in weights.items():
                if name not in state or state[name].shape != value.shape:
                    raise SystemExit("error: %s: tensor %s %s does not fit this model %s"
                                     % (mode, name, tuple(value.shape), tuple(state[name].shape) if name in state else "(no such tensor)"))
                state[name].copy_(value)
        self.net = net.to(device)
        self.model = ddp(self.net)
        self.params = list(self.net.named_parameters())
        decayed = ("embed.weight", "tok.weight", "qkv.weight", "proj.weight", "fc1.weight", "fc2.weight", "head.weight",
                   "hc.w_pre", "hc.w_res", "hc.w_post", "mhc.phi")
        self.decay = [any(name.endswith(d) for d in decayed) for name, _ in self.params]
        self.moments = [(torch.zeros_like(p), torch.zeros_like(p)) for _, p in self.params]
        self.diverged = None            # (step, block)
        self.stopped = False

    def segments(self):
        """Gradient segments of the metrics: the embeddings, each unit (block; or sublayer,
        attention then FFN), the head."""
        units = self.cfg.units()

        def seg(name):
            parts = name.split(".")
            if parts[0] == "head":
                return units + 1
            if parts[0] != "blocks":
                return 0
            return 1 + (2 * int(parts[1]) + (parts[2] == "ffn") if self.cfg.transformer() else int(parts[1]))
        return [seg(name) for name, _ in self.params]

    def update(self, lr, bc1, bc2, clip_scale):
        """AdamW (PyTorch semantics) or SGD with momentum, with decoupled weight decay, in the
        playground's operation order and f32 scalars."""
        cfg = self.cfg
        with torch.no_grad():
            for (_, p), decay, (m, v) in zip(self.params, self.decay, self.moments):
                g = p.grad * clip_scale
                if decay:
                    p.sub_(p * f32(lr * cfg.wd))
                if cfg.optimizer == "adamw":
                    m.mul_(cfg.beta1).add_(g * f32(1.0 - cfg.beta1))
                    v.mul_(cfg.beta2).add_(g * g * f32(1.0 - cfg.beta2))
                    p.sub_(f32(lr / bc1) * (m / (v.sqrt() / f32(math.sqrt(bc2)) + ADAM_EPS)))
                else:
                    m.mul_(cfg.momentum).add_(g)
                    p.sub_(lr * m)


# ------------------------------------------------------------------ training in lockstep
class Dist:
    """One process, or one rank of torchrun: rows of every batch are split across ranks."""

    def __init__(self, device, fsdp=False):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.fsdp = fsdp and self.world > 1
        self.rank = int(os.environ.get("RANK", "0"))
        self.device = device
        if self.world > 1:
            backend = "nccl" if device.type == "cuda" else "gloo"
            if device.type == "cuda":
                self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
                torch.cuda.set_device(self.device)
            dist.init_process_group(backend)

    def rows(self, total):
        """This rank's slice of `total` rows."""
        return slice(self.rank * total // self.world, (self.rank + 1) * total // self.world)

    def sum(self, t):
        """Sum over ranks of a host tensor (nccl reduces on the device, so it goes there and back)."""
        return self._reduce(t, dist.ReduceOp.SUM)

    def max(self, t):
        return self._reduce(t, dist.ReduceOp.MAX)

    def _reduce(self, t, op):
        if self.world == 1:
            return t
        on_device = t.to(self.device) if self.device.type == "cuda" else t
        dist.all_reduce(on_device, op=op)
        return on_device.cpu()

    def close(self):
        """0, the exit code of a finished run in one process; under torchrun every rank leaves
        the process here instead."""
        if self.world == 1:
            return 0
        # Every rank done before any tears the group down, then out without the interpreter's
        # teardown: under load, a rank that had destroyed its group and written everything still
        # aborted in that teardown ("terminate called without an active exception": 2 to 3 of 15
        # FSDP runs on two busy cores, torch 2.15 and gloo; none of 50 leaving this way).
        dist.barrier()
        dist.destroy_process_group()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)

    def wrap(self, net):
        if self.world == 1:
            return net
        if self.fsdp:
            # FSDP2: each block's parameters, gradients and moments are sharded across the ranks
            # (gathered for its forward and backward), for widths one device cannot hold.
            from torch.distributed.fsdp import fully_shard
            for block in net.blocks:
                fully_shard(block)
            fully_shard(net)
            held = sum(shard_of(p).numel() for p in net.parameters())
            log("FSDP2: rank 0 holds %d of the %d parameters" % (held, sum(p.numel() for p in net.parameters())))
            return net
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(net, device_ids=ids, broadcast_buffers=False)


def shard_of(t):
    """This rank's shard of a parameter or gradient under FSDP, else the tensor itself."""
    return t.to_local() if hasattr(t, "to_local") else t


def whole(t):
    """The whole tensor (gathered from every rank under FSDP)."""
    return t.full_tensor() if hasattr(t, "full_tensor") else t


def loss_and_correct(logits, y, cfg):
    """Per-row losses (0 where the target is -1) and the number right: rows, scored positions,
    or whole answers of the digit puzzles. Their divisors come from `scoring`."""
    y = y.reshape(-1)
    loss_rows = F.cross_entropy(logits, y, reduction="none", ignore_index=-1)
    right = logits.argmax(1) == y
    per_example, _, whole = scoring(cfg)
    if whole:
        return loss_rows, (right | (y < 0)).reshape(-1, per_example).all(1).sum().float()
    return loss_rows, (right & (y >= 0)).sum().float()


def evaluate(v, data, d):
    """Mean test loss (per scored target) and accuracy over the first EVAL_MAX_ROWS test examples."""
    total = min(len(data.test_y), EVAL_MAX_ROWS)
    part = d.rows(total)
    x, y = data.test_x[:total][part].to(d.device), data.test_y[:total][part].to(d.device)
    with torch.no_grad():
        loss_rows, correct = loss_and_correct(v.net(x)[0], y, v.cfg)
        sums = torch.stack([loss_rows.sum(), correct])
    sums = d.sum(sums.cpu().double())
    _, scored, whole = scoring(v.cfg)
    return finite(sums[0] / (total * scored)), finite(sums[1] / (total if whole else total * scored))


def train_step(v, t, x, y, batch, d, cfg, evaluate_now, measure, data):
    """One step of one variant; returns its metrics row when `measure`."""
    test = evaluate(v, data, d) if evaluate_now else (None, None)
    depth = cfg.units()                     # residual units: blocks, or the transformer's sublayers
    per_example, scored, whole = scoring(cfg)
    rows_total = batch * per_example        # rows of the global batch: examples, or positions
    logits, streams, coeffs = v.model(x)
    loss_rows, correct = loss_and_correct(logits, y, cfg)
    # DDP averages gradients over ranks, so each rank's loss is scaled to make that average the
    # global mean over the scored targets, whatever the split.
    (loss_rows.sum() * (d.world / (batch * scored))).backward()
    # Gradient sums of squares and non-finite counts per segment (embed, blocks, head), and the
    # streams' after each block: one transfer to the host.
    grads = [p.grad for _, p in v.params]
    per_param = torch.stack([torch.stack([(g * g).sum(), (~torch.isfinite(g)).sum().float()]) for g in map(shard_of, grads)]).cpu().double()
    if d.fsdp:
        per_param = d.sum(per_param)                      # each rank holds a shard
    sq, bad_grad = torch.zeros(depth + 2, dtype=torch.float64), torch.zeros(depth + 2, dtype=torch.float64)
    for (sumsq, bad), s in zip(per_param.tolist(), v.segments()):
        sq[s] += sumsq
        bad_grad[s] += bad
    n_c = streams[0].shape[1] * streams[0].shape[2] if depth else 1
    local = [loss_rows.detach().sum(), correct]                                      # loss, correct
    local += [(X.detach() * X.detach()).sum() for X in streams]                      # stream sumsq
    local += [(~torch.isfinite(X.detach())).sum().float() for X in streams]          # stream non-finite
    local = d.sum(torch.stack(local).cpu().double())
    loss = local[0] / (batch * scored)
    grad_norm = math.sqrt(float(sq.sum()))
    # Divergence (DESIGN.md section 3): the first block whose streams are not finite, else the
    # loss or the head's gradients (block = depth), else the last block with bad gradients,
    # else the embedding (block 0).
    if v.diverged is None:
        block = next((l for l in range(depth) if local[2 + depth + l] > 0), None)
        if block is None and (not math.isfinite(float(loss)) or bad_grad[depth + 1] > 0):
            block = depth
        if block is None:
            block = next((l for l in reversed(range(depth)) if bad_grad[1 + l] > 0), None)
        if block is None and bad_grad[0] > 0:
            block = 0
        if block is not None:
            v.diverged = (t, block)
    lr = f32(cfg.lr * (min(t + 1, cfg.warmup) / cfg.warmup if cfg.warmup else 1.0))   # linear warmup
    if v.diverged is None:
        bc1, bc2 = f32(1.0 - cfg.beta1 ** (t + 1)), f32(1.0 - cfg.beta2 ** (t + 1))
        clip_scale = min(1.0, cfg.clip / (grad_norm + 1e-6)) if cfg.clip > 0 else 1.0
        v.update(lr, bc1, bc2, f32(clip_scale))
    for _, p in v.params:
        p.grad = None
    if not measure:
        return None
    row = dict(step=t, mode=v.mode, loss=finite(loss), acc=finite(local[1] / (batch if whole else batch * scored)),
               test_loss=test[0], test_acc=test[1], grad_norm=finite(grad_norm),
               grad_norm_blocks=[finite(math.sqrt(sq[1 + l])) for l in range(depth)],
               stream_rms=[finite(math.sqrt(local[2 + l] / (rows_total * n_c))) for l in range(depth)])
    # Gains of the batch's H_res (identity for residual), averaged over all rows of all ranks.
    with torch.no_grad():
        rows = logits.shape[0]
        n = cfg.streams_for(v.mode)
        h_res = [c[2].detach() if c is not None else torch.eye(n).expand(rows, n, n) for c in coeffs]
        if depth:
            fwd, bwd = composite_gains([h.cpu() for h in h_res])
            sums = d.sum(torch.cat([fwd.double().sum(0), bwd.double().sum(0)]))
            gf, gb = [finite(g / rows_total) for g in sums[:depth]], [finite(g / rows_total) for g in sums[depth:]]
        else:
            gf = gb = []
        complete = lambda g: None if not g or None in g else max(g)
        row.update(gain_fwd=complete(gf), gain_bwd=complete(gb), gain_fwd_blocks=gf, gain_bwd_blocks=gb)
        ds = [None, None]
        if v.mode == "mhc" and depth:
            h = torch.stack([c.cpu() for c in h_res])
            err = torch.stack([(h.sum(3) - 1).abs().amax(), (h.sum(2) - 1).abs().amax()]).double()
            if not torch.isfinite(err).all():
                err = torch.full_like(err, float("inf"))
            ds = [finite(e) for e in d.max(err)]
        means = [[], [], []]
        if v.mode != "residual":
            for c in coeffs:
                part = torch.cat([c[0], c[1], c[2].flatten(1)], 1).detach().cpu().double().sum(0)
                part = d.sum(part) / rows_total
                for k, (lo, hi) in enumerate(((0, n), (n, 2 * n), (2 * n, n * n + 2 * n))):
                    means[k].append([finite(val) for val in part[lo:hi]])
    row.update(ds_err_row=ds[0], ds_err_col=ds[1],
               diverged_at=v.diverged[0] if v.diverged else None, diverged_block=v.diverged[1] if v.diverged else None,
               lr=finite(lr),
               h_pre=means[0], h_post=means[1], h_res=means[2])
    return row


def log(message):
    if int(os.environ.get("RANK", "0")) == 0:
        print(message, file=sys.stderr, flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, help="steps to train (default: the experiment's `steps`)")
    ap.add_argument("--device", choices=("cpu", "cuda", "mps"), help="default: cuda when available, else cpu")
    ap.add_argument("--metrics", help="write metrics as JSON lines (the playground's schema)")
    ap.add_argument("--save", metavar="PREFIX", help="save final weights as PREFIX.<mode>.safetensors (playground checkpoints)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="change a config key (repeatable)")
    ap.add_argument("--init", action="append", default=[], metavar="CKPT", help="start a variant from a checkpoint (repeatable)")
    ap.add_argument("--log-every", type=int, default=10, help="log and measure gains every N steps (default 10)")
    ap.add_argument("--fsdp", action="store_true", help="under torchrun: shard each variant with FSDP2 (fully_shard) instead of DDP")
    ap.add_argument("--grads", metavar="PREFIX", help="write step 0's loss and gradients as PREFIX.<mode>.safetensors and stop")
    ap.add_argument("--experiment", default=os.path.join(HERE, "experiment.json"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    with open(args.experiment) as f:
        experiment = json.load(f)
    cfg = Config(experiment)
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit("error: --set %s: expected key=value" % item)
        cfg.set(key.strip(), value)
    if args.steps is not None:
        cfg.set("steps", str(args.steps))
    steps = cfg.steps if args.steps is None else args.steps
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    d = Dist(device, args.fsdp)
    if args.fsdp and d.world == 1:
        log("note: --fsdp shards across the ranks of torchrun; with one process it trains unsharded")
    torch.manual_seed(cfg.seed)

    data_keys = {"task", "noise", "train_frac", "p", "seed"}
    if (cfg.task in TOKEN_TASKS) != cfg.transformer():
        raise SystemExit("error: task=%s trains %s; --set arch=%s too" % (cfg.task, "the transformer" if cfg.task in TOKEN_TASKS else "the MLP",
                                                                            "transformer" if cfg.task in TOKEN_TASKS else "mlp"))
    if cfg.transformer():
        if "text" in cfg.changed:
            raise SystemExit("error: the text is part of the export; export again from a page that trains on the other text")
        shipped = load_file(os.path.join(HERE, "data.safetensors"))
        cfg.__dict__["vocabulary_size"] = shipped["vocabulary"].numel()
        data = TokenData(cfg, shipped["text_tokens"].long())
    elif data_keys & set(cfg.changed):
        log("note: %s changed, so the data set is generated here by the playground's own generators"
            % ", ".join(sorted(data_keys & set(cfg.changed))))
        data = make_data(cfg)
    else:
        data = Data.load(os.path.join(HERE, "data.safetensors"), cfg.seed)
    shape_keys = {"arch", "task", "p", "depth", "width", "ffn", "streams", "seed", "ctx"}
    fresh = None
    if shape_keys & set(cfg.changed):
        log("note: %s changed, so the initial weights follow DESIGN.md's rules from torch's generator "
            "(seed %d), not the playground's" % (", ".join(sorted(shape_keys & set(cfg.changed))), cfg.seed))
        fresh = fresh_weights(cfg, torch.Generator().manual_seed(cfg.seed))
    inits = {}
    for path in args.init:
        w = load_file(path)
        with open(path, "rb") as f:
            header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
        query = dict(kv.split("=", 1) for kv in header.get("__metadata__", {}).get("config", "").split("&") if "=" in kv)
        mode = query.get("modes", "")
        if mode not in cfg.modes:
            raise SystemExit("error: %s holds a %r checkpoint, which is not among modes %s" % (path, mode, ",".join(cfg.modes)))
        inits[mode] = w
    variants = []
    for mode in cfg.modes:
        if mode in inits:
            weights, complete = inits[mode], True
        elif fresh is not None:
            weights, complete = fresh, False       # the rest follows DESIGN.md's constant rules
        else:
            weights, complete = load_file(os.path.join(HERE, "init.%s.safetensors" % mode)), True
        variants.append(Variant(cfg, mode, weights, d.device, d.wrap, complete))

    batch = cfg.batch
    if batch < d.world:
        raise SystemExit("error: batch %d is smaller than the %d ranks" % (batch, d.world))
    if args.grads:
        x, y = data.batch(0, batch)
        part = d.rows(batch)
        for v in variants:
            logits, _, _ = v.model(x[part].to(d.device))
            loss_rows, _ = loss_and_correct(logits, y[part].to(d.device), cfg)
            scored = scoring(cfg)[1]
            (loss_rows.sum() * (d.world / (batch * scored))).backward()
            loss = d.sum(loss_rows.detach().sum().double().cpu()) / (batch * scored)
            out = {"loss": torch.tensor([float(loss)], dtype=torch.float32)}
            out.update({"grad." + name: whole(p.grad).detach().cpu().contiguous() for name, p in v.params})   # every rank gathers
            if d.rank == 0:
                save_file(out, "%s.%s.safetensors" % (args.grads, v.mode), metadata={"config": cfg.query(v.mode)})
        return d.close()

    log("training %s for %d steps on %s%s: %s" % (", ".join(cfg.modes), steps, d.device,
        " x %d ranks" % d.world if d.world > 1 else "", cfg.query()))
    sink = open(args.metrics, "w") if args.metrics and d.rank == 0 else None
    start = time.time()
    last = {}
    for t in range(steps):
        running = [v for v in variants if not v.stopped]
        if not running:
            break
        measure = t % max(args.log_every, 1) == 0 or t % cfg.eval_every == 0 or t + 1 == steps
        x, y = data.batch(t, batch)
        part = d.rows(batch)
        x, y = x[part].to(d.device), y[part].to(d.device)
        for v in running:
            if v.diverged is not None and not measure:
                continue                  # frozen: reported at the next logged step, then stopped
            row = train_step(v, t, x, y, batch, d, cfg, t % cfg.eval_every == 0, measure, data)
            if row is None:
                continue
            last[v.mode] = row
            if sink:
                sink.write(json.dumps(row) + "\n")
                sink.flush()
            if v.diverged is not None:
                v.stopped = True
                unit = v.diverged[1]
                where = ("the head" if unit >= cfg.units() else
                         "block %d, %s" % (unit // 2, ("attention", "FFN")[unit % 2]) if cfg.transformer() else "block %d" % unit)
                log("%s diverged at step %d in %s" % (v.mode, v.diverged[0], where))
    elapsed = time.time() - start
    if d.rank == 0 and steps:
        print("%-9s %6s %9s %7s %9s %10s" % ("variant", "step", "loss", "acc", "test_loss", "gain_fwd"))
        for mode, r in last.items():       # the playground's columns
            fmt = lambda x, p: "-" if x is None else "%.*f" % (p, x)
            print("%-9s %6d %9s %7s %9s %10s" % (mode, r["step"], fmt(r["loss"], 4), fmt(r["acc"], 3),
                                                 fmt(r["test_loss"], 4), fmt(r["gain_fwd"], 4)))
        print("%d steps in %.1f s (%.1f steps/s)" % (steps, elapsed, steps / max(elapsed, 1e-9)))
    if args.save:
        for v in variants:
            path = "%s.%s.safetensors" % (args.save, v.mode)
            tensors = {name: whole(p).detach().cpu().contiguous() for name, p in v.params}   # every rank gathers
            if d.rank == 0:
                save_file(tensors, path, metadata={"config": cfg.query(v.mode)})
                log("saved %s weights to %s" % (v.mode, path))
    if sink:
        sink.close()
    return d.close()


if __name__ == "__main__":
    sys.exit(main())
