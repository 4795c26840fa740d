// Prepended to every kernel file by the host (kernels.rs: shader_source).
// All kernels address one flat f32 arena per variant: parameters, gradients, moments,
// activations, scratch and metrics. Offsets in the params structs are element indices;
// NONE marks an absent operand. Labels live in the arena as exact small floats.
@group(0) @binding(0) var<storage, read_write> arena: array<f32>;

const NONE: u32 = 0xffffffffu;
const RMS_EPS: f32 = 1e-6;

// Threads per workgroup of the 1-D kernels (the browser allows 256 at most).
override WG_1D: u32 = 256u;
// Threads per workgroup of the one-workgroup-per-row kernels.
const WG_ROW: u32 = 64u;

// Sum of `value` over a WG_ROW-thread workgroup (every thread gets the result). Call it from
// uniform control flow: it has barriers.
var<workgroup> row_partial: array<f32, WG_ROW>;
fn workgroup_sum(lid: u32, value: f32) -> f32 {
    row_partial[lid] = value;
    workgroupBarrier();
    for (var stride = WG_ROW / 2u; stride > 0u; stride = stride / 2u) {
        if (lid < stride) { row_partial[lid] += row_partial[lid + stride]; }
        workgroupBarrier();
    }
    let total = row_partial[0];
    workgroupBarrier();
    return total;
}

// Dispatches wider than 65535 workgroups fold into y; this flattens them back.
fn flat_thread(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * WG_1D;
}
fn flat_group(wid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return wid.x + wid.y * groups.x;
}

// A bit test, not x != x: fast-math compilers may fold the comparison away.
fn is_finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}

// Nearest f16 value (ties to even, overflow to inf) as f32; twin of reference::round_to_f16.
fn round_to_f16(x: f32) -> f32 {
    let bits = bitcast<u32>(x);
    let sign = bits & 0x80000000u;
    let magnitude = bits & 0x7fffffffu;
    if (magnitude >= 0x7f800000u) { return x; }
    if (magnitude >= 0x477ff000u) { return bitcast<f32>(sign | 0x7f800000u); }
    if (magnitude < 0x38800000u) {
        // f16 subnormal range: multiples of 2^-24; round() ties to even.
        let rounded = round(bitcast<f32>(magnitude) * 16777216.0);
        return bitcast<f32>(sign | bitcast<u32>(rounded * 5.9604645e-8));
    }
    let lsb = (magnitude >> 13u) & 1u;
    return bitcast<f32>(sign | ((magnitude + 0x0fffu + lsb) & 0xffffe000u));
}

// Saturates to +-1 where the textbook (e^2x - 1) / (e^2x + 1) gives inf / inf.
fn stable_tanh(x: f32) -> f32 {
    return 1.0 - 2.0 / (exp(2.0 * x) + 1.0);
}

fn sigmoid(x: f32) -> f32 {
    return 1.0 / (1.0 + exp(-x));
}
