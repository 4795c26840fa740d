//! The WGSL source of each kernel file, as the GPU backend compiles it.

use super::ArenaView;

/// Every shader file, embedded so wasm and native run the same bytes. The prelude (arena
/// binding and shared helpers) is prepended to each.
pub const SHADER_PRELUDE: &str = include_str!("../../shaders/prelude.wgsl");
pub const SHADER_FILES: &[(&str, &str)] = &[
    ("matmul", include_str!("../../shaders/matmul.wgsl")),
    ("reduce", include_str!("../../shaders/reduce.wgsl")),
    ("rmsnorm", include_str!("../../shaders/rmsnorm.wgsl")),
    ("activation", include_str!("../../shaders/activation.wgsl")),
    ("streams", include_str!("../../shaders/streams.wgsl")),
    ("hyper", include_str!("../../shaders/hyper.wgsl")),
    ("loss", include_str!("../../shaders/loss.wgsl")),
    ("metrics", include_str!("../../shaders/metrics.wgsl")),
    ("optimizer", include_str!("../../shaders/optimizer.wgsl")),
    ("block", include_str!("../../shaders/block.wgsl")),
    ("embed", include_str!("../../shaders/embed.wgsl")),
    ("attention", include_str!("../../shaders/attention.wgsl")),
];

/// Subgroup operations, and the same names without them; then the register blocks that share
/// rows through them (or never do), for the files whose register blocks may: the fused block
/// kernels and the products.
const SUBGROUPS_ON: &str = include_str!("../../shaders/subgroups.wgsl");
const SUBGROUPS_OFF: &str = include_str!("../../shaders/subgroups_off.wgsl");
const SHARED_ROWS: &str = include_str!("../../shaders/shared_rows.wgsl");
const USES_SUBGROUPS: &[&str] = &["block", "matmul"];

/// Files whose functions another file calls: the fused block kernels reuse the hyper-connection
/// coefficient math and the activations of the unfused kernels rather than repeating them.
const SHADER_LIBRARIES: &[(&str, &[&str])] = &[("block", &["activation", "hyper"])];

/// Full WGSL source of one shader file (arena view + prelude + subgroup sharing + libraries +
/// file). `subgroups`: the device has subgroup operations and the kernels may share rows with
/// them (a browser also wants the `enable` directive; wgpu's own compiler takes the operations
/// without it and refuses it).
pub fn shader_source(file: &str, view: ArenaView, subgroups: bool) -> Option<String> {
    let body = |name: &str| SHADER_FILES.iter().find(|(n, _)| *n == name).map(|(_, b)| *b);
    let uses = USES_SUBGROUPS.contains(&file);
    let enable = if uses && subgroups && cfg!(target_arch = "wasm32") { "enable subgroups;\n" } else { "" };
    let mut source = format!("{enable}{}\n{SHADER_PRELUDE}\n", view.source());
    if uses {
        source.push_str(if subgroups { SUBGROUPS_ON } else { SUBGROUPS_OFF });
        source.push('\n');
        source.push_str(SHARED_ROWS);
        source.push('\n');
    }
    let libraries = SHADER_LIBRARIES.iter().find(|(n, _)| *n == file).map_or(&[][..], |(_, l)| l);
    for library in libraries {
        source.push_str(body(library)?);
        source.push('\n');
    }
    source.push_str(body(file)?);
    Some(source)
}
