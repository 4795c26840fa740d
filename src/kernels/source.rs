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

/// Files whose functions another file calls: the fused block kernels reuse the hyper-connection
/// coefficient math and the activations of the unfused kernels rather than repeating them.
const SHADER_LIBRARIES: &[(&str, &[&str])] = &[("block", &["activation", "hyper"])];

/// Full WGSL source of one shader file (arena view + prelude + libraries + file).
pub fn shader_source(file: &str, view: ArenaView) -> Option<String> {
    let body = |name: &str| SHADER_FILES.iter().find(|(n, _)| *n == name).map(|(_, b)| *b);
    let mut source = format!("{}\n{SHADER_PRELUDE}\n", view.source());
    let libraries = SHADER_LIBRARIES.iter().find(|(n, _)| *n == file).map_or(&[][..], |(_, l)| l);
    for library in libraries {
        source.push_str(body(library)?);
        source.push('\n');
    }
    source.push_str(body(file)?);
    Some(source)
}
