// Softmax cross-entropy, thread per row. logits: [rows, k], labels: [rows] (exact floats).
//   xent_forward:  loss[b] = logsumexp(logits[b]) - logits[b, y]; correct[b] = argmax == y
//   xent_backward: dlogits[b, j] = scale * (softmax(logits[b])_j - [j == y])   (=)
// The batch mean (scale = 1/rows) is folded into the backward; step_finalize averages the loss.
// A negative label means "no loss at this row" (the transformer's unscored positions): loss 0,
// correct 0, dlogits 0.
struct XentParams {
    rows: u32, k: u32, logits_off: u32, labels_off: u32,
    loss_off: u32, correct_off: u32, dlogits_off: u32, scale: f32,
}
@group(0) @binding(1) var<uniform> params: XentParams;

@compute @workgroup_size(WG_1D)
fn xent_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let b = flat_thread(gid, groups);
    if (b >= params.rows) { return; }
    let l0 = params.logits_off + b * params.k;
    var best = 0u;
    for (var j = 1u; j < params.k; j++) {
        if (ld(l0 + j) > ld(l0 + best)) { best = j; }
    }
    let label = ld(params.labels_off + b);
    if (label < 0.0) {
        st(params.loss_off + b, 0.0);
        st(params.correct_off + b, 0.0);
        return;
    }
    let max_logit = ld(l0 + best);
    var sum = 0.0;
    for (var j = 0u; j < params.k; j++) { sum += exp(ld(l0 + j) - max_logit); }
    let y = u32(label);
    st(params.loss_off + b, max_logit + log(sum) - ld(l0 + y));
    st(params.correct_off + b, select(0.0, 1.0, best == y));
}

@compute @workgroup_size(WG_1D)
fn xent_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let b = flat_thread(gid, groups);
    if (b >= params.rows) { return; }
    let l0 = params.logits_off + b * params.k;
    let label = ld(params.labels_off + b);
    if (label < 0.0) {
        for (var j = 0u; j < params.k; j++) { st(params.dlogits_off + b * params.k + j, 0.0); }
        return;
    }
    var max_logit = ld(l0);
    for (var j = 1u; j < params.k; j++) { max_logit = max(max_logit, ld(l0 + j)); }
    var sum = 0.0;
    for (var j = 0u; j < params.k; j++) { sum += exp(ld(l0 + j) - max_logit); }
    let y = u32(label);
    for (var j = 0u; j < params.k; j++) {
        let p = exp(ld(l0 + j) - max_logit) / sum;
        st(params.dlogits_off + b * params.k + j, params.scale * (p - select(0.0, 1.0, j == y)));
    }
}
