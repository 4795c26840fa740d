// Register-block rows shared through the subgroup (kernels/: Subgroups), where the device has
// subgroup operations and a software adapter gains by them: the threads of a subgroup that
// compute one 8-row register block of a linear layer (neighbouring column groups of the same
// rows) all loaded the same eight rows of operands; now each thread loads one row (two where
// a subgroup has four threads) and the others take it by broadcast. A software GPU turns a
// load into a loop over its SIMD lanes, and a broadcast into a lane's extraction. The values
// and the order of every sum are the same. subgroups_off.wgsl is this file without the
// operations, for devices without them.
const SUBGROUPS: bool = true;
// Whether this workgroup's subgroups are what the host assumed (block.wgsl: SHARE_WIDTH): runs
// of SHARE_WIDTH consecutive threads, each starting at a multiple of it, so that lane l is
// thread lid % SHARE_WIDTH. A vote, so the compiler knows it is the same for the subgroup.
var<private> subgroup_consecutive: bool;
var<private> subgroup_lane: u32;

// Call at a kernel's start, from uniform control flow with every thread of the workgroup.
fn subgroup_begin(lid: u32) {
    let width = max(SHARE_WIDTH, 1u);
    subgroup_lane = lid % width;
    subgroup_consecutive = subgroupAll(subgroupAdd(1u) == width && subgroupBroadcastFirst(lid) == lid - lid % width);
}

// Rows 0-3 of the block, from the threads that loaded them (lane r: row r).
fn shared_rows_lo(mine: vec4<f32>) -> mat4x4<f32> {
    return mat4x4<f32>(subgroupBroadcast(mine, 0u), subgroupBroadcast(mine, 1u), subgroupBroadcast(mine, 2u),
                       subgroupBroadcast(mine, 3u));
}
// Rows 4-7: lane r + 4's own row, or with four lanes lane r's second one.
fn shared_rows_hi(mine: vec4<f32>, second: vec4<f32>) -> mat4x4<f32> {
    if (SHARE_WIDTH >= 8u) {
        return mat4x4<f32>(subgroupBroadcast(mine, 4u), subgroupBroadcast(mine, 5u), subgroupBroadcast(mine, 6u),
                           subgroupBroadcast(mine, 7u));
    }
    return mat4x4<f32>(subgroupBroadcast(second, 0u), subgroupBroadcast(second, 1u), subgroupBroadcast(second, 2u),
                       subgroupBroadcast(second, 3u));
}
