//! The CPU backend: a variant's arena in memory and its op lists run with fast kernels, so a
//! page without a usable GPU still tells the story at full size.
//!
//! It computes what `reference.rs` computes, bit for bit (tested): the reference stays the
//! oracle, and this backend only changes how the work is scheduled. The op lists are compiled
//! once into small units (a fused block becomes its unfused ops, a batched product its single
//! products), so that no unit is long: the page runs a step in slices between frames and
//! never holds the main thread for more than a few milliseconds per unit.

mod matmul;

use crate::kernels::{MatmulParams, Op};
use crate::program::{OpList, Program};
use crate::reference::{self, Workspace};
use matmul::MatmulScratch;
use std::collections::VecDeque;

/// How the CPU backend runs a list: with this module's kernels, or op by op through the plain
/// reference (the oracle; tests and benchmarks compare the two).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuKernels {
    Fast,
    Reference,
}

/// One variant on the CPU: its arena, its compiled op lists and the work queued on it.
pub struct CpuArena {
    pub values: Vec<f32>,
    /// The units of every [`OpList`], indexed by the list (`OpList::ALL` order).
    units: Vec<Vec<Op>>,
    kernels: CpuKernels,
    scratch: MatmulScratch,
    workspace: Workspace<f32>,
    /// Lists submitted and not yet run, and how far into the first one the backend is.
    queue: VecDeque<OpList>,
    cursor: usize,
    /// Submitted work waits for [`CpuArena::run_queued`] (the page runs it in slices between
    /// frames) instead of running at once.
    sliced: bool,
}

impl CpuArena {
    pub fn new(program: &Program, values: Vec<f32>, kernels: CpuKernels) -> CpuArena {
        let units = OpList::ALL
            .iter()
            .map(|&list| match kernels {
                CpuKernels::Fast => compile(program.list(list)),
                CpuKernels::Reference => program.list(list).to_vec(),
            })
            .collect();
        CpuArena {
            values,
            units,
            kernels,
            scratch: MatmulScratch::default(),
            workspace: Workspace::default(),
            queue: VecDeque::new(),
            cursor: 0,
            sliced: false,
        }
    }

    /// The same arena run with other kernels (queued work finishes first).
    pub fn set_kernels(&mut self, program: &Program, kernels: CpuKernels) {
        self.finish();
        let sliced = self.sliced;
        *self = CpuArena::new(program, std::mem::take(&mut self.values), kernels);
        self.sliced = sliced;
    }

    /// Whether [`CpuArena::submit`] queues work for [`CpuArena::run_queued`] or runs it at once.
    pub fn set_sliced(&mut self, sliced: bool) {
        self.sliced = sliced;
    }

    /// The units `list` runs as.
    pub fn units(&self, list: OpList) -> &[Op] {
        &self.units[list as usize]
    }

    /// Queues `lists` after whatever is queued already, and runs everything now unless sliced.
    pub fn submit(&mut self, lists: &[OpList]) {
        self.queue.extend(lists);
        if !self.sliced {
            self.finish();
        }
    }

    /// Whether queued work is left.
    pub fn busy(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Runs queued units while `keep_going` says so (asked before each unit); true once the
    /// queue is empty.
    pub fn run_queued(&mut self, keep_going: &mut dyn FnMut() -> bool) -> bool {
        while let Some(&list) = self.queue.front() {
            let index = list as usize;
            if self.cursor >= self.units[index].len() {
                self.queue.pop_front();
                self.cursor = 0;
                continue;
            }
            if !keep_going() {
                return false;
            }
            let op = self.units[index][self.cursor];
            match (self.kernels, op) {
                (CpuKernels::Fast, Op::Matmul(p)) => matmul::matmul(&mut self.values, &p, &mut self.scratch),
                (CpuKernels::Fast, op) => reference::run_op_in(&mut self.values, &op, &mut self.workspace),
                (CpuKernels::Reference, op) => reference::run_op(&mut self.values, &op),
            }
            self.cursor += 1;
        }
        true
    }

    /// Runs everything queued, now (before a write or a change of kernels: they land between
    /// steps, never inside one).
    pub fn finish(&mut self) {
        self.run_queued(&mut || true);
    }
}

/// Splits `ops` into units that compute the same thing in the same order.
fn compile(ops: &[Op]) -> Vec<Op> {
    let mut units = Vec::with_capacity(ops.len());
    for op in ops {
        // The fused kernels' twin is the unfused ops they replace (as in the reference).
        match op {
            Op::Fused(kernel, p) => units.extend(compile(&crate::block::unfused_twin(*kernel, p))),
            Op::Matmul(p) if p.batch > 1 => units.extend((0..p.batch).map(|z| Op::Matmul(single_product(p, z)))),
            op => units.push(*op),
        }
    }
    units
}

/// Product `z` of a batched matmul, as a matmul of its own.
fn single_product(p: &MatmulParams, z: u32) -> MatmulParams {
    MatmulParams {
        a_off: p.a_off + z * p.a_bs,
        b_off: p.b_off + z * p.b_bs,
        c_off: p.c_off + z * p.c_bs,
        batch: 1,
        a_bs: 0,
        b_bs: 0,
        c_bs: 0,
        ..*p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::NONE;
    use crate::rng::Rng;

    /// An arena of random values, operands and outputs alike.
    fn arena_for(seed: u64) -> Vec<f32> {
        let mut rng = Rng::new(seed);
        (0..4096).map(|_| rng.normal() as f32).collect()
    }

    #[test]
    fn products_match_the_reference_bit_for_bit() {
        // Shapes around the tile edges, transposed operands, bias, accumulation, batches.
        let cases = [
            (1, 1, 1, false, false, false, 1),
            (3, 5, 7, true, false, false, 1),
            (4, 8, 16, false, true, false, 1),
            (9, 17, 5, true, true, true, 1),
            (13, 10, 0, true, false, false, 1),
            (7, 9, 11, false, false, true, 3),
            (16, 24, 12, true, true, false, 2),
        ];
        for (case, &(m, n, k, transpose_a, transpose_b, bias, batch)) in cases.iter().enumerate() {
            let (a_rs, a_cs) = if transpose_a { (1, m) } else { (k, 1) };
            let (b_rs, b_cs) = if transpose_b { (1, k) } else { (n, 1) };
            let p = MatmulParams {
                m,
                n,
                k,
                a_off: 10,
                a_rs,
                a_cs,
                b_off: 900,
                b_rs,
                b_cs,
                c_off: 2000,
                c_rs: n + 3,
                bias_off: if bias { 3500 } else { NONE },
                accumulate: (case % 2) as u32,
                batch,
                a_bs: m * k,
                b_bs: 0,
                c_bs: m * (n + 3),
                kernel: 0,
                _pad: [0; 2],
            };
            let mut expected = arena_for(case as u64);
            reference::run_op(&mut expected, &Op::Matmul(p));
            let mut fast = CpuArena { values: arena_for(case as u64), ..CpuArena::empty() };
            fast.units = vec![compile(&[Op::Matmul(p)])];
            fast.queue.push_back(OpList::ALL[0]);
            assert!(fast.run_queued(&mut || true));
            let same = expected.iter().zip(&fast.values).all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same, "case {case}: {m}x{n}x{k} differs from the reference");
        }
    }

    impl CpuArena {
        fn empty() -> CpuArena {
            CpuArena {
                values: Vec::new(),
                units: Vec::new(),
                kernels: CpuKernels::Fast,
                scratch: MatmulScratch::default(),
                workspace: Workspace::default(),
                queue: VecDeque::new(),
                cursor: 0,
                sliced: false,
            }
        }
    }
}
