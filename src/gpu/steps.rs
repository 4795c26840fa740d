//! Several training steps per submit. While no metrics are due, a step's dispatches wait in an
//! open command encoder, and the next step records after them. The encoder is submitted once
//! [`STEPS_PER_SUBMIT`] steps wait, when a step's metrics are due, or before anything else
//! reaches the queue (a read, a write, another run).
//!
//! A step's inputs (its batch and step scalars) cannot be queue writes to the arena: a queue
//! write lands before the next submit, so every waiting step would see the last step's batch.
//! Each step's inputs go to their own place in an upload buffer instead. The step's part of the
//! encoder first copies them into the arena, then runs its compute pass.

use super::{GpuArena, GpuContext};
use crate::program::OpList;

/// Steps that may wait for one submit. A submit costs the browser a trip to its GPU process, and a
/// step of a small experiment on a real GPU is little more than that. But the GPU starts on none
/// of the waiting steps before they are submitted: the page's slice of steps (ui/run.rs) would
/// leave it idle while the whole slice is encoded. Four bounds that to three steps' encoding.
pub const STEPS_PER_SUBMIT: u32 = 4;

/// The upload buffer's first size; it grows when one step's inputs need more.
const UPLOAD_BYTES: u64 = 1 << 20;

/// Steps recorded since the last submit.
pub(super) struct Pending {
    pub(super) encoder: wgpu::CommandEncoder,
    steps: u32,
    /// Bytes of the upload buffer their inputs take, from its start.
    uploaded: u64,
}

/// One variant's part of a training step: the inputs to put into its arena first (element
/// offset, values), then its op lists.
pub struct StepWork<'a> {
    pub arena: &'a GpuArena,
    pub inputs: &'a [(u32, Vec<f32>)],
    pub lists: &'a [OpList],
}

impl GpuContext {
    /// Records one lockstep step of several arenas: each one's inputs copied in, then one
    /// compute pass of all their dispatches. With `metrics_due` the step is submitted with the
    /// steps waiting before it. Otherwise it waits too, up to [`STEPS_PER_SUBMIT`] steps.
    pub fn run_step(&self, work: &[StepWork], metrics_due: bool) {
        let bytes: u64 = work.iter().flat_map(|w| w.inputs.iter()).map(|(_, values)| values.len() as u64 * 4).sum();
        let waiting = self.pending.borrow().as_ref().map_or(0, |p| p.uploaded);
        if waiting + bytes > self.upload_capacity() {
            self.flush();
        }
        let upload = self.upload_for(bytes);
        let mut pending = self.pending.borrow_mut().take().unwrap_or_else(|| Pending {
            encoder: self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("steps") }),
            steps: 0,
            uploaded: 0,
        });
        for w in work {
            for (offset, values) in w.inputs.iter().filter(|(_, values)| !values.is_empty()) {
                let len = values.len() as u64 * 4;
                self.queue.write_buffer(&upload, pending.uploaded, bytemuck::cast_slice(values));
                pending.encoder.copy_buffer_to_buffer(&upload, pending.uploaded, &w.arena.arena, *offset as u64 * 4, len);
                pending.uploaded += len;
            }
        }
        self.record_pass(&mut pending.encoder, work.iter().map(|w| (w.arena, w.lists)));
        pending.steps += 1;
        let full = pending.steps >= self.steps_per_submit.get();
        *self.pending.borrow_mut() = Some(pending);
        if metrics_due || full {
            self.flush();
        }
    }

    /// Submits the steps waiting for a submit, if any.
    pub fn flush(&self) {
        let waiting = self.pending.borrow_mut().take();
        if let Some(steps) = waiting {
            self.queue.submit([steps.encoder.finish()]);
            self.submits.set(self.submits.get() + 1);
        }
    }

    /// At most this many steps wait for one submit from now on (at least 1).
    pub fn set_steps_per_submit(&self, steps: u32) {
        self.flush();
        self.steps_per_submit.set(steps.max(1));
    }

    fn upload_capacity(&self) -> u64 {
        self.upload.borrow().as_ref().map_or(0, |b| b.size())
    }

    /// The upload buffer, grown to hold at least `bytes` (nothing waits when it must grow: a
    /// step that does not fit after the waiting ones submits them first).
    fn upload_for(&self, bytes: u64) -> wgpu::Buffer {
        let mut upload = self.upload.borrow_mut();
        match upload.as_ref() {
            Some(buffer) if buffer.size() >= bytes => buffer.clone(),
            _ => {
                let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("step inputs"),
                    size: bytes.next_power_of_two().max(UPLOAD_BYTES),
                    usage: wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                *upload = Some(buffer.clone());
                buffer
            }
        }
    }
}
