//! The parameter layout table: every tensor of one variant, its DESIGN.md name, shape, offset
//! in the flat parameter buffer (gradients and optimiser moments use the same offsets), whether
//! weight decay applies, and how it is initialised. Everything else (checkpoints, the optimiser's
//! decay mask, per-block gradient norms, initial weights) is derived from this table.

use crate::config::{Arch, Config, ResidualKind};
use crate::rng::Rng;

/// How a tensor's initial values are made.
#[derive(Clone, Debug, PartialEq)]
pub enum Init {
    /// `N(0, std^2)` from `Rng::derive(seed, name, 0)`.
    Normal {
        std: f64,
    },
    Constant(f32),
    /// Explicit values (the hyper-connection biases, which depend on the block index).
    Values(Vec<f32>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct ParamEntry {
    pub name: String,
    pub shape: Vec<usize>,
    pub offset: usize,
    pub decay: bool,
    pub init: Init,
}

impl ParamEntry {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len()
    }
}

/// Sizes that fix the layout of one variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    pub arch: Arch,
    pub kind: ResidualKind,
    pub d_in: usize,
    pub classes: usize,
    pub width: usize,
    pub hidden: usize,
    pub depth: usize,
    pub streams: usize,
    /// Transformer: positions per sequence and attention heads.
    pub ctx: usize,
    pub heads: usize,
}

impl Dims {
    pub fn new(config: &Config, kind: ResidualKind) -> Dims {
        Dims {
            arch: config.arch,
            ctx: config.ctx as usize,
            heads: config.heads as usize,
            kind,
            d_in: config.d_in(),
            classes: config.classes(),
            width: config.width as usize,
            hidden: (config.ffn * config.width) as usize,
            depth: config.depth as usize,
            streams: config.streams_for(kind),
        }
    }
    /// Coefficients per row and block: `[pre (n) | post (n) | res (n*n)]`.
    pub fn coeffs(&self) -> usize {
        self.streams * self.streams + 2 * self.streams
    }

    /// Residual units the streams pass through in order: the MLP's blocks, or the
    /// transformer's sublayers (attention, then FFN, per block). Gains, stream statistics and
    /// divergence are reported per unit.
    pub fn units(&self) -> usize {
        match self.arch {
            Arch::Mlp => self.depth,
            Arch::Transformer => 2 * self.depth,
        }
    }
}

/// Where one block's tensors start, relative to the block (the same in every block): the typed
/// offsets the op builders use instead of looking names up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockTensors {
    pub norm_weight: usize,
    pub fc1_weight: usize,
    pub fc1_bias: usize,
    pub fc2_weight: usize,
    pub fc2_bias: usize,
    /// HC `[w_pre; w_res; w_post]` (`[n+2, C]`) or mHC `phi` (`[n*n+2n, n*C]`).
    pub projection: Option<usize>,
    /// HC `[s_alpha, s_beta, b_pre, b_res, b_post]` or mHC `[alpha (3), bias]`.
    pub small: Option<usize>,
}

/// Where the transformer's attention sublayer's tensors start, relative to the block.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AttentionTensors {
    pub norm_weight: usize,
    pub qkv_weight: usize,
    pub qkv_bias: usize,
    pub proj_weight: usize,
    pub proj_bias: usize,
    /// The sublayer's own HC projections or mHC phi, and small coefficient parameters.
    pub projection: Option<usize>,
    pub small: Option<usize>,
}

/// The whole table of one variant. Each block's tensors are contiguous and every block has the
/// same size, so block `l` is `block_offset(l) .. block_offset(l) + block_len`.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamLayout {
    pub dims: Dims,
    pub entries: Vec<ParamEntry>,
    pub total: usize,
    pub embed_len: usize,
    pub block_len: usize,
    pub head_len: usize,
}

impl ParamLayout {
    pub fn new(dims: Dims) -> ParamLayout {
        let Dims { d_in, classes, width: c, hidden: fc, depth, streams: n, .. } = dims;
        let mut entries = Vec::new();
        let mut offset = 0;
        let mut push = |name: String, shape: Vec<usize>, decay: bool, init: Init| {
            let len: usize = shape.iter().product();
            entries.push(ParamEntry { name, shape, offset, decay, init });
            offset += len;
        };
        let normal = |fan_in: usize| Init::Normal { std: 1.0 / (fan_in as f64).sqrt() };
        let transformer = dims.arch == Arch::Transformer;
        // A sublayer's coefficients (`l`: its index among the sublayers, which places the
        // one-hot of H_pre): HC's dynamic projections and biases or mHC's phi, alpha, bias.
        let coefficients = |push: &mut dyn FnMut(String, Vec<usize>, bool, Init), prefix: &str, l: usize| {
            let name = |s: &str| format!("{prefix}{s}");
            let onehot = |value: f32, other: f32| -> Vec<f32> { (0..n).map(|i| if i == l % n { value } else { other }).collect() };
            let eye = |diag: f32| -> Vec<f32> { (0..n * n).map(|j| if j % (n + 1) == 0 { diag } else { 0.0 }).collect() };
            match dims.kind {
                ResidualKind::Residual => {}
                ResidualKind::Hc => {
                    // w_pre, w_res, w_post adjacent: together the [(n+2), C] matrix of the
                    // dynamic projections, applied with one matmul.
                    push(name("hc.w_pre"), vec![c], true, Init::Constant(0.0));
                    push(name("hc.w_res"), vec![n, c], true, Init::Constant(0.0));
                    push(name("hc.w_post"), vec![c], true, Init::Constant(0.0));
                    push(name("hc.s_alpha"), vec![1], false, Init::Constant(0.01));
                    push(name("hc.s_beta"), vec![1], false, Init::Constant(0.01));
                    push(name("hc.b_pre"), vec![n], false, Init::Values(onehot(1.0, 0.0)));
                    push(name("hc.b_res"), vec![n, n], false, Init::Values(eye(1.0)));
                    push(name("hc.b_post"), vec![n], false, Init::Constant(1.0));
                }
                ResidualKind::Mhc => {
                    let p = n * n + 2 * n;
                    push(name("mhc.phi"), vec![p, n * c], true, Init::Constant(0.0));
                    push(name("mhc.alpha"), vec![3], false, Init::Constant(0.01));
                    let mut bias = onehot(3.0, -3.0);
                    bias.extend(std::iter::repeat_n(0.0, n));
                    bias.extend(eye(4.0));
                    push(name("mhc.bias"), vec![p], false, Init::Values(bias));
                }
            }
        };
        // The residual branch's last layer starts small so the sum over the sublayers stays
        // O(1): 1/sqrt(2 depth) for the MLP's blocks, 1/sqrt(4 depth) for the transformer's.
        let branch_out = |fan_in: usize, branches: usize| Init::Normal { std: 1.0 / ((fan_in as f64).sqrt() * (branches as f64).sqrt()) };
        if transformer {
            push("tok.weight".into(), vec![classes, c], true, Init::Normal { std: 1.0 });
            push("pos.weight".into(), vec![dims.ctx, c], false, Init::Normal { std: 0.01 });
        } else {
            push("embed.weight".into(), vec![c, d_in], true, normal(d_in));
            push("embed.bias".into(), vec![c], false, Init::Constant(0.0));
        }
        for l in 0..depth {
            let b = |s: &str| format!("blocks.{l}.{s}");
            if transformer {
                push(b("attn.norm.weight"), vec![c], false, Init::Constant(1.0));
                push(b("attn.qkv.weight"), vec![3 * c, c], true, normal(c));
                push(b("attn.qkv.bias"), vec![3 * c], false, Init::Constant(0.0));
                push(b("attn.proj.weight"), vec![c, c], true, branch_out(c, 4 * depth));
                push(b("attn.proj.bias"), vec![c], false, Init::Constant(0.0));
                coefficients(&mut push, &b("attn."), 2 * l);
            }
            let ffn = if transformer { b("ffn.") } else { b("") };
            push(format!("{ffn}norm.weight"), vec![c], false, Init::Constant(1.0));
            push(format!("{ffn}fc1.weight"), vec![fc, c], true, normal(c));
            push(format!("{ffn}fc1.bias"), vec![fc], false, Init::Constant(0.0));
            push(format!("{ffn}fc2.weight"), vec![c, fc], true, branch_out(fc, if transformer { 4 * depth } else { 2 * depth }));
            push(format!("{ffn}fc2.bias"), vec![c], false, Init::Constant(0.0));
            coefficients(&mut push, &ffn, if transformer { 2 * l + 1 } else { l });
        }
        push("head.norm.weight".into(), vec![c], false, Init::Constant(1.0));
        push("head.weight".into(), vec![classes, c], true, normal(c));
        push("head.bias".into(), vec![classes], false, Init::Constant(0.0));
        let total = offset;
        let embed_len = if transformer { (classes + dims.ctx) * c } else { c * d_in + c };
        let head_len = c + classes * c + classes;
        let block_len = (total - embed_len - head_len).checked_div(depth).unwrap_or(0);
        ParamLayout { dims, entries, total, embed_len, block_len, head_len }
    }

    pub fn get(&self, name: &str) -> Option<&ParamEntry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// Offset of a tensor that the layout always has for this variant.
    pub fn offset(&self, name: &str) -> usize {
        match self.get(name) {
            Some(e) => e.offset,
            None => panic!("layout has no tensor {name}"),
        }
    }

    /// Typed offsets of a block's tensors (all zero without blocks): the MLP's block, or the
    /// transformer's FFN sublayer.
    pub fn block_tensors(&self) -> BlockTensors {
        if self.dims.depth == 0 {
            return BlockTensors::default();
        }
        let prefix = if self.dims.arch == Arch::Transformer { "ffn." } else { "" };
        let at = |name: &str| self.get(&format!("blocks.0.{prefix}{name}")).map(|e| e.offset - self.block_offset(0));
        let (projection, small) = match self.dims.kind {
            ResidualKind::Residual => (None, None),
            ResidualKind::Hc => (at("hc.w_pre"), at("hc.s_alpha")),
            ResidualKind::Mhc => (at("mhc.phi"), at("mhc.alpha")),
        };
        let known = |name: &str| at(name).unwrap_or_else(|| panic!("layout has no tensor blocks.0.{prefix}{name}"));
        BlockTensors {
            norm_weight: known("norm.weight"),
            fc1_weight: known("fc1.weight"),
            fc1_bias: known("fc1.bias"),
            fc2_weight: known("fc2.weight"),
            fc2_bias: known("fc2.bias"),
            projection,
            small,
        }
    }

    /// Typed offsets of the transformer's attention sublayer (relative to the block).
    pub fn attention_tensors(&self) -> AttentionTensors {
        if self.dims.depth == 0 || self.dims.arch != Arch::Transformer {
            return AttentionTensors::default();
        }
        let at = |name: &str| self.get(&format!("blocks.0.attn.{name}")).map(|e| e.offset - self.block_offset(0));
        let known = |name: &str| at(name).unwrap_or_else(|| panic!("layout has no tensor blocks.0.attn.{name}"));
        let (projection, small) = match self.dims.kind {
            ResidualKind::Residual => (None, None),
            ResidualKind::Hc => (at("hc.w_pre"), at("hc.s_alpha")),
            ResidualKind::Mhc => (at("mhc.phi"), at("mhc.alpha")),
        };
        AttentionTensors {
            norm_weight: known("norm.weight"),
            qkv_weight: known("qkv.weight"),
            qkv_bias: known("qkv.bias"),
            proj_weight: known("proj.weight"),
            proj_bias: known("proj.bias"),
            projection,
            small,
        }
    }

    pub fn block_offset(&self, l: usize) -> usize {
        self.embed_len + l * self.block_len
    }

    pub fn head_offset(&self) -> usize {
        self.embed_len + self.dims.depth * self.block_len
    }

    /// 1 where decoupled weight decay applies, else 0 (same layout as the parameters).
    pub fn decay_mask(&self) -> Vec<f32> {
        let mut mask = vec![0.0; self.total];
        for e in self.entries.iter().filter(|e| e.decay) {
            mask[e.range()].fill(1.0);
        }
        mask
    }

    /// Initial parameters. Each tensor draws from its own stream keyed by its name, so tensors
    /// of the same name start identical in every variant (the lockstep guarantee).
    pub fn initial_values(&self, seed: u32) -> Vec<f32> {
        let mut values = vec![0.0f32; self.total];
        for e in &self.entries {
            let slot = &mut values[e.range()];
            match &e.init {
                Init::Normal { std } => {
                    let mut rng = Rng::derive(seed, &e.name, 0);
                    for v in slot.iter_mut() {
                        *v = (rng.normal() * std) as f32;
                    }
                }
                Init::Constant(x) => slot.fill(*x),
                Init::Values(xs) => slot.copy_from_slice(xs),
            }
        }
        values
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn blocks_are_contiguous_and_equal_sized() {
        let config = Config { depth: 3, streams: 3, width: 8, ..Config::default() };
        for kind in [ResidualKind::Residual, ResidualKind::Hc, ResidualKind::Mhc] {
            let layout = ParamLayout::new(Dims::new(&config, kind));
            for l in 0..3 {
                let first = layout.offset(&format!("blocks.{l}.norm.weight"));
                assert_eq!(first, layout.block_offset(l), "{kind:?} block {l}");
            }
            assert_eq!(layout.offset("head.norm.weight"), layout.head_offset());
            assert_eq!(layout.head_offset() + layout.head_len, layout.total);
            let sum: usize = layout.entries.iter().map(|e| e.len()).sum();
            assert_eq!(sum, layout.total);
        }
    }

    #[test]
    fn shared_tensors_start_identical_across_variants() {
        let config = Config { depth: 2, streams: 2, width: 8, ..Config::default() };
        let layouts: Vec<_> =
            [ResidualKind::Residual, ResidualKind::Hc, ResidualKind::Mhc].map(|k| ParamLayout::new(Dims::new(&config, k))).into();
        let values: Vec<_> = layouts.iter().map(|l| l.initial_values(7)).collect();
        for e in &layouts[0].entries {
            for (other, vals) in layouts.iter().zip(&values).skip(1) {
                let o = other.get(&e.name).expect("shared tensor");
                assert_eq!(&values[0][e.range()], &vals[o.range()], "{}", e.name);
            }
        }
    }

    #[test]
    fn hyper_connection_init_follows_design() {
        let config = Config { depth: 3, streams: 2, width: 4, ..Config::default() };
        let hc = ParamLayout::new(Dims::new(&config, ResidualKind::Hc));
        let v = hc.initial_values(1);
        assert_eq!(&v[hc.get("blocks.1.hc.b_pre").unwrap().range()], &[0.0, 1.0]);
        assert_eq!(&v[hc.get("blocks.2.hc.b_res").unwrap().range()], &[1.0, 0.0, 0.0, 1.0]);
        let mhc = ParamLayout::new(Dims::new(&config, ResidualKind::Mhc));
        let v = mhc.initial_values(1);
        assert_eq!(&v[mhc.get("blocks.0.mhc.bias").unwrap().range()], &[3.0, -3.0, 0.0, 0.0, 4.0, 0.0, 0.0, 4.0]);
        assert!(v[mhc.get("blocks.0.mhc.phi").unwrap().range()].iter().all(|&x| x == 0.0));
    }

    #[test]
    fn transformer_layout_follows_design_1b() {
        let config = Config::from_query("task=text&depth=2&width=8&streams=2&heads=2&ctx=5&ffn=2").0;
        let v = config.classes();
        for kind in [ResidualKind::Residual, ResidualKind::Hc, ResidualKind::Mhc] {
            let layout = ParamLayout::new(Dims::new(&config, kind));
            let shape = |name: &str| layout.get(name).unwrap_or_else(|| panic!("{kind:?}: no {name}")).shape.clone();
            assert_eq!(shape("tok.weight"), [v, 8]);
            assert_eq!(shape("pos.weight"), [5, 8]);
            assert_eq!(shape("blocks.1.attn.qkv.weight"), [24, 8]);
            assert_eq!(shape("blocks.1.attn.proj.weight"), [8, 8]);
            assert_eq!(shape("blocks.0.ffn.fc1.weight"), [16, 8]);
            assert_eq!(shape("head.weight"), [v, 8]);
            for l in 0..2 {
                assert_eq!(layout.offset(&format!("blocks.{l}.attn.norm.weight")), layout.block_offset(l));
            }
            assert_eq!(layout.offset("head.norm.weight"), layout.head_offset());
            assert_eq!(layout.entries.iter().map(|e| e.len()).sum::<usize>(), layout.total);
            let decayed: Vec<&str> = layout.entries.iter().filter(|e| e.decay).map(|e| e.name.as_str()).collect();
            assert!(decayed.contains(&"tok.weight") && !decayed.contains(&"pos.weight") && decayed.contains(&"blocks.0.attn.qkv.weight"));
        }
        // Coefficients of sublayer 2l + s: block 1's attention is sublayer 2 (one-hot at 2 mod 2 = 0),
        // its FFN sublayer 3 (at 1).
        let hc = ParamLayout::new(Dims::new(&config, ResidualKind::Hc));
        let values = hc.initial_values(1);
        assert_eq!(&values[hc.get("blocks.1.attn.hc.b_pre").unwrap().range()], &[1.0, 0.0]);
        assert_eq!(&values[hc.get("blocks.1.ffn.hc.b_pre").unwrap().range()], &[0.0, 1.0]);
        // tok ~ N(0, 1), pos ~ N(0, 0.01^2).
        let spread = |name: &str| {
            let x = &values[hc.get(name).unwrap().range()];
            (x.iter().map(|v| (v * v) as f64).sum::<f64>() / x.len() as f64).sqrt()
        };
        assert!((0.7..1.3).contains(&spread("tok.weight")), "{}", spread("tok.weight"));
        assert!((0.005..0.02).contains(&spread("pos.weight")), "{}", spread("pos.weight"));
    }
}
