// One optimiser update over the flat parameter buffer (gradients and moments share its layout).
// AdamW (PyTorch semantics): p -= lr wd p where decay_mask = 1; m = b1 m + (1-b1) g;
//   v = b2 v + (1-b2) g^2; p -= (lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps).
// SGD with momentum (PyTorch): same decoupled decay; m = momentum m + g; p -= lr m.
// g = grad * clip_scale. lr (after warmup), bc1 = 1 - b1^t, bc2 = 1 - b2^t are written by the
// host into the metrics block each step; clip_scale and the divergence record by step_finalize.
// A diverged variant is frozen: no update. Gradients are zeroed after use (they accumulate +=).
struct OptimizerParams {
    len: u32, p_off: u32, g_off: u32, m_off: u32,
    v_off: u32, mask_off: u32, metrics_off: u32, kind: u32,
    beta1: f32, beta2: f32, eps: f32, wd: f32,
    momentum: f32, _pad0: u32, _pad1: u32, _pad2: u32,
}
@group(0) @binding(1) var<uniform> params: OptimizerParams;
const OPT_ADAMW: u32 = 0u;  // kernels/: OPT_ADAMW (anything else: SGD)

const SLOT_LR: u32 = 1u;
const SLOT_BC1: u32 = 2u;
const SLOT_BC2: u32 = 3u;
const SLOT_CLIP_SCALE: u32 = 7u;
const SLOT_DIVERGED_STEP: u32 = 8u;

// Set per op by the host (kernels/: OptimizerParams::quads) when every region starts at a
// multiple of 4 floats: a thread then updates four parameters from vec4 loads, and reads the
// metrics block's scalars once for the four. lavapipe turns every load into a loop over its SIMD
// lanes whatever its width, so that is a quarter of the load instructions. Each lane computes
// exactly what the thread per parameter computes.
override QUADS: bool = false;

// Parameters e .. e + count - 1 of the region at `base` (count 1 to 4; lanes past count repeat
// the last one and are never stored).
fn ld_lanes(base: u32, e: u32, count: u32) -> vec4<f32> {
    let i = base + e;
    if (!QUADS) { return vec4<f32>(ld(i)); }
    if (count == 4u) { return ld_vec4(i >> 2u); }
    return ld_first(i, count);
}
fn st_lanes(base: u32, e: u32, count: u32, value: vec4<f32>) {
    let i = base + e;
    if (!QUADS) {
        st(i, value.x);
    } else if (count == 4u) {
        st_vec4(i >> 2u, value);
    } else {
        st_first(i, value, count);
    }
}

@compute @workgroup_size(WG_1D)
fn optimizer_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let t = flat_thread(gid, groups);
    let e = select(t, 4u * t, QUADS);
    if (e >= params.len) { return; }
    let count = select(1u, min(4u, params.len - e), QUADS);
    let mo = params.metrics_off;
    let zero = vec4<f32>(0.0);
    if (ld(mo + SLOT_DIVERGED_STEP) >= 0.0) {
        st_lanes(params.g_off, e, count, zero);
        return;
    }
    let lr = ld(mo + SLOT_LR);
    let g = ld_lanes(params.g_off, e, count) * ld(mo + SLOT_CLIP_SCALE);
    var w = ld_lanes(params.p_off, e, count);
    w = select(w, w - lr * params.wd * w, ld_lanes(params.mask_off, e, count) > zero);
    if (params.kind == OPT_ADAMW) {
        let m = params.beta1 * ld_lanes(params.m_off, e, count) + (1.0 - params.beta1) * g;
        let v = params.beta2 * ld_lanes(params.v_off, e, count) + (1.0 - params.beta2) * g * g;
        st_lanes(params.m_off, e, count, m);
        st_lanes(params.v_off, e, count, v);
        let denom = sqrt(v) / sqrt(ld(mo + SLOT_BC2)) + params.eps;
        w = w - (lr / ld(mo + SLOT_BC1)) * (m / denom);
    } else {
        let m = params.momentum * ld_lanes(params.m_off, e, count) + g;
        st_lanes(params.m_off, e, count, m);
        w = w - lr * m;
    }
    st_lanes(params.p_off, e, count, w);
    st_lanes(params.g_off, e, count, zero);
}
