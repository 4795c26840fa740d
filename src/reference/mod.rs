//! Plain-Rust reference of every kernel in `kernels/`: the test oracle for the WGSL kernels
//! and for the CPU backend (`cpu/`, which runs this code for everything but the products).
//! Generic over the float type so the same code runs in f64 for finite-difference gradient
//! checks and in f32 as a backend. One file per shader file; here the shared scalar functions,
//! the dispatch of an [`Op`] and the [`Workspace`].
//!
//! Each function mirrors one WGSL entry point, loop for loop, so that "GPU against CPU" compares
//! the same arithmetic (up to summation order in the tree reductions).

use crate::block::unfused_twin;
use crate::kernels::*;
use num_traits::Float;

mod attention;
mod embed;
mod hyper;
mod linear;
mod loss;
mod metrics;
mod optimizer;
mod rmsnorm;
mod streams;

pub use attention::*;
pub use embed::*;
pub use hyper::*;
pub use linear::*;
pub use loss::*;
pub use metrics::*;
pub use optimizer::*;
pub use rmsnorm::*;
pub use streams::*;

/// A float the reference can run in (f32 as a backend, f64 for gradient checks).
pub trait Real: Float + std::fmt::Debug + Default + Send + Sync + 'static {
    fn of(x: f64) -> Self;
    fn f64(self) -> f64;
}
impl Real for f32 {
    fn of(x: f64) -> Self {
        x as f32
    }
    fn f64(self) -> f64 {
        self as f64
    }
}
impl Real for f64 {
    fn of(x: f64) -> Self {
        x
    }
    fn f64(self) -> f64 {
        self
    }
}

/// Added under the square root of every RMS (DESIGN.md: `rms(v) = sqrt(mean(v^2) + 1e-6)`).
pub const RMS_EPS: f64 = 1e-6;
/// Adam's epsilon (PyTorch default).
pub const ADAM_EPS: f32 = 1e-8;

/// Nearest f16 value of `x` (round to nearest, ties to even; overflow to infinity), as f32.
/// Written with bit operations so the WGSL twin in `prelude.wgsl` matches it exactly.
pub fn round_to_f16(x: f32) -> f32 {
    let bits = x.to_bits();
    let sign = bits & 0x8000_0000;
    let magnitude = bits & 0x7fff_ffff;
    if magnitude >= 0x7f80_0000 {
        return x; // inf and NaN stay as they are
    }
    if magnitude >= 0x477f_f000 {
        // >= 65520 rounds past the largest f16 (65504).
        return f32::from_bits(sign | 0x7f80_0000);
    }
    if magnitude < 0x3880_0000 {
        // Below 2^-14 f16 is subnormal: a multiple of 2^-24. Scaling by 2^24 is exact.
        let scaled = f32::from_bits(magnitude) * 16_777_216.0;
        let rounded = scaled.round_ties_even();
        return f32::from_bits(sign | (rounded * 5.960_464_5e-8).to_bits());
    }
    // Normal: keep 10 of the 23 mantissa bits, ties to even.
    let lsb = (magnitude >> 13) & 1;
    let rounded = (magnitude + 0x0fff + lsb) & 0xffff_e000;
    f32::from_bits(sign | rounded)
}

fn is_finite<T: Real>(x: T) -> bool {
    x.is_finite()
}

fn u(i: u32) -> usize {
    i as usize
}

/// `1 - 2 / (exp(2x) + 1)`: tanh that saturates cleanly to +-1 for large |x| (the WGSL twin
/// avoids the inf/inf of the textbook formula).
pub fn stable_tanh<T: Real>(x: T) -> T {
    let two = T::of(2.0);
    T::one() - two / ((two * x).exp() + T::one())
}

fn sigmoid<T: Real>(x: T) -> T {
    T::one() / (T::one() + (-x).exp())
}

const GELU_C: f64 = 0.797_884_560_802_865_4; // sqrt(2/pi)
const GELU_K: f64 = 0.044715;

/// `act(x)` for the activation codes of `kernels/`.
pub fn activation<T: Real>(kind: u32, x: T) -> T {
    match kind {
        ACT_GELU => {
            let t = stable_tanh(T::of(GELU_C) * (x + T::of(GELU_K) * x * x * x));
            T::of(0.5) * x * (T::one() + t)
        }
        ACT_RELU => x.max(T::zero()),
        _ => stable_tanh(x),
    }
}

/// `act'(x)`.
pub fn activation_grad<T: Real>(kind: u32, x: T) -> T {
    match kind {
        ACT_GELU => {
            let c = T::of(GELU_C);
            let k = T::of(GELU_K);
            let t = stable_tanh(c * (x + k * x * x * x));
            let half = T::of(0.5);
            half * (T::one() + t) + half * x * (T::one() - t * t) * c * (T::one() + T::of(3.0) * k * x * x)
        }
        ACT_RELU => {
            if x > T::zero() {
                T::one()
            } else {
                T::zero()
            }
        }
        _ => {
            let t = stable_tanh(x);
            T::one() - t * t
        }
    }
}

/// Runs one op on the arena.
pub fn run_op<T: Real>(a: &mut [T], op: &Op) {
    run_op_in(a, op, &mut Workspace::default());
}

/// [`run_op`] with the temporaries in `ws` (kept by the CPU backend across steps).
pub fn run_op_in<T: Real>(a: &mut [T], op: &Op, ws: &mut Workspace<T>) {
    match op {
        Op::Matmul(p) => matmul(a, p),
        Op::Reduce(p) => reduce_rows(a, p),
        Op::RmsNormForward(p) => rmsnorm_forward(a, p),
        Op::RmsNormBackward(p) => rmsnorm_backward(a, p),
        Op::RmsNormWeightGrad(p) => rmsnorm_backward_weight(a, p),
        Op::ActForward(p) => {
            for e in 0..u(p.len) {
                a[u(p.y_off) + e] = activation(p.kind, a[u(p.x_off) + e]);
            }
        }
        Op::ActBackward(p) => {
            for e in 0..u(p.len) {
                a[u(p.dx_off) + e] = a[u(p.dy_off) + e] * activation_grad(p.kind, a[u(p.x_off) + e]);
            }
        }
        Op::Broadcast(p) => broadcast(a, p),
        Op::CombineForward(p) => combine_forward(a, p),
        Op::CombineBackward(p) => combine_backward(a, p),
        Op::CombineBackwardCoeff(p) => combine_backward_coeff(a, p),
        Op::UpdateForward(p) => update_forward(a, p),
        Op::UpdateBackward(p) => update_backward(a, p),
        Op::UpdateBackwardCoeff(p) => update_backward_coeff(a, p),
        Op::HcCoeffForward(p) => hc_coeff_forward(a, p),
        Op::HcCoeffBackward(p) => hc_coeff_backward(a, p),
        Op::MhcCoeffForward(p) => mhc_coeff_forward(a, p, ws),
        Op::MhcCoeffBackward(p) => mhc_coeff_backward(a, p, ws),
        Op::XentForward(p) => xent_forward(a, p),
        Op::XentBackward(p) => xent_backward(a, p),
        Op::SegmentStats(p) => segment_stats(a, p),
        Op::StepFinalize(p) => step_finalize(a, p),
        Op::AnswerCorrect(p) => answer_correct(a, p),
        Op::Gains(p) => gains(a, p, ws),
        Op::Optimizer(p) => optimizer_step(a, p),
        // The fused kernels' twin is the unfused ops they replace.
        Op::Fused(kernel, p) => unfused_twin(*kernel, p).iter().for_each(|op| run_op_in(a, op, ws)),
        Op::EmbedForward(p) => embed_forward(a, p),
        Op::EmbedBackwardTokens(p) => embed_backward_tokens(a, p),
        Op::AttentionForward(p) => attention_forward(a, p),
        Op::AttentionBackwardQueries(p) => attention_backward_queries(a, p),
        Op::AttentionBackwardKeys(p) => attention_backward_keys(a, p),
    }
}

/// Temporaries of the ops that need them (the mHC coefficient path and the gains), sized on
/// first use: the CPU backend keeps one across steps, so a step allocates nothing.
#[derive(Clone, Debug, Default)]
pub struct Workspace<T> {
    m: Vec<T>,
    logits: Vec<T>,
    hres: Vec<T>,
    divisors: Vec<T>,
    upstream: Vec<T>,
    dlogits: Vec<T>,
    y: Vec<T>,
    dm: Vec<T>,
    prefix: Vec<T>,
    next: Vec<T>,
}
