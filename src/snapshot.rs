//! A run's whole training state in one safetensors file, so that a reloaded page (or anything
//! else) resumes exactly where it stopped: per variant the parameters, both optimiser moments
//! and the metrics block (which holds the divergence record the device freezes a variant by);
//! the next step; the experiment's query string in the metadata. The next steps after a resume
//! equal an unbroken run's: nothing else carries over from one step to the next.

use crate::checkpoint::{write_tensors, CheckpointError, TensorFile};
use crate::config::Config;
use crate::gpu::GpuContext;
use crate::metrics::Divergence;
use crate::trainer::{EngineError, Trainer};
use std::rc::Rc;

/// The parts of one variant's arena a snapshot keeps as floats, by tensor-name suffix. The
/// metrics block goes as raw bits (`<mode>.metrics_bits`, i32): a diverged variant's block holds
/// the non-finite values it was stopped for, which a float tensor may not carry.
const PARTS: [&str; 3] = ["params", "moment1", "moment2"];

impl Trainer {
    /// The state after the last submitted step, as safetensors bytes. Reads the device.
    pub async fn snapshot(&self) -> Result<Vec<u8>, EngineError> {
        let mut floats = Vec::new();
        let mut ints = vec![("next_step".to_string(), vec![1], vec![i32::try_from(self.next_step).unwrap_or(i32::MAX)])];
        for variant in &self.variants {
            let plan = &variant.program.plan;
            let total = variant.program.layout.total;
            let regions = [(plan.params, total), (plan.moment1, total), (plan.moment2, total)];
            for (part, (offset, len)) in PARTS.iter().zip(regions) {
                floats.push((format!("{}.{part}", variant.kind.name()), vec![len], variant.read(offset, len).await?));
            }
            let metrics = variant.read(plan.metrics, plan.metrics_len as usize).await?;
            let bits = metrics.iter().map(|v| v.to_bits() as i32).collect();
            ints.push((format!("{}.metrics_bits", variant.kind.name()), vec![metrics.len()], bits));
            let divergence = variant.divergence.map_or([-1, -1], |d| [i32::try_from(d.step).unwrap_or(i32::MAX), d.block as i32]);
            ints.push((format!("{}.divergence", variant.kind.name()), vec![2], divergence.to_vec()));
        }
        Ok(write_tensors(&floats, &ints, Some(&self.config.to_query()))?)
    }

    /// A trainer in exactly the state `bytes` (from [`Trainer::snapshot`]) holds, on `gpu` or
    /// the CPU. Anything missing, misshapen or not finite is refused with the reason.
    pub fn resume(bytes: &[u8], gpu: Option<Rc<GpuContext>>) -> Result<Trainer, EngineError> {
        let file = TensorFile::parse(bytes)?;
        let (config, notices): (Config, _) = file.experiment()?;
        if let Some(notice) = notices.first() {
            return Err(CheckpointError::Format(format!("the saved experiment does not read back cleanly: {notice}")).into());
        }
        let mut trainer = Trainer::new(&config, gpu)?;
        let (_, next) = file.i32("next_step")?;
        trainer.next_step = match next.as_slice() {
            [step] if *step >= 0 && *step as u32 <= config.steps => *step as u64,
            _ => return Err(CheckpointError::Format(format!("next_step {next:?} is not a step of this run")).into()),
        };
        for variant in &mut trainer.variants {
            let name = variant.kind.name();
            let plan = &variant.program.plan;
            let total = variant.program.layout.total;
            let (metrics_at, metrics_len) = (plan.metrics, plan.metrics_len as usize);
            let regions = [(plan.params, total), (plan.moment1, total), (plan.moment2, total)];
            for (part, (offset, len)) in PARTS.iter().zip(regions) {
                // `f32` refuses values that are not finite: a model state must be finite to go on.
                let (_, values) = file.f32(&format!("{name}.{part}"), Some(&[len]))?;
                variant.write(offset, &values);
            }
            let (shape, bits) = file.i32(&format!("{name}.metrics_bits"))?;
            if shape != [metrics_len] {
                return Err(CheckpointError::Format(format!("{name}.metrics_bits has shape {shape:?}, expected [{metrics_len}]")).into());
            }
            let metrics: Vec<f32> = bits.iter().map(|&b| f32::from_bits(b as u32)).collect();
            variant.write(metrics_at, &metrics);
            let (_, divergence) = file.i32(&format!("{name}.divergence"))?;
            variant.divergence = match divergence.as_slice() {
                [-1, -1] => None,
                [step, block] if *step >= 0 && *block >= 0 => Some(Divergence { step: *step as u64, block: *block as u32 }),
                other => return Err(CheckpointError::Format(format!("{name}.divergence {other:?} is not a step and a block")).into()),
            };
        }
        Ok(trainer)
    }
}
