// Subgroup operations for register blocks whose rows are shared (shared_rows.wgsl; kernels/:
// Subgroups), where the device has them and a software adapter gains by them: the threads of a
// subgroup that compute register blocks of the same rows (neighbouring column groups) each
// loaded all of the rows' operands; now each loads one run of them and the others take it by
// broadcast. A software GPU turns a load into a loop over its SIMD lanes, and a broadcast into
// a lane's extraction. subgroups_off.wgsl is this file without the operations, for devices
// without them.
const SUBGROUPS: bool = true;
// Whether this workgroup's subgroups are what the host assumed (shared_rows.wgsl: SHARE_WIDTH):
// runs of SHARE_WIDTH consecutive threads, each starting at a multiple of it, so that lane l is
// thread lid % SHARE_WIDTH. A vote, so the compiler knows it is the same for the subgroup.
var<private> subgroup_consecutive: bool;
var<private> subgroup_lane: u32;

// Call at a kernel's start, from uniform control flow with every thread of the workgroup.
fn subgroup_begin(lid: u32) {
    let width = max(SHARE_WIDTH, 1u);
    subgroup_lane = lid % width;
    // Lane l must also be thread lid - lid % width + l, as the broadcasts by lane take it.
    let lane_is_thread = subgroupShuffle(lid, lid % width) == lid;
    subgroup_consecutive = subgroupAll(subgroupAdd(1u) == width && subgroupBroadcastFirst(lid) == lid - lid % width && lane_is_thread);
}

// Runs 0-3 of a quad of the block's rows' operands (shared_rows.wgsl: run_start), from the
// lanes that loaded them (lane r: run r).
fn shared_rows_lo(mine: vec4<f32>) -> mat4x4<f32> {
    return mat4x4<f32>(subgroupBroadcast(mine, 0u), subgroupBroadcast(mine, 1u), subgroupBroadcast(mine, 2u),
                       subgroupBroadcast(mine, 3u));
}
// Runs 4-7: lane r + 4's own run, or with four lanes lane r's second one.
fn shared_rows_hi(mine: vec4<f32>, second: vec4<f32>) -> mat4x4<f32> {
    if (SHARE_WIDTH >= 8u) {
        return mat4x4<f32>(subgroupBroadcast(mine, 4u), subgroupBroadcast(mine, 5u), subgroupBroadcast(mine, 6u),
                           subgroupBroadcast(mine, 7u));
    }
    return mat4x4<f32>(subgroupBroadcast(second, 0u), subgroupBroadcast(second, 1u), subgroupBroadcast(second, 2u),
                       subgroupBroadcast(second, 3u));
}
