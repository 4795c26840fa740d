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
const OPT_ADAMW: u32 = 0u;  // kernels.rs: OPT_ADAMW (anything else: SGD)

const SLOT_LR: u32 = 1u;
const SLOT_BC1: u32 = 2u;
const SLOT_BC2: u32 = 3u;
const SLOT_CLIP_SCALE: u32 = 7u;
const SLOT_DIVERGED_STEP: u32 = 8u;

@compute @workgroup_size(WG_1D)
fn optimizer_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let e = flat_thread(gid, groups);
    if (e >= params.len) { return; }
    let mo = params.metrics_off;
    let gi = params.g_off + e;
    if (ld(mo + SLOT_DIVERGED_STEP) >= 0.0) {
        st(gi, 0.0);
        return;
    }
    let lr = ld(mo + SLOT_LR);
    let g = ld(gi) * ld(mo + SLOT_CLIP_SCALE);
    var w = ld(params.p_off + e);
    if (ld(params.mask_off + e) > 0.0) { w = w - lr * params.wd * w; }
    if (params.kind == OPT_ADAMW) {
        let m = params.beta1 * ld(params.m_off + e) + (1.0 - params.beta1) * g;
        let v = params.beta2 * ld(params.v_off + e) + (1.0 - params.beta2) * g * g;
        st(params.m_off + e, m);
        st(params.v_off + e, v);
        let denom = sqrt(v) / sqrt(ld(mo + SLOT_BC2)) + params.eps;
        w = w - (lr / ld(mo + SLOT_BC1)) * (m / denom);
    } else {
        let m = params.momentum * ld(params.m_off + e) + g;
        st(params.m_off + e, m);
        w = w - lr * m;
    }
    st(params.p_off + e, w);
    st(gi, 0.0);
}
