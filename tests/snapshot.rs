//! A run saved with `Trainer::snapshot` and resumed with `Trainer::resume` goes on exactly as
//! the unbroken run: bit for bit on the CPU reference, and on the GPU too (same kernels, same
//! inputs). A damaged snapshot is refused with a reason.

mod common;

use mhc_playground::config::Config;
use mhc_playground::metrics::StepMetrics;
use mhc_playground::trainer::Trainer;

/// `steps` more steps, each read back (gains measured every third).
fn run(trainer: &mut Trainer, steps: u64) -> Vec<StepMetrics> {
    let mut rows = Vec::new();
    for _ in 0..steps {
        let measure = trainer.next_step.is_multiple_of(3);
        trainer.submit_step(measure);
        rows.extend(pollster::block_on(trainer.read_metrics()).unwrap());
    }
    rows
}

fn check_resume(gpu: bool) {
    // f16 streams, SGD and weight decay on one side, AdamW with warmup on the other; HC diverges
    // at this learning rate and stays stopped after the resume.
    for query in [
        "task=teacher&depth=3&width=8&streams=3&ffn=2&batch=8&lr=0.02&warmup=5&eval_every=4",
        "task=spiral&depth=4&width=8&streams=2&batch=16&optimizer=sgd&wd=0.1&precision=f16&lr=0.05&eval_every=5",
    ] {
        let (config, _) = Config::from_query(query);
        let device = || gpu.then(common::gpu);
        let mut unbroken = Trainer::new(&config, device()).unwrap();
        run(&mut unbroken, 9);
        let bytes = pollster::block_on(unbroken.snapshot()).unwrap();
        let expected = run(&mut unbroken, 7);
        let mut resumed = Trainer::resume(&bytes, device()).unwrap();
        assert_eq!(resumed.next_step, 9);
        let got = run(&mut resumed, 7);
        assert_eq!(got, expected, "{query} on the {}", if gpu { "GPU" } else { "CPU" });
    }
}

#[test]
fn a_resumed_run_equals_the_unbroken_one_on_the_cpu() {
    check_resume(false);
}

#[test]
fn a_resumed_run_equals_the_unbroken_one_on_the_gpu() {
    check_resume(true);
}

#[test]
fn a_diverged_variant_stays_stopped_and_damaged_snapshots_are_refused() {
    let (config, _) = Config::from_query("depth=24&width=32&batch=32&lr=0.5&precision=f16&modes=hc,mhc&task=xor");
    let mut trainer = Trainer::new(&config, None).unwrap();
    while trainer.variants[0].divergence.is_none() && trainer.next_step < 200 {
        run(&mut trainer, 1);
    }
    let diverged = trainer.variants[0].divergence.expect("HC diverges at lr 0.5 with f16 streams");
    let bytes = pollster::block_on(trainer.snapshot()).unwrap();
    let resumed = Trainer::resume(&bytes, None).unwrap();
    assert_eq!(resumed.variants[0].divergence, Some(diverged));
    assert_eq!(resumed.variants[1].divergence, None);

    let refuse = |bytes: &[u8], says: &str| {
        let err = Trainer::resume(bytes, None).err().unwrap_or_else(|| panic!("accepted, expected {says}")).to_string();
        assert!(err.contains(says), "{err}");
    };
    refuse(b"not a snapshot", "not a readable safetensors file");
    refuse(&bytes[..bytes.len() / 2], "not a readable safetensors file");
    // A snapshot of another experiment's shapes: the tensors do not fit.
    let (other, _) = Config::from_query("depth=2&width=8&batch=8&modes=hc,mhc&task=xor");
    let small = pollster::block_on(Trainer::new(&other, None).unwrap().snapshot()).unwrap();
    let mut relabelled = small.clone();
    let at = small.windows(7).position(|w| w == b"depth=2").expect("the config is in the header");
    relabelled[at + 6] = b'3';
    refuse(&relabelled, "shape");
}
