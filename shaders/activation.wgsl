// Elementwise activation over len values: y = act(x); backward dx = dy * act'(x) (=).
// kind: 0 gelu (tanh approximation), 1 relu, 2 tanh. Saved for backward: x (pre-activation).
struct ActParams { len: u32, kind: u32, x_off: u32, y_off: u32, dy_off: u32, dx_off: u32, _pad0: u32, _pad1: u32 }
@group(0) @binding(1) var<uniform> params: ActParams;  // (block.wgsl calls the functions below too)

// Activation codes (kernels/: ACT_*).
const ACT_GELU: u32 = 0u;
const ACT_RELU: u32 = 1u;

const GELU_C: f32 = 0.7978845608028654; // sqrt(2/pi)
const GELU_K: f32 = 0.044715;

fn activation(kind: u32, x: f32) -> f32 {
    switch kind {
        case ACT_GELU: { return 0.5 * x * (1.0 + stable_tanh(GELU_C * (x + GELU_K * x * x * x))); }
        case ACT_RELU: { return max(x, 0.0); }
        default: { return stable_tanh(x); }
    }
}

fn activation_grad(kind: u32, x: f32) -> f32 {
    switch kind {
        case ACT_GELU: {
            let t = stable_tanh(GELU_C * (x + GELU_K * x * x * x));
            return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * GELU_C * (1.0 + 3.0 * GELU_K * x * x);
        }
        case ACT_RELU: { return select(0.0, 1.0, x > 0.0); }
        default: {
            let t = stable_tanh(x);
            return 1.0 - t * t;
        }
    }
}

// Four values at once, for block.wgsl's vec4 phases: each lane exactly the functions above.
fn activation4(kind: u32, x: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(activation(kind, x.x), activation(kind, x.y), activation(kind, x.z), activation(kind, x.w));
}
fn activation_grad4(kind: u32, x: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(activation_grad(kind, x.x), activation_grad(kind, x.y), activation_grad(kind, x.z),
                     activation_grad(kind, x.w));
}

@compute @workgroup_size(WG_1D)
fn act_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let e = flat_thread(gid, groups);
    if (e >= params.len) { return; }
    st(params.y_off + e, activation(params.kind, ld(params.x_off + e)));
}

@compute @workgroup_size(WG_1D)
fn act_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let e = flat_thread(gid, groups);
    if (e >= params.len) { return; }
    st(params.dx_off + e, ld(params.dy_off + e) * activation_grad(params.kind, ld(params.x_off + e)));
}
