// The arena seen as floats (kernels/: ArenaView::Floats), for a software adapter in a browser:
// SwiftShader splits a vec4 load into four gathers anyway, so the vec4 view gains it nothing.
// The same functions as arena_vec4s.wgsl.
@group(0) @binding(0) var<storage, read_write> arena: array<f32>;
// A vec4 is four loads or stores here (arena_vec4s.wgsl: one).
const ARENA_VEC4S: bool = false;
fn ld(i: u32) -> f32 { return arena[i]; }
fn st(i: u32, value: f32) { arena[i] = value; }
fn ld_vec4(i4: u32) -> vec4<f32> {
    let i = 4u * i4;
    return vec4<f32>(arena[i], arena[i + 1u], arena[i + 2u], arena[i + 3u]);
}
fn st_vec4(i4: u32, value: vec4<f32>) {
    let i = 4u * i4;
    arena[i] = value.x;
    arena[i + 1u] = value.y;
    arena[i + 2u] = value.z;
    arena[i + 3u] = value.w;
}
