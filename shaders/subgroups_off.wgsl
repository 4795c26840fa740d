// subgroups.wgsl for a device without subgroup operations (or with them turned off): the same
// names, never sharing (SUBGROUPS is false, so callers never take these rows).
const SUBGROUPS: bool = false;
var<private> subgroup_consecutive: bool;
var<private> subgroup_lane: u32;
fn subgroup_begin(lid: u32) {}
fn shared_rows_lo(mine: vec4<f32>) -> mat4x4<f32> { return mat4x4<f32>(); }
fn shared_rows_hi(mine: vec4<f32>, second: vec4<f32>) -> mat4x4<f32> { return mat4x4<f32>(); }
