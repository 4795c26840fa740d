#!/usr/bin/env python3
"""Independent float64 reference of DESIGN.md section 1 (residual / HC / mHC), used to
check the engine's loss and gradients.  HIPS autograd + numpy, nothing shared with the engine.

  python3 tests/autograd_reference.py --weights W.safetensors --batch B.safetensors \
      --grads G.safetensors [--tol 2e-3]      exit 0 PASS, 1 FAIL, 2 bad input
  python3 tests/autograd_reference.py --weights W.safetensors --batch B.safetensors \
      --gains M.jsonl [--tol 2e-3]            the step-0 composite gains of `train --init W
                                              --metrics M.jsonl` (batch B = `batch --step 0`)
  python3 tests/autograd_reference.py --self-test
"""
import argparse, os, re, sys, tempfile
from urllib.parse import parse_qsl
import numpy as onp
import autograd.numpy as np
from autograd import grad, value_and_grad
from autograd.extend import primitive, defvjp

DEFAULTS = dict(modes="residual,hc,mhc", streams="4", act="gelu", sinkhorn_iters="20",
                sinkhorn_eps="1e-6", precision="f32", heads="4")
MODES = ("residual", "hc", "mhc")

# ---------------------------------------------------------------- model (DESIGN.md section 1)
def rms(v):
    return np.sqrt(np.mean(v ** 2, axis=-1, keepdims=True) + 1e-6)

def sigma(x):
    return 0.5 * (np.tanh(0.5 * x) + 1.0)          # logistic sigmoid, overflow-free

def act_fn(name, x):
    if name == "gelu":
        return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "tanh":
        return np.tanh(x)
    raise ValueError("unknown act %r" % name)

@primitive
def round_to_f16(X):
    return X.astype(onp.float16).astype(onp.float64)
defvjp(round_to_f16, lambda ans, X: lambda g: g)    # straight-through backward

def F_l(P, l, u, act, p=None):                       # fc2(act(fc1(norm_l(u))))   u: [B, C]
    p = p or "blocks.%d." % l
    a = u / rms(u) * P[p + "norm.weight"]
    a = act_fn(act, a @ P[p + "fc1.weight"].T + P[p + "fc1.bias"])
    return a @ P[p + "fc2.weight"].T + P[p + "fc2.bias"]

def hc_coeffs(P, l, X, p=None):                      # X: [B, n, C]
    p = (p or "blocks.%d." % l) + "hc."
    z = X / rms(X)                                   # z_i = X[i] / rms(X[i]), no weight
    sa, sb = P[p + "s_alpha"], P[p + "s_beta"]
    H_pre = sa * np.tanh(np.einsum("bic,c->bi", z, P[p + "w_pre"])) + P[p + "b_pre"]
    H_res = sa * np.tanh(np.einsum("bic,kc->bki", z, P[p + "w_res"])) + P[p + "b_res"]
    H_post = sb * np.tanh(np.einsum("bkc,c->bk", z, P[p + "w_post"])) + P[p + "b_post"]
    return H_pre, H_post, H_res

def sinkhorn(Lg, iters, eps):                        # Lg: [B, n, n], rows k, columns i
    B, n, _ = Lg.shape
    M = np.exp(Lg - np.max(np.reshape(Lg, (B, n * n)), axis=1)[:, None, None])
    for _ in range(iters):
        M = M / (np.sum(M, axis=1, keepdims=True) + eps)   # every column
        M = M / (np.sum(M, axis=2, keepdims=True) + eps)   # every row (last)
    return M

def mhc_coeffs(P, l, X, cfg, p=None):
    p = (p or "blocks.%d." % l) + "mhc."
    B, n, C = X.shape
    v = np.reshape(X, (B, n * C))                    # stream-major: v[j*C + c] = X[j][c]
    m = (v @ P[p + "phi"].T) / rms(v)                # [B, n*n + 2n]
    al, bias = P[p + "alpha"], P[p + "bias"]
    H_pre = sigma(al[0] * m[:, :n] + bias[:n])
    H_post = 2.0 * sigma(al[1] * m[:, n:2 * n] + bias[n:2 * n])
    Lg = al[2] * np.reshape(m[:, 2 * n:], (B, n, n)) + np.reshape(bias[2 * n:], (n, n))
    return H_pre, H_post, sinkhorn(Lg, cfg["sinkhorn_iters"], cfg["sinkhorn_eps"])

def h_res_per_block(P, cfg, x):
    """Every block's H_res for every row, [L][B, n, n], from the same forward as the loss."""
    n, out = cfg["n"], []
    h0 = x @ P["embed.weight"].T + P["embed.bias"]
    X = onp.repeat(h0[:, None, :], n, axis=1)
    for l in range(cfg["depth"]):
        if cfg["mode"] == "residual":
            X = X + F_l(P, l, X[:, 0, :], cfg["act"])[:, None, :]
            out.append(onp.ones((x.shape[0], 1, 1)))
        else:
            H_pre, H_post, H_res = hc_coeffs(P, l, X) if cfg["mode"] == "hc" else mhc_coeffs(P, l, X, cfg)
            y_l = F_l(P, l, onp.einsum("bi,bic->bc", H_pre, X), cfg["act"])
            X = onp.einsum("bki,bic->bkc", H_res, X) + H_post[:, :, None] * y_l[:, None, :]
            out.append(H_res)
        if cfg["precision"] == "f16":
            X = round_to_f16(X)
    return out

def composite_gains(H):
    """DESIGN.md section 3: per row, prefix products P_l = H_l..H_0 (max absolute row sum) and
    suffix products S_l = H_{L-1}..H_l (max absolute column sum), each averaged over rows."""
    B, n, _ = H[0].shape
    fwd, bwd, acc = [], [None] * len(H), onp.broadcast_to(onp.eye(n), (B, n, n))
    for Hl in H:
        acc = Hl @ acc
        fwd.append(onp.mean(onp.max(onp.sum(onp.abs(acc), axis=2), axis=1)))
    acc = onp.broadcast_to(onp.eye(n), (B, n, n))
    for l in reversed(range(len(H))):
        acc = acc @ H[l]
        bwd[l] = onp.mean(onp.max(onp.sum(onp.abs(acc), axis=1), axis=1))
    return onp.array(fwd), onp.array(bwd)

def check_gains(wpath, bpath, mpath, tol):
    import json
    W, meta = load(wpath)
    cfg, _ = config_from_weights(W, meta)
    Bt, _ = load(bpath)
    P = {k: v.astype(onp.float64) for k, v in W.items()}
    fwd, bwd = composite_gains(h_res_per_block(P, cfg, Bt["x"].astype(onp.float64)))
    try:
        rows = [json.loads(line) for line in open(mpath)]
        row = next(r for r in rows if r["step"] == 0 and r["mode"] == cfg["mode"])
        eng_fwd, eng_bwd = onp.array(row["gain_fwd_blocks"], float), onp.array(row["gain_bwd_blocks"], float)
    except (OSError, ValueError, KeyError, TypeError, StopIteration) as e:
        raise BadInput("metrics %s: no step-0 row with gains for %s (%s)" % (mpath, cfg["mode"], e))
    if eng_fwd.shape != fwd.shape or eng_bwd.shape != bwd.shape:
        raise BadInput("metrics: %d blocks of gains, the weights have %d" % (len(eng_fwd), len(fwd)))
    err = max(onp.max(onp.abs(eng_fwd - fwd) / fwd), onp.max(onp.abs(eng_bwd - bwd) / bwd))
    print("composite gain (%s, depth %d): ref fwd %s bwd %s; engine fwd %s bwd %s; max relerr %.3e"
          % (cfg["mode"], cfg["depth"], onp.round(fwd, 6), onp.round(bwd, 6), eng_fwd, eng_bwd, err))
    ok = bool(onp.isfinite(err) and err <= tol)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1

def forward(P, cfg, x, y, return_streams=False):
    n = cfg["n"]
    h0 = x @ P["embed.weight"].T + P["embed.bias"]                  # [B, C]
    X = np.repeat(h0[:, None, :], n, axis=1)                        # expand ONCE: [B, n, C]
    for l in range(cfg["depth"]):
        if cfg["mode"] == "residual":
            X = X + F_l(P, l, X[:, 0, :], cfg["act"])[:, None, :]
        else:
            coeffs = hc_coeffs(P, l, X) if cfg["mode"] == "hc" else mhc_coeffs(P, l, X, cfg)
            H_pre, H_post, H_res = coeffs
            u = np.einsum("bi,bic->bc", H_pre, X)
            y_l = F_l(P, l, u, cfg["act"])
            X = np.einsum("bki,bic->bkc", H_res, X) + H_post[:, :, None] * y_l[:, None, :]
        if cfg["precision"] == "f16":
            X = round_to_f16(X)
    if return_streams:
        return X
    z = np.sum(X, axis=1)                                           # collapse ONCE
    logits = (z / rms(z) * P["head.norm.weight"]) @ P["head.weight"].T + P["head.bias"]
    mx = np.max(logits, axis=1, keepdims=True)
    lse = np.log(np.sum(np.exp(logits - mx), axis=1)) + mx[:, 0]
    return np.mean(lse - logits[onp.arange(len(y)), y])

# ---------------------------------------------------------------- the transformer (DESIGN.md section 1b)
def attention(P, p, u, heads):                       # u: [B, T, C] -> y: [B, T, C]
    B, T, C = u.shape
    dh = C // heads
    a = u / rms(u) * P[p + "norm.weight"]
    qkv = a @ P[p + "qkv.weight"].T + P[p + "qkv.bias"]                       # [B, T, 3C]
    split = lambda part: np.transpose(np.reshape(qkv[:, :, part * C:(part + 1) * C], (B, T, heads, dh)), (0, 2, 1, 3))
    q, k, v = split(0), split(1), split(2)                                       # [B, H, T, dh]
    S = np.einsum("bhid,bhjd->bhij", q, k) / onp.sqrt(dh)
    S = np.where(onp.tril(onp.ones((T, T))) > 0, S, -1e30)                      # causal: j <= i
    S = S - np.max(S, axis=3, keepdims=True)
    A = np.exp(S) / np.sum(np.exp(S), axis=3, keepdims=True)
    o = np.reshape(np.transpose(A @ v, (0, 2, 1, 3)), (B, T, C))
    return o @ P[p + "proj.weight"].T + P[p + "proj.bias"]

def wrapped(P, cfg, p, X, F):
    """One sublayer wrapped by the variant: X [R, n, C] -> X', with F mapping u [R, C] to y."""
    if cfg["mode"] == "residual":
        X = X + F(X[:, 0, :])[:, None, :]
    else:
        H_pre, H_post, H_res = hc_coeffs(P, 0, X, p) if cfg["mode"] == "hc" else mhc_coeffs(P, 0, X, cfg, p)
        y = F(np.einsum("bi,bic->bc", H_pre, X))
        X = np.einsum("bki,bic->bkc", H_res, X) + H_post[:, :, None] * y[:, None, :]
    return round_to_f16(X) if cfg["precision"] == "f16" else X

def forward_transformer(P, cfg, x, y):
    """x: [B, T] tokens, y: [B, T] targets (-1: not scored); mean loss over scored positions."""
    B, T = x.shape
    n, C = cfg["n"], P["tok.weight"].shape[1]
    h0 = np.reshape(P["tok.weight"][x] + P["pos.weight"][None, :T, :], (B * T, C))
    X = np.repeat(h0[:, None, :], n, axis=1)                                     # [B*T, n, C]
    for l in range(cfg["depth"]):
        p = "blocks.%d." % l
        attn = lambda u: np.reshape(attention(P, p + "attn.", np.reshape(u, (B, T, C)), cfg["heads"]), (B * T, C))
        X = wrapped(P, cfg, p + "attn.", X, attn)
        X = wrapped(P, cfg, p + "ffn.", X, lambda u: F_l(P, l, u, cfg["act"], p + "ffn."))
    z = np.sum(X, axis=1)
    logits = (z / rms(z) * P["head.norm.weight"]) @ P["head.weight"].T + P["head.bias"]
    mx = np.max(logits, axis=1, keepdims=True)
    lse = np.log(np.sum(np.exp(logits - mx), axis=1)) + mx[:, 0]
    t = onp.reshape(y, -1)
    scored = t >= 0
    picked = logits[onp.arange(B * T), onp.where(scored, t, 0)]
    return np.sum(np.where(scored, lse - picked, 0.0)) / onp.sum(scored)

def transformer_shapes(mode, L, n, C, T, F, V):
    s = {"tok.weight": (V, C), "pos.weight": (T, C)}
    for l in range(L):
        for sub in ("attn", "ffn"):
            p = "blocks.%d.%s." % (l, sub)
            s[p + "norm.weight"] = (C,)
            if sub == "attn":
                s.update({p + "qkv.weight": (3 * C, C), p + "qkv.bias": (3 * C,), p + "proj.weight": (C, C), p + "proj.bias": (C,)})
            else:
                s.update({p + "fc1.weight": (F * C, C), p + "fc1.bias": (F * C,), p + "fc2.weight": (C, F * C), p + "fc2.bias": (C,)})
            if mode == "hc":
                s.update({p + "hc.w_pre": (C,), p + "hc.w_res": (n, C), p + "hc.w_post": (C,), p + "hc.s_alpha": (1,),
                          p + "hc.s_beta": (1,), p + "hc.b_pre": (n,), p + "hc.b_res": (n, n), p + "hc.b_post": (n,)})
            if mode == "mhc":
                s.update({p + "mhc.phi": (n * n + 2 * n, n * C), p + "mhc.alpha": (3,), p + "mhc.bias": (n * n + 2 * n,)})
    s.update({"head.norm.weight": (C,), "head.weight": (V, C), "head.bias": (V,)})
    return s

def model_loss(P, cfg, x, y):
    return forward_transformer(P, cfg, x, y) if cfg.get("arch") == "transformer" else forward(P, cfg, x, y)

# ---------------------------------------------------------------- parameters and config
def param_shapes(mode, L, n, C, d_in, F, K):
    s = {"embed.weight": (C, d_in), "embed.bias": (C,)}
    for l in range(L):
        p = "blocks.%d." % l
        s.update({p + "norm.weight": (C,), p + "fc1.weight": (F * C, C), p + "fc1.bias": (F * C,),
                  p + "fc2.weight": (C, F * C), p + "fc2.bias": (C,)})
        if mode == "hc":
            s.update({p + "hc.w_pre": (C,), p + "hc.w_res": (n, C), p + "hc.w_post": (C,),
                      p + "hc.s_alpha": (1,), p + "hc.s_beta": (1,), p + "hc.b_pre": (n,),
                      p + "hc.b_res": (n, n), p + "hc.b_post": (n,)})
        if mode == "mhc":
            s.update({p + "mhc.phi": (n * n + 2 * n, n * C), p + "mhc.alpha": (3,),
                      p + "mhc.bias": (n * n + 2 * n,)})
    s.update({"head.norm.weight": (C,), "head.weight": (K, C), "head.bias": (K,)})
    return s

class BadInput(Exception):
    pass

def load(path):
    from safetensors import safe_open
    try:
        with safe_open(path, framework="np") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, (f.metadata() or {})
    except Exception as e:
        raise BadInput("cannot read %s: %s" % (path, e))

def config_from_weights(W, meta):
    q = dict(DEFAULTS, **dict(parse_qsl(meta.get("config", ""))))
    if "modes" not in dict(parse_qsl(meta.get("config", ""))):     # infer if not stated
        q["modes"] = "mhc" if any(".mhc." in k for k in W) else "hc" if any(".hc." in k for k in W) else "residual"
    if q["modes"] not in MODES:
        raise BadInput("config modes=%r must name exactly one of %s" % (q["modes"], MODES))
    if "tok.weight" in W:
        try:
            V, C = W["tok.weight"].shape
            T = W["pos.weight"].shape[0]
            F = W["blocks.0.ffn.fc1.weight"].shape[0] // C
            cfg = dict(arch="transformer", mode=q["modes"], act=q["act"], precision=q["precision"], heads=int(q["heads"]),
                       depth=len({int(m) for m in re.findall(r"^blocks\.(\d+)\.", "\n".join(W), re.M)}),
                       n=1 if q["modes"] == "residual" else int(q["streams"]),
                       sinkhorn_iters=int(q["sinkhorn_iters"]), sinkhorn_eps=float(q["sinkhorn_eps"]))
        except (KeyError, ValueError, IndexError) as e:
            raise BadInput("bad weights/config: %r" % (e,))
        if C % cfg["heads"]:
            raise BadInput("heads=%d does not divide width %d" % (cfg["heads"], C))
        expect = transformer_shapes(cfg["mode"], cfg["depth"], cfg["n"], C, T, F, V)
        check_names_shapes("weights", W, expect, "")
        return cfg, expect
    try:
        C, d_in = W["embed.weight"].shape
        K = W["head.weight"].shape[0]
        F = W["blocks.0.fc1.weight"].shape[0] // C
        cfg = dict(mode=q["modes"], act=q["act"], precision=q["precision"],
                   depth=len({int(m) for m in re.findall(r"^blocks\.(\d+)\.", "\n".join(W), re.M)}),
                   n=1 if q["modes"] == "residual" else int(q["streams"]),
                   sinkhorn_iters=int(q["sinkhorn_iters"]), sinkhorn_eps=float(q["sinkhorn_eps"]))
    except (KeyError, ValueError, IndexError) as e:
        raise BadInput("bad weights/config: %r" % (e,))
    if cfg["act"] not in ("gelu", "relu", "tanh") or cfg["precision"] not in ("f32", "f16"):
        raise BadInput("bad act/precision in config: %s/%s" % (cfg["act"], cfg["precision"]))
    expect = param_shapes(cfg["mode"], cfg["depth"], cfg["n"], C, d_in, F, K)
    check_names_shapes("weights", W, expect, "")
    return cfg, expect

def check_names_shapes(what, T, expect, prefix):
    names = {prefix + k: v for k, v in expect.items()}
    missing, extra = sorted(set(names) - set(T)), sorted(set(T) - set(names))
    if missing or extra:
        raise BadInput("%s: missing %s, extra %s" % (what, missing[:5], extra[:5]))
    for k, shp in names.items():
        if tuple(T[k].shape) != tuple(shp):
            raise BadInput("%s: %s has shape %s, expected %s" % (what, k, tuple(T[k].shape), shp))

# ---------------------------------------------------------------- compare against the engine
def check(wpath, bpath, gpath, tol):
    W, meta = load(wpath)
    cfg, shapes = config_from_weights(W, meta)
    Bt, _ = load(bpath)
    G, _ = load(gpath)
    if "x" not in Bt or "y" not in Bt:
        raise BadInput("batch: needs tensors x and y")
    K = shapes["head.bias"][0]
    if cfg.get("arch") == "transformer":
        x, y = Bt["x"].astype(onp.int64), Bt["y"].astype(onp.int64)
        T = shapes["pos.weight"][0]
        if x.ndim != 2 or x.shape[1] != T or y.shape != x.shape or x.shape[0] == 0:
            raise BadInput("batch: x %s / y %s do not match ctx=%d" % (x.shape, y.shape, T))
        if x.min() < 0 or x.max() >= K or y.min() < -1 or y.max() >= K or not (y >= 0).any():
            raise BadInput("batch: token or target out of range 0..%d (targets may be -1)" % (K - 1))
    else:
        x, y = Bt["x"].astype(onp.float64), Bt["y"].astype(onp.int64)
        d_in = shapes["embed.weight"][1]
        if x.ndim != 2 or x.shape[1] != d_in or y.shape != (x.shape[0],) or x.shape[0] == 0:
            raise BadInput("batch: x %s / y %s do not match d_in=%d" % (x.shape, y.shape, d_in))
        if y.min() < 0 or y.max() >= K:
            raise BadInput("batch: label out of range 0..%d" % (K - 1))
    check_names_shapes("grads", {k: v for k, v in G.items() if k != "loss"}, shapes, "grad.")
    if "loss" not in G or G["loss"].size != 1:
        raise BadInput("grads: needs loss [1]")
    P = {k: v.astype(onp.float64) for k, v in W.items()}
    loss, g = value_and_grad(lambda P: model_loss(P, cfg, x, y))(P)
    print("config: %s mode=%s depth=%d n=%d act=%s precision=%s sinkhorn=%d/%g batch=%d"
          % (cfg.get("arch", "mlp"), cfg["mode"], cfg["depth"], cfg["n"], cfg["act"], cfg["precision"],
             cfg["sinkhorn_iters"], cfg["sinkhorn_eps"], len(y)))
    loss_err = abs(float(G["loss"].reshape(())) - loss) / max(abs(loss), 1e-12)
    print("%-28s ref=%.6e engine=%.6e relerr=%.3e" % ("loss", loss, float(G["loss"].reshape(())), loss_err))
    ref_all = onp.sqrt(sum(onp.sum(v ** 2) for v in g.values()))
    floor = 1e-3 * ref_all / onp.sqrt(len(g))
    worst, worst_err = "loss", (loss_err if onp.isfinite(loss_err) else onp.inf)
    for k in shapes:
        ref, eng = g[k], G["grad." + k].astype(onp.float64)
        err = onp.linalg.norm(eng - ref) / max(onp.linalg.norm(ref), floor, 1e-300)
        err = err if onp.isfinite(err) else onp.inf
        print("%-28s |ref|=%.4e err=%.3e" % (k, onp.linalg.norm(ref), err))
        if err > worst_err:
            worst, worst_err = k, err
    ok = worst_err <= tol
    print("%s worst=%s err=%.3e tol=%g" % ("PASS" if ok else "FAIL", worst, worst_err, tol))
    return 0 if ok else 1

# ---------------------------------------------------------------- self-test
def make_params(mode, L, n, C, d_in, F, K, rng, init):
    """Shared tensors from rng (same draws for every mode); variant tensors spec-init or random."""
    P = {}
    for k, shp in param_shapes("residual", L, n, C, d_in, F, K).items():
        fan = shp[1] if len(shp) == 2 else 1
        P[k] = (1.0 if k.endswith("norm.weight") else 0.0) + rng.standard_normal(shp) / onp.sqrt(fan) * (0.3 if len(shp) == 1 else 1.0)
    vr = onp.random.default_rng(rng.integers(1 << 30))
    for l in range(L):
        p, e = "blocks.%d." % l, onp.eye(n)[l % n]
        if mode == "hc":
            P.update({p + "hc.w_pre": onp.zeros(C), p + "hc.w_res": onp.zeros((n, C)), p + "hc.w_post": onp.zeros(C),
                      p + "hc.s_alpha": onp.full(1, 0.01), p + "hc.s_beta": onp.full(1, 0.01),
                      p + "hc.b_pre": e, p + "hc.b_res": onp.eye(n), p + "hc.b_post": onp.ones(n)})
        if mode == "mhc":
            P.update({p + "mhc.phi": onp.zeros((n * n + 2 * n, n * C)), p + "mhc.alpha": onp.full(3, 0.01),
                      p + "mhc.bias": onp.concatenate([-3 + 6 * e, onp.zeros(n), 4 * onp.eye(n).ravel()])})
        if not init:                                  # perturb variant tensors so every path matters
            for k in [k for k in P if k.startswith(p + mode + ".")]:
                P[k] = P[k] + 0.5 * vr.standard_normal(P[k].shape)
    return P

def fd_check(P, cfg, x, y, rng, coords=4, h=1e-5, loss=None):
    f = loss or (lambda P: forward(P, cfg, x, y))
    g, worst = grad(f)(P), 0.0
    for k in P:
        for _ in range(coords):
            idx = tuple(rng.integers(s) for s in P[k].shape)
            Pp, Pm = dict(P), dict(P)
            Pp[k], Pm[k] = P[k].copy(), P[k].copy()
            Pp[k][idx] += h; Pm[k][idx] -= h
            fd = (f(Pp) - f(Pm)) / (2 * h)
            worst = max(worst, abs(fd - g[k][idx]) / (1e-7 + abs(g[k][idx])))   # abs floor: FD noise ~1e-9
    return worst

def self_test():
    from safetensors.numpy import save_file
    L, C, d_in, F, K, B = 3, 8, 3, 2, 4, 6
    rng = onp.random.default_rng(7)
    x, y = rng.standard_normal((B, d_in)), rng.integers(0, K, B)
    fails = []
    def expect(cond, msg):
        print(("ok   " if cond else "FAIL ") + msg)
        if not cond: fails.append(msg)
    g = grad(lambda v: np.sum(round_to_f16(v) * onp.arange(3.0)))(onp.array([0.1, 0.2, 0.3]))
    expect(onp.array_equal(g, onp.arange(3.0)), "round_to_f16 backward is the identity")
    acts = iter(["gelu", "tanh", "relu", "gelu", "tanh"] * 2)
    for mode, n in [("residual", 1), ("hc", 1), ("hc", 3), ("mhc", 1), ("mhc", 3)]:
        cfg = dict(mode=mode, depth=L, n=n, act=next(acts), precision="f32", sinkhorn_iters=5, sinkhorn_eps=1e-6)
        P = make_params(mode, L, n, C, d_in, F, K, onp.random.default_rng(1), init=False)
        w = fd_check(P, cfg, x, y, rng)
        expect(w < 1e-3, "FD  %-8s n=%d act=%-4s worst rel err %.2e" % (mode, n, cfg["act"], w))
        l32 = forward(P, cfg, x, y)
        l16 = forward(P, dict(cfg, precision="f16"), x, y)
        d = abs(l16 - l32) / abs(l32)
        g16 = grad(lambda P: forward(P, dict(cfg, precision="f16"), x, y))(P)
        fin = all(onp.all(onp.isfinite(v)) for v in g16.values())
        expect(0 < d < 1e-2 and fin, "f16 %-8s n=%d loss f32 %.8f f16 %.8f rel diff %.2e, grads finite" % (mode, n, l32, l16, d))
    for mode, n, prec in [("residual", 1, "f32"), ("hc", 2, "f32"), ("mhc", 2, "f32"), ("hc", 2, "f16")]:   # the transformer
        Lt, Ct, Tt, Vt, H = 2, 6, 5, 7, 2
        cfg = dict(arch="transformer", mode=mode, depth=Lt, n=n, act="gelu", precision=prec, heads=H, sinkhorn_iters=4, sinkhorn_eps=1e-6)
        r = onp.random.default_rng(11)
        P = {k: (1.0 if k.endswith("norm.weight") else 0.0) + 0.5 * r.standard_normal(shp)
             for k, shp in transformer_shapes(mode, Lt, n, Ct, Tt, 2, Vt).items()}
        xt, yt = r.integers(0, Vt, (3, Tt)), r.integers(0, Vt, (3, Tt))
        yt[0, :2] = -1                                # unscored positions
        f = lambda P: forward_transformer(P, cfg, xt, yt)
        if prec == "f32":
            w = fd_check(P, cfg, xt, yt, r, coords=3, loss=f)
            expect(w < 1e-3, "FD  transformer %-8s n=%d worst rel err %.2e" % (mode, n, w))
        else:
            g16 = grad(f)(P)
            expect(all(onp.all(onp.isfinite(v)) for v in g16.values()), "f16 transformer %s: gradients finite" % mode)
        # causal: a later token changes no earlier position's loss
        y_first = onp.full_like(yt, -1); y_first[:, :2] = yt[:, :2]
        x2 = xt.copy(); x2[:, 4] = (x2[:, 4] + 1) % Vt
        d = abs(forward_transformer(P, cfg, xt, y_first) - forward_transformer(P, cfg, x2, y_first))
        expect(d < 1e-12, "transformer %s: causal (later token moves earlier loss by %.1e)" % (mode, d))
    for n in (1, 3):                                  # initialisation claims
        base = dict(depth=L, act="gelu", precision="f32", sinkhorn_iters=20, sinkhorn_eps=1e-6)
        cfg_r, cfg_h, cfg_m = dict(base, mode="residual", n=1), dict(base, mode="hc", n=n), dict(base, mode="mhc", n=n)
        Pr, Ph, Pm = (make_params(m, L, n, C, d_in, F, K, onp.random.default_rng(2), init=True) for m in MODES)
        lr, lh, lm = (forward(P, c, x, y) for P, c in ((Pr, cfg_r), (Ph, cfg_h), (Pm, cfg_m)))
        Xr, Xh = forward(Pr, cfg_r, x, y, True), forward(Ph, cfg_h, x, y, True)
        sd = onp.max(onp.abs(Xh - Xr))
        expect(sd <= 1e-12, "init n=%d: every hc stream == residual stream (max diff %.1e)" % (n, sd))
        # collapse z = n*h and rms() has +1e-6 inside the sqrt, so for n>1 the head sees
        # n*h/sqrt(n^2 m + 1e-6) instead of h/sqrt(m + 1e-6): equal only up to ~1e-6 relative.
        tol = 1e-12 if n == 1 else 1e-5
        expect(abs(lh - lr) <= tol, "init n=%d: loss residual %.15f hc %.15f diff %.1e (tol %g)" % (n, lr, lh, abs(lh - lr), tol))
        print("info init n=%d: mhc loss %.15f (diff to residual %.2e; not expected to match)" % (n, lm, abs(lm - lr)))
    with tempfile.TemporaryDirectory() as td:         # end-to-end through the file interface
        cfg = dict(mode="mhc", depth=L, n=3, act="tanh", precision="f16", sinkhorn_iters=5, sinkhorn_eps=1e-6)
        P = make_params("mhc", L, 3, C, d_in, F, K, onp.random.default_rng(3), init=False)
        P32 = {k: v.astype(onp.float32) for k, v in P.items()}
        loss, g = value_and_grad(lambda P: forward(P, cfg, x.astype(onp.float32).astype(onp.float64), y))(
            {k: v.astype(onp.float64) for k, v in P32.items()})
        pw, pb, pg = (os.path.join(td, s) for s in ("w.st", "b.st", "g.st"))
        save_file(P32, pw, metadata={"config": "v=1&seed=1&modes=mhc&depth=3&streams=3&width=8&act=tanh&sinkhorn_iters=5&precision=f16"})
        save_file({"x": x.astype(onp.float32), "y": y.astype(onp.int32)}, pb)
        G = {"grad." + k: v.astype(onp.float32) for k, v in g.items()}
        G["loss"] = onp.array([loss], onp.float32)
        save_file(G, pg)
        expect(check(pw, pb, pg, 2e-3) == 0, "file interface: own gradients PASS")
        G["grad.blocks.1.mhc.phi"] = G["grad.blocks.1.mhc.phi"] * 1.01
        save_file(G, pg)
        expect(check(pw, pb, pg, 2e-3) == 1, "file interface: 1% error in one tensor FAILs")
        del G["grad.head.bias"]
        save_file(G, pg)
        try:
            check(pw, pb, pg, 2e-3); expect(False, "file interface: missing tensor is bad input")
        except BadInput as e:
            expect(True, "file interface: missing tensor is bad input (%s)" % e)
    print("SELF-TEST %s" % ("PASS" if not fails else "FAIL (%d)" % len(fails)))
    return 0 if not fails else 1

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights"); ap.add_argument("--batch"); ap.add_argument("--grads")
    ap.add_argument("--gains", help="metrics .jsonl of `train --init WEIGHTS`: check its step-0 composite gains")
    ap.add_argument("--tol", type=float, default=2e-3)
    ap.add_argument("--self-test", action="store_true")
    a = ap.parse_args()
    if a.self_test:
        return self_test()
    if not (a.weights and a.batch and (a.grads or a.gains)):
        print("error: --weights, --batch and --grads or --gains are required (or --self-test)"); return 2
    try:
        if a.gains:
            return check_gains(a.weights, a.batch, a.gains, a.tol)
        return check(a.weights, a.batch, a.grads, a.tol)
    except BadInput as e:
        print("error: %s" % e); return 2

if __name__ == "__main__":
    sys.exit(main())
