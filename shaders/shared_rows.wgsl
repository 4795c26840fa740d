// Register blocks whose rows' operands are shared through the subgroup (subgroups.wgsl, or
// subgroups_off.wgsl where they never are): the fused kernels' linear layers and the standalone
// products, on a device with subgroup operations where a software adapter gains by them.

// Threads of a subgroup that share register-block rows: 4, or 8 and more; 0 for none. Set by
// the host from the adapter's subgroup size (kernels/: Tuning::share_width), an override so
// that every test of it is a constant: a software GPU runs both sides of a branch it cannot
// prove uniform.
override SHARE_WIDTH: u32 = 0u;

// Whether a subgroup's threads compute 8 x 8 register blocks of the same rows and take the same
// path through them: subgroups of SHARE_WIDTH consecutive threads, a whole number of them in a
// workgroup of `threads`, and rows of `cols` columns, whole column groups of 8 and a multiple
// of SHARE_WIDTH of them, so that a subgroup's blocks are one run of neighbouring column groups
// of one row group, none of them cut by the edge (an edge block would take the single loads
// and leave its lane's runs unloaded).
fn rows_shareable(wide: bool, threads: u32, cols: u32) -> bool {
    // max: an override expression dividing by zero fails the pipeline, whatever && says.
    let width = max(SHARE_WIDTH, 1u);
    return SUBGROUPS && wide && SHARE_WIDTH != 0u && threads % width == 0u && cols % 8u == 0u && (cols / 8u) % width == 0u
           && subgroup_consecutive;
}

// Where run r (0 to 7) of a quad of steps starts: row r's four steps where the rows' operands
// lie along the steps, or where `across` step r % 4's rows 0-3 (r < 4) or 4-7 (x_lo, x_hi:
// rows 0-3 and 4-7's first operands, as block8_sum takes them).
fn run_start(x_lo: vec4<u32>, x_hi: vec4<u32>, x_step: u32, across: bool, r: u32) -> u32 {
    let first = select(x_lo, x_hi, r >= 4u);
    return select(first[r % 4u], first.x + (r % 4u) * x_step, across);
}

// block8_sum for len = 4 * quads with every run of the rows' operands loaded by one lane (two
// where a subgroup has four: runs r and r + 4) and taken by every lane through broadcasts: 9
// vec4 loads a quad (10 in a subgroup of four) where block8_sum makes 16. Same values, same
// order of every sum.
fn shared_block8_sum(x_lo: vec4<u32>, x_hi: vec4<u32>, x_step: u32, x_across: bool, w_a: vec4<u32>, w_b: vec4<u32>,
                     w_step: u32, w_across: bool, quads: u32, rows_hi: bool) -> Block8 {
    let mine = run_start(x_lo, x_hi, x_step, x_across, subgroup_lane % 8u);
    let second = run_start(x_lo, x_hi, x_step, x_across, (subgroup_lane + 4u) % 8u);
    let wr_a = runs_of(w_a, w_step, w_across);
    let wr_b = runs_of(w_b, w_step, w_across);
    var acc = Block8(mat4x4<f32>(), mat4x4<f32>(), mat4x4<f32>(), mat4x4<f32>());
    for (var q = 0u; q < quads; q++) {
        let k = 4u * q * x_step;
        let run = ld_vec4((mine + k) >> 2u);
        var theirs = vec4<f32>(0.0);
        if (SHARE_WIDTH == 4u) { theirs = ld_vec4((second + k) >> 2u); }
        // Taken whether or not the block has rows 4-7 (block8_steps then leaves them out): a
        // subgroup operation under a branch the compiler cannot prove uniform costs more.
        let x_lo_q = flipped_if(shared_rows_lo(run), x_across);
        let x_hi_q = flipped_if(shared_rows_hi(run, theirs), x_across);
        let kw = 4u * q;
        acc = block8_steps(acc, x_lo_q, x_hi_q, flipped_if(runs_at(wr_a, kw), !w_across), flipped_if(runs_at(wr_b, kw), !w_across),
                           rows_hi, true);
    }
    return acc;
}
