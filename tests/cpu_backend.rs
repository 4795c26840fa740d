//! The fast CPU backend computes what the reference computes, bit for bit: the same training
//! run on both ends in the same snapshot (weights, optimiser moments, metrics, divergence), for
//! every variant, f16 streams, both optimisers, fused and unfused op lists, and a run whose HC
//! diverges. Run in slices (as the page does), it still ends in the same bits.

use mhc_playground::config::Config;
use mhc_playground::cpu::CpuKernels;
use mhc_playground::kernels::{FusedKernel, Op};
use mhc_playground::metrics::StepMetrics;
use mhc_playground::program::{Kernels, OpList};
use mhc_playground::trainer::{EngineError, Trainer};

/// Counts this thread's allocations (the tests of this file run on several threads).
struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

unsafe impl std::alloc::GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        ALLOCATIONS.with(|count| count.set(count.get() + 1));
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

const QUERIES: [&str; 4] = [
    "task=teacher&depth=3&width=8&streams=3&ffn=2&batch=8&lr=0.02&warmup=5&eval_every=4",
    "task=spiral&depth=4&width=12&streams=2&batch=16&optimizer=sgd&wd=0.1&precision=f16&lr=0.05&eval_every=5",
    "task=modadd&depth=2&width=16&streams=4&batch=12&act=relu&sinkhorn_iters=7",
    // HC diverges here; the others go on.
    "task=xor&depth=6&width=8&streams=2&batch=8&lr=3&eval_every=3",
];

/// Trains `steps` steps (gains every other step) and returns the metrics and the snapshot.
fn train(trainer: &mut Trainer, steps: u64, slice_units: Option<usize>) -> (Vec<StepMetrics>, Vec<u8>) {
    let mut rows = Vec::new();
    for _ in 0..steps {
        let measure = trainer.next_step.is_multiple_of(2);
        trainer.submit_step(measure);
        if let Some(units) = slice_units {
            // A few units per slice, as the page runs them between frames.
            let mut slices = 0;
            loop {
                let mut left = units;
                let done = trainer.run_queued(&mut || {
                    left = left.saturating_sub(1);
                    left > 0
                });
                if done {
                    break;
                }
                slices += 1;
                assert!(matches!(pollster::block_on(trainer.peek_metrics()), Err(EngineError::Busy)), "read inside a step");
            }
            assert!(slices > 0, "a step should take more than one slice of {units} units");
        }
        rows.extend(pollster::block_on(trainer.read_metrics()).unwrap());
    }
    trainer.submit_probe();
    trainer.run_queued(&mut || true);
    let snapshot = pollster::block_on(trainer.snapshot()).unwrap();
    (rows, snapshot)
}

#[test]
fn fast_kernels_train_exactly_as_the_reference() {
    for query in QUERIES {
        for kernels in [Kernels::Fused, Kernels::Unfused] {
            let (config, _) = Config::from_query(query);
            let mut reference = Trainer::with_kernels(&config, None, kernels).unwrap();
            reference.set_cpu_kernels(CpuKernels::Reference);
            let mut fast = Trainer::with_kernels(&config, None, kernels).unwrap();
            let expected = train(&mut reference, 12, None);
            let got = train(&mut fast, 12, None);
            assert_eq!(got.0, expected.0, "{query} ({kernels:?}): metrics differ");
            assert!(got.1 == expected.1, "{query} ({kernels:?}): weights or optimiser state differ");
        }
    }
    let (config, _) = Config::from_query(QUERIES[3]);
    let mut trainer = Trainer::new(&config, None).unwrap();
    train(&mut trainer, 12, None);
    assert!(trainer.variants.iter().any(|v| v.divergence.is_some()), "the last config should make HC diverge");
}

#[test]
fn a_step_run_in_slices_ends_in_the_same_bits() {
    for query in QUERIES {
        let (config, _) = Config::from_query(query);
        let mut whole = Trainer::new(&config, None).unwrap();
        let mut sliced = Trainer::new(&config, None).unwrap();
        sliced.set_sliced(true);
        let expected = train(&mut whole, 6, None);
        let got = train(&mut sliced, 6, Some(7));
        assert_eq!(got.0, expected.0, "{query}");
        assert!(got.1 == expected.1, "{query}: weights or optimiser state differ");
    }
}

#[test]
fn no_unit_of_a_default_step_is_long() {
    // The page's slices can only be as short as the longest unit: at the default experiment
    // none may be a whole batched product over every block.
    let config = Config::default();
    let program = mhc_playground::program::Program::new(&config, config.modes[2], 0).unwrap();
    let arena = mhc_playground::cpu::CpuArena::new(&program, vec![0.0; 1], CpuKernels::Fast);
    let whole = |op: &Op| {
        matches!(op, Op::Fused(FusedKernel::BlockForward | FusedKernel::BlockBackward, _)) || matches!(op, Op::Matmul(p) if p.batch > 1)
    };
    for list in OpList::ALL {
        assert!(program.list(list).iter().any(whole) || list != OpList::Train, "the default train list has fused and batched ops");
        assert!(!arena.units(list).iter().any(whole), "{list:?} keeps a fused block or a batched product as one unit");
    }
}

#[test]
fn after_the_first_step_the_cpu_backend_allocates_nothing() {
    // Evaluation, training, gains and the probe: every list the page runs. The first step sizes
    // the scratch; from then on running the step's units allocates nothing.
    for query in QUERIES {
        let (config, _) = Config::from_query(query);
        let mut trainer = Trainer::new(&config, None).unwrap();
        trainer.set_sliced(true);
        for step in 0..3 {
            trainer.submit_with(true, true);
            trainer.submit_probe();
            let before = ALLOCATIONS.with(|count| count.get());
            assert!(trainer.run_queued(&mut || true));
            let allocated = ALLOCATIONS.with(|count| count.get()) - before;
            if step > 0 {
                assert_eq!(allocated, 0, "{query}: step {step} allocated {allocated} times");
            }
            pollster::block_on(trainer.read_metrics()).unwrap();
        }
    }
}
