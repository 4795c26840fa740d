//! Every WGSL file parses and validates with naga under WebGPU's capabilities, every entry point
//! the engine dispatches exists, and every params struct has the same size in Rust and WGSL.

use mhc_playground::kernels::*;
use std::mem::size_of;

fn module(file: &str, view: ArenaView) -> (naga::Module, naga::valid::ModuleInfo) {
    module_with(file, view, false)
}

/// With `subgroups`, as a device with subgroup operations compiles it.
fn module_with(file: &str, view: ArenaView, subgroups: bool) -> (naga::Module, naga::valid::ModuleInfo) {
    let source = shader_source(file, view, subgroups).unwrap_or_else(|| panic!("no shader file {file}"));
    let module = naga::front::wgsl::parse_str(&source).unwrap_or_else(|e| panic!("{file}.wgsl: {}", e.emit_to_string(&source)));
    // WebGPU's capabilities: no native-only features (subgroup operations where asked for).
    let capabilities = if subgroups { naga::valid::Capabilities::SUBGROUP } else { naga::valid::Capabilities::empty() };
    let mut validator = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), capabilities);
    if subgroups {
        validator.subgroup_stages(naga::valid::ShaderStages::COMPUTE).subgroup_operations(naga::valid::SubgroupOperationSet::all());
    }
    let info = validator.validate(&module).unwrap_or_else(|e| panic!("{file}.wgsl does not validate: {}", e.emit_to_string(&source)));
    (module, info)
}

#[test]
fn every_shader_validates_for_webgpu() {
    let variants = SHADER_FILES.iter().flat_map(|f| ArenaView::ALL.map(|v| (f, v))).flat_map(|(f, v)| [(f, v, false), (f, v, true)]);
    for ((file, _), view, subgroups) in variants {
        let (module, _) = module_with(file, view, subgroups);
        // WGSL makes a constant expression that evaluates to NaN or an infinity a shader-creation
        // error (Chrome's Tint enforces it; naga does not): no folded constant may be non-finite.
        let functions = module.functions.iter().map(|(_, f)| f).chain(module.entry_points.iter().map(|e| &e.function));
        let arenas = functions.map(|f| &f.expressions).chain([&module.global_expressions]);
        for arena in arenas {
            for (_, expression) in arena.iter() {
                let constant = match *expression {
                    naga::Expression::Literal(naga::Literal::F32(v)) => Some(v),
                    // bitcast<f32>(constant bits)
                    naga::Expression::As { expr, kind: naga::ScalarKind::Float, convert: None } => match arena[expr] {
                        naga::Expression::Literal(naga::Literal::U32(bits)) => Some(f32::from_bits(bits)),
                        naga::Expression::Literal(naga::Literal::I32(bits)) => Some(f32::from_bits(bits as u32)),
                        _ => None,
                    },
                    _ => None,
                };
                if let Some(v) = constant {
                    assert!(v.is_finite(), "{file}.wgsl makes the constant {v}: a shader-creation error in WebGPU");
                }
            }
        }
    }
}

fn all_ops() -> Vec<Op> {
    let s = StreamParams::default();
    vec![
        Op::Matmul(MatmulParams::default()),
        Op::Reduce(ReduceParams::default()),
        Op::RmsNormForward(RmsNormParams::default()),
        Op::RmsNormBackward(RmsNormParams::default()),
        Op::RmsNormWeightGrad(RmsNormParams::default()),
        Op::ActForward(ActParams::default()),
        Op::ActBackward(ActParams::default()),
        Op::Broadcast(s),
        Op::CombineForward(s),
        Op::CombineBackward(s),
        Op::CombineBackwardCoeff(s),
        Op::UpdateForward(s),
        Op::UpdateBackward(s),
        Op::UpdateBackwardCoeff(s),
        Op::HcCoeffForward(HcCoeffParams::default()),
        Op::HcCoeffBackward(HcCoeffParams::default()),
        Op::MhcCoeffForward(MhcCoeffParams::default()),
        Op::MhcCoeffBackward(MhcCoeffParams::default()),
        Op::XentForward(XentParams::default()),
        Op::XentBackward(XentParams::default()),
        Op::SegmentStats(StatsParams::default()),
        Op::StepFinalize(FinalizeParams::default()),
        Op::AnswerCorrect(AnswerParams::default()),
        Op::Gains(GainsParams::default()),
        Op::Optimizer(OptimizerParams::default()),
        Op::EmbedForward(EmbedParams::default()),
        Op::EmbedBackwardTokens(EmbedParams::default()),
        Op::AttentionForward(AttentionParams::default()),
        Op::AttentionBackwardQueries(AttentionParams::default()),
        Op::AttentionBackwardKeys(AttentionParams::default()),
    ]
    .into_iter()
    .chain(FusedKernel::ALL.map(|kernel| Op::Fused(kernel, BlockParams::default())))
    .collect()
}

#[test]
fn every_op_names_an_existing_entry_point() {
    for op in all_ops() {
        let (file, entry) = op.entry();
        let (module, _) = module(file, ArenaView::Vec4s);
        assert!(
            module.entry_points.iter().any(|e| e.name == entry && e.stage == naga::ShaderStage::Compute),
            "{file}.wgsl has no compute entry point {entry}"
        );
    }
}

#[test]
fn every_override_an_op_sets_is_declared_in_its_shader() {
    // A misspelt name would be a pipeline-creation error in the browser (and in wgpu natively).
    for op in all_ops() {
        let (file, _) = op.entry();
        let (module, _) = module(file, ArenaView::Vec4s);
        for (name, _) in op.overrides(&HARDWARE) {
            assert!(module.overrides.iter().any(|(_, o)| o.name.as_deref() == Some(name)), "{file}.wgsl declares no override {name}");
        }
    }
}

/// A hardware GPU's tuning.
const HARDWARE: Tuning =
    Tuning { block_threads: 64, register_block: RegisterBlock::Four, stream_items: StreamItems::Quads, share_width: 0 };

/// The value `op` sets the override `name` to under `tuning`, if it sets it.
fn override_value(op: Op, tuning: &Tuning, name: &str) -> Option<f64> {
    op.overrides(tuning).into_iter().find(|&(set, _)| set == name).map(|(_, v)| v)
}

#[test]
fn sinkhorn_runs_in_registers_up_to_four_streams() {
    let set = |op: Op| override_value(op, &HARDWARE, "SINKHORN_IN_REGISTERS");
    for n in 1..=8u32 {
        let want = Some(if n <= 4 { 1.0 } else { 0.0 });
        assert_eq!(set(Op::MhcCoeffBackward(MhcCoeffParams { n, ..Default::default() })), want, "unfused, n = {n}");
        for kind in [BLOCK_RESIDUAL, BLOCK_HC, BLOCK_MHC] {
            assert_eq!(set(Op::Fused(FusedKernel::BlockBackward, BlockParams { kind, n, ..Default::default() })), want, "fused, n = {n}");
        }
    }
}

#[test]
fn a_stream_item_is_a_row_where_the_tuning_says_so() {
    let software = Tuning { stream_items: StreamItems::Rows, ..HARDWARE };
    for kind in [BLOCK_RESIDUAL, BLOCK_HC, BLOCK_MHC] {
        let op = Op::Fused(FusedKernel::BlockForward, BlockParams { kind, n: 4, ..Default::default() });
        assert_eq!(override_value(op, &HARDWARE, "ROW_ITEMS"), Some(0.0));
        assert_eq!(override_value(op, &software, "ROW_ITEMS"), Some(1.0));
    }
    assert_eq!(StreamItems::for_adapter(true), StreamItems::Rows);
    assert_eq!(StreamItems::for_adapter(false), StreamItems::Quads);
}

#[test]
fn params_structs_match_their_wgsl_twins() {
    let expected: &[(&str, &str, usize)] = &[
        ("matmul", "MatmulParams", size_of::<MatmulParams>()),
        ("reduce", "ReduceParams", size_of::<ReduceParams>()),
        ("rmsnorm", "RmsNormParams", size_of::<RmsNormParams>()),
        ("activation", "ActParams", size_of::<ActParams>()),
        ("streams", "StreamParams", size_of::<StreamParams>()),
        ("hyper", "HcCoeffParams", size_of::<HcCoeffParams>()),
        ("hyper", "MhcCoeffParams", size_of::<MhcCoeffParams>()),
        ("loss", "XentParams", size_of::<XentParams>()),
        ("metrics", "StatsParams", size_of::<StatsParams>()),
        ("metrics", "FinalizeParams", size_of::<FinalizeParams>()),
        ("metrics", "GainsParams", size_of::<GainsParams>()),
        ("metrics", "AnswerParams", size_of::<AnswerParams>()),
        ("block", "BlockParams", size_of::<BlockParams>()),
        ("optimizer", "OptimizerParams", size_of::<OptimizerParams>()),
        ("embed", "EmbedParams", size_of::<EmbedParams>()),
        ("attention", "AttentionParams", size_of::<AttentionParams>()),
    ];
    for &(file, name, rust_size) in expected {
        let (module, _) = module(file, ArenaView::Vec4s);
        let (_, ty) = module
            .types
            .iter()
            .find(|(_, t)| t.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("{file}.wgsl has no struct {name}"));
        let naga::TypeInner::Struct { members, span } = &ty.inner else { panic!("{name} is not a struct") };
        assert_eq!(*span as usize, rust_size, "{name}: WGSL {span} bytes, Rust {rust_size}");
        assert_eq!(rust_size % 16, 0, "{name} must be padded to 16 bytes for uniform buffers");
        for (i, m) in members.iter().enumerate() {
            assert_eq!(m.offset as usize, 4 * i, "{name}.{:?} is not at a 4-byte scalar slot", m.name);
        }
    }
}

#[test]
fn metrics_slots_match_the_wgsl_constants() {
    let (metrics, _) = module("metrics", ArenaView::Vec4s);
    let (optimizer, _) = module("optimizer", ArenaView::Vec4s);
    let constant = |module: &naga::Module, name: &str| -> u32 {
        let (_, c) = module.constants.iter().find(|(_, c)| c.name.as_deref() == Some(name)).unwrap_or_else(|| panic!("no const {name}"));
        match module.global_expressions[c.init] {
            naga::Expression::Literal(naga::Literal::U32(v)) => v,
            ref other => panic!("{name} is not a u32 literal: {other:?}"),
        }
    };
    for (name, value) in [
        ("SLOT_STEP", slot::STEP),
        ("SLOT_LOSS", slot::LOSS),
        ("SLOT_ACC", slot::ACC),
        ("SLOT_GRAD_NORM", slot::GRAD_NORM),
        ("SLOT_CLIP_SCALE", slot::CLIP_SCALE),
        ("SLOT_DIVERGED_STEP", slot::DIVERGED_STEP),
        ("SLOT_DIVERGED_BLOCK", slot::DIVERGED_BLOCK),
    ] {
        assert_eq!(constant(&metrics, name), value, "metrics.wgsl {name}");
    }
    for (name, value) in [
        ("SLOT_LR", slot::LR),
        ("SLOT_BC1", slot::BC1),
        ("SLOT_BC2", slot::BC2),
        ("SLOT_CLIP_SCALE", slot::CLIP_SCALE),
        ("SLOT_DIVERGED_STEP", slot::DIVERGED_STEP),
    ] {
        assert_eq!(constant(&optimizer, name), value, "optimizer.wgsl {name}");
    }
    // Named codes shared by Rust and WGSL.
    let (activation, _) = module("activation", ArenaView::Vec4s);
    assert_eq!(constant(&activation, "ACT_GELU"), ACT_GELU);
    assert_eq!(constant(&activation, "ACT_RELU"), ACT_RELU);
    let (reduce, _) = module("reduce", ArenaView::Vec4s);
    assert_eq!(constant(&reduce, "REDUCE_MAX"), REDUCE_MAX);
    assert_eq!(constant(&optimizer, "OPT_ADAMW"), OPT_ADAMW);
    let (block, _) = module("block", ArenaView::Vec4s);
    assert_eq!(constant(&block, "BLOCK_HC"), BLOCK_HC);
    assert_eq!(constant(&block, "BLOCK_MHC"), BLOCK_MHC);
    assert_eq!(constant(&block, "TILE_ROWS"), BLOCK_TILE_ROWS);
    let (hyper, _) = module("hyper", ArenaView::Vec4s);
    assert_eq!(constant(&hyper, "MAX_N") as usize, MAX_STREAMS);
    assert!(constant(&hyper, "MHC_SLOTS") >= BLOCK_TILE_ROWS, "a fused tile's rows need an mHC slot each");
    assert_eq!(constant(&hyper, "MAX_ITERS") as usize, MAX_SINKHORN_ITERS);
    assert_eq!(constant(&module("attention", ArenaView::Vec4s).0, "MAX_CTX"), ATTENTION_MAX_CTX);
}
