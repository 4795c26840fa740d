// The arena seen as vec4s (kernels/: ArenaView::Vec4s), for every adapter but a software one
// in a browser: lavapipe turns each load instruction into a loop over its SIMD lanes, whatever
// the load's width, so an aligned vec4 load costs about what a float does. ld / st address
// single floats; ld_vec4 / st_vec4 the aligned vec4 i4 (floats 4 * i4 .. 4 * i4 + 3).
@group(0) @binding(0) var<storage, read_write> arena: array<vec4<f32>>;
// An aligned vec4 is one load or store here (arena_floats.wgsl: four).
const ARENA_VEC4S: bool = true;
fn ld(i: u32) -> f32 { return arena[i >> 2u][i & 3u]; }
fn st(i: u32, value: f32) { arena[i >> 2u][i & 3u] = value; }
fn ld_vec4(i4: u32) -> vec4<f32> { return arena[i4]; }
fn st_vec4(i4: u32, value: vec4<f32>) { arena[i4] = value; }
