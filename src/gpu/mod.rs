//! The only module that touches wgpu: the device, the kernel cache, and one variant's arena on
//! the GPU with its op lists turned into ready-made dispatches. Readback is asynchronous
//! (`map_async` + a channel): in the browser it is simply awaited, natively the device is
//! polled first. Nothing here blocks a browser thread.

use crate::kernels::{
    block_threads, shader_source, ArenaView, Grid, MatmulKernel, Op, RegisterBlock, StreamItems, Tuning, TuningOverrides, WORKGROUP_1D,
};
use crate::program::OpList;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

mod steps;
use steps::Pending;
pub use steps::{StepWork, STEPS_PER_SUBMIT};

/// Uniform slots are this far apart (WebGPU's `minUniformBufferOffsetAlignment` is at most 256).
const PARAM_SLOT: u64 = 256;
/// The most workgroups one dispatch dimension may have.
const MAX_GROUPS_PER_DIM: u32 = 65_535;

#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error("no GPU adapter found ({0})")]
    NoAdapter(String),
    #[error("the GPU refused to create a device: {0}")]
    Device(String),
    #[error("this experiment needs a {needed_mib:.1} MiB buffer but the GPU's {limit} is {limit_mib:.1} MiB; lower depth, width, streams or batch")]
    TooLarge { needed_mib: f64, limit: &'static str, limit_mib: f64 },
    #[error("GPU validation error: {0}")]
    Validation(String),
    #[error("reading results back from the GPU failed: {0}")]
    Readback(String),
    #[error("the GPU device was lost ({0}); start the run again")]
    Lost(String),
    #[error("the GPU ran out of memory for this experiment")]
    OutOfMemory,
}

/// What the device reported on its own (uncaptured errors): kept to tell the two apart.
#[derive(Clone, Debug)]
enum DeviceError {
    Validation(String),
    /// Creating a buffer found no memory (the limits allowed it; the device did not).
    OutOfMemory,
}

/// Dispatches recorded and command buffers submitted (the benchmarks report them per step).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counters {
    pub dispatches: u64,
    pub submits: u64,
}

/// What a run of training steps took per step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepCounts {
    pub dispatches_per_step: u64,
    /// Below 1 where several steps went in one submit.
    pub submits_per_step: f64,
}

impl Counters {
    /// Per step, over `steps` steps since `before`.
    pub fn since(self, before: Counters, steps: u64) -> StepCounts {
        let steps = steps.max(1);
        StepCounts {
            dispatches_per_step: (self.dispatches - before.dispatches) / steps,
            submits_per_step: (self.submits - before.submits) as f64 / steps as f64,
        }
    }
}

/// A compiled kernel: file, entry point, arena view, subgroup sharing, and its overridable
/// constants' values (as bits).
type PipelineKey = (&'static str, &'static str, ArenaView, bool, Vec<(&'static str, u64)>);

/// Device, queue and the compiled kernels, created once and shared by every variant.
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub adapter_name: String,
    pub backend: String,
    /// The adapter runs on the CPU (SwiftShader, lavapipe, llvmpipe, WARP): the page may find
    /// its own CPU backend faster.
    pub software: bool,
    /// Threads per subgroup where the device has subgroup operations of one fixed size.
    subgroup_size: Option<u32>,
    bind_group_layout: wgpu::BindGroupLayout,
    pipeline_layout: wgpu::PipelineLayout,
    modules: RefCell<HashMap<(&'static str, ArenaView, bool), wgpu::ShaderModule>>,
    pipelines: RefCell<HashMap<PipelineKey, Arc<wgpu::ComputePipeline>>>,
    /// First uncaptured error, surfaced by [`GpuContext::check`].
    error: Arc<Mutex<Option<DeviceError>>>,
    /// Set when the device is lost (driver reset, tab in the background too long, ...).
    lost: Arc<Mutex<Option<String>>>,
    /// Dispatches recorded and command buffers submitted so far (the benchmarks report them).
    dispatches: Cell<u64>,
    submits: Cell<u64>,
    /// Readback staging buffers, reused: a step's metrics readback creates no buffer.
    staging: RefCell<Vec<wgpu::Buffer>>,
    /// Training steps recorded but not yet submitted, and the buffer their inputs come from
    /// (steps.rs: [`GpuContext::run_step`]).
    pending: RefCell<Option<Pending>>,
    upload: RefCell<Option<wgpu::Buffer>>,
    /// Steps that may wait for one submit (tests set 1 to compare).
    steps_per_submit: Cell<u32>,
    /// Tuning fixed for the arenas prepared from now on, where not the adapter's.
    overrides: Cell<TuningOverrides>,
}

impl GpuContext {
    /// Finds an adapter and opens a device with the limits the engine relies on: the WebGPU
    /// defaults (so a kernel that only works natively is caught here too), with the storage
    /// buffer limits raised to what the adapter offers.
    pub async fn new() -> Result<GpuContext, GpuError> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::NoAdapter(e.to_string()))?;
        let offered = adapter.limits();
        // Subgroup operations where the adapter has them, natively. Not yet in a browser: its
        // WGSL wants an `enable` directive (shader_source writes it), and the headless Chromium
        // here offers no subgroups to its SwiftShader, so that path has never run. Only a
        // software adapter uses them (see GpuContext::subgroups).
        let subgroups = !cfg!(target_arch = "wasm32") && adapter.features().contains(wgpu::Features::SUBGROUP);
        let limits = wgpu::Limits {
            max_storage_buffer_binding_size: offered.max_storage_buffer_binding_size,
            max_buffer_size: offered.max_buffer_size,
            ..wgpu::Limits::default()
        };
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("mhc-playground"),
                required_limits: limits,
                required_features: if subgroups { wgpu::Features::SUBGROUP } else { wgpu::Features::empty() },
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::Device(e.to_string()))?;
        let error = Arc::new(Mutex::new(None::<DeviceError>));
        let sink = error.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut slot) = sink.lock() {
                slot.get_or_insert_with(|| match e {
                    wgpu::Error::OutOfMemory { .. } => DeviceError::OutOfMemory,
                    other => DeviceError::Validation(other.to_string()),
                });
            }
        }));
        let lost = Arc::new(Mutex::new(None::<String>));
        let lost_sink = lost.clone();
        device.set_device_lost_callback(move |reason, message| {
            if let Ok(mut slot) = lost_sink.lock() {
                slot.get_or_insert_with(|| format!("{reason:?}: {message}"));
            }
        });
        let bind_group_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("arena + params"),
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only: false },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                },
                wgpu::BindGroupLayoutEntry {
                    binding: 1,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: true,
                        min_binding_size: None,
                    },
                    count: None,
                },
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("kernels"),
            bind_group_layouts: &[Some(&bind_group_layout)],
            immediate_size: 0,
        });
        let info = adapter.get_info();
        let software = is_software(&info);
        Ok(GpuContext {
            device,
            queue,
            // Browsers may hide the adapter's name; say what little is known instead.
            adapter_name: if info.name.is_empty() { format!("{:?} adapter", info.device_type) } else { info.name },
            backend: format!("{:?}", info.backend),
            software,
            subgroup_size: (subgroups && info.subgroup_min_size == info.subgroup_max_size).then_some(info.subgroup_min_size),
            bind_group_layout,
            pipeline_layout,
            modules: RefCell::new(HashMap::new()),
            pipelines: RefCell::new(HashMap::new()),
            error,
            lost,
            dispatches: Cell::new(0),
            submits: Cell::new(0),
            staging: RefCell::new(Vec::new()),
            pending: RefCell::new(None),
            upload: RefCell::new(None),
            steps_per_submit: Cell::new(STEPS_PER_SUBMIT),
            overrides: Cell::new(TuningOverrides::default()),
        })
    }

    /// Marks the adapter as a software one (the browser says so where wgpu cannot tell).
    pub fn set_software(&mut self, software: bool) {
        self.software |= software;
    }

    /// Fixes these choices for the arenas prepared after this; the others (`None`) are the
    /// adapter's.
    pub fn set_tuning(&self, overrides: TuningOverrides) {
        self.overrides.set(overrides);
    }

    /// SwiftShader and its kind in a browser: the adapter the kernels' tuning singles out.
    fn software_in_browser(&self) -> bool {
        cfg!(target_arch = "wasm32") && self.software
    }

    /// Threads per workgroup of the fused block kernels: fewest on SwiftShader (a software
    /// adapter in a browser), see [`block_threads`].
    pub fn block_threads(&self) -> u32 {
        self.overrides.get().block_threads.unwrap_or_else(|| block_threads(self.software_in_browser()))
    }

    /// How the kernels see the arena on this adapter, see [`ArenaView`].
    pub fn arena_view(&self) -> ArenaView {
        self.overrides.get().arena_view.unwrap_or_else(|| ArenaView::for_adapter(self.software_in_browser()))
    }

    /// The register block of the products and the fused kernels on this adapter, see
    /// [`RegisterBlock`].
    pub fn register_block(&self) -> RegisterBlock {
        self.overrides.get().register_block.unwrap_or_else(|| RegisterBlock::for_adapter(self.software))
    }

    /// What a thread of the fused kernels' stream phases takes on this adapter, see
    /// [`StreamItems`].
    pub fn stream_items(&self) -> StreamItems {
        self.overrides.get().stream_items.unwrap_or_else(|| StreamItems::for_adapter(self.software))
    }

    /// Whether the device has subgroup operations.
    pub fn has_subgroups(&self) -> bool {
        self.device.features().contains(wgpu::Features::SUBGROUP)
    }

    /// Whether the fused kernels and products of arenas prepared now share register-block rows
    /// through the subgroup (`shaders/shared_rows.wgsl`): where the device can, on a software
    /// adapter, whose every load is a loop over its SIMD lanes (lavapipe: the residual variant's
    /// block kernels 11% faster, its weight-gradient products 28%). A hardware GPU loads from its
    /// caches; none was at hand to measure it.
    pub fn subgroups(&self) -> bool {
        self.has_subgroups() && self.overrides.get().subgroups.unwrap_or(self.software)
    }

    /// Threads of a subgroup that share register-block rows in workgroups of `block_threads`:
    /// the adapter's fixed subgroup size (or the workgroup, where smaller), 4 or at least 8;
    /// 0 where rows are not shared. The products' workgroups are larger: where this is below the
    /// subgroup size there, their subgroups fail the vote (`subgroups.wgsl`) and do not share.
    fn share_width(&self, block_threads: u32) -> u32 {
        match self.subgroup_size {
            Some(size) if self.subgroups() => Some(size.min(block_threads)).filter(|&w| w == 4 || w >= 8).unwrap_or(0),
            _ => 0,
        }
    }

    /// The kernel every product runs with, where one is forced (None: each op's own).
    pub fn matmul_kernel(&self) -> Option<MatmulKernel> {
        self.overrides.get().matmul
    }

    /// How the fused kernels and the products of an arena prepared now are tuned (the arena
    /// view and a forced matmul kernel are read on their own).
    pub fn tuning(&self) -> Tuning {
        let block_threads = self.block_threads();
        Tuning {
            block_threads,
            register_block: self.register_block(),
            stream_items: self.stream_items(),
            share_width: self.share_width(block_threads),
        }
    }

    /// Dispatches recorded and submits made since the device was opened.
    pub fn counters(&self) -> Counters {
        Counters { dispatches: self.dispatches.get(), submits: self.submits.get() }
    }

    /// Records the given op lists of several arenas into one compute pass of one command
    /// encoder and submits it once: a lockstep step of every variant is one submit.
    pub fn run(&self, work: &[(&GpuArena, &[OpList])]) {
        let mut encoder = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("step") });
        self.record_pass(&mut encoder, work.iter().copied());
        self.submit(encoder);
    }

    /// Records one compute pass of every dispatch of the given op lists of several arenas, and
    /// counts them.
    fn record_pass<'a>(&self, encoder: &mut wgpu::CommandEncoder, work: impl IntoIterator<Item = (&'a GpuArena, &'a [OpList])>) {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("step"), timestamp_writes: None });
        for (arena, lists) in work {
            for &list in lists.iter() {
                let dispatches = &arena.lists[list as usize];
                for d in dispatches {
                    d.record(&mut pass, &arena.bind_group);
                }
                self.dispatches.set(self.dispatches.get() + dispatches.len() as u64);
            }
        }
    }

    /// Submits `encoder`, after the steps waiting for a submit (in the same submit).
    fn submit(&self, encoder: wgpu::CommandEncoder) {
        let waiting = self.pending.borrow_mut().take();
        let mut buffers = Vec::with_capacity(2);
        buffers.extend(waiting.map(|steps| steps.encoder.finish()));
        buffers.push(encoder.finish());
        self.queue.submit(buffers);
        self.submits.set(self.submits.get() + 1);
    }

    /// A mappable buffer of at least `bytes`, from the pool or new.
    fn take_staging(&self, bytes: u64) -> wgpu::Buffer {
        let mut pool = self.staging.borrow_mut();
        match pool.iter().position(|b| b.size() >= bytes) {
            Some(i) => pool.swap_remove(i),
            None => self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback"),
                // Rounded up so that slightly different reads share buffers.
                size: bytes.next_power_of_two().max(256),
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
        }
    }

    fn give_back_staging(&self, buffer: wgpu::Buffer) {
        let mut pool = self.staging.borrow_mut();
        // A few in flight at most (one per variant); keep the pool from growing without bound.
        if pool.len() < 8 {
            pool.push(buffer);
        }
    }

    pub fn max_buffer_bytes(&self) -> (u64, &'static str) {
        let limits = self.device.limits();
        let binding = limits.max_storage_buffer_binding_size;
        if limits.max_buffer_size < binding {
            (limits.max_buffer_size, "maxBufferSize")
        } else {
            (binding, "maxStorageBufferBindingSize")
        }
    }

    /// The device's loss, or the first validation error raised since it was made, if any.
    pub fn check(&self) -> Result<(), GpuError> {
        if let Some(reason) = self.lost.lock().ok().and_then(|e| e.clone()) {
            return Err(GpuError::Lost(reason));
        }
        match self.error.lock().ok().and_then(|e| e.clone()) {
            Some(DeviceError::Validation(message)) => Err(GpuError::Validation(message)),
            Some(DeviceError::OutOfMemory) => Err(GpuError::OutOfMemory),
            None => Ok(()),
        }
    }

    fn pipeline(&self, file: &'static str, entry: &'static str, overrides: &[(&'static str, f64)]) -> Arc<wgpu::ComputePipeline> {
        let view = self.arena_view();
        let subgroups = self.subgroups();
        let key: PipelineKey = (file, entry, view, subgroups, overrides.iter().map(|&(name, v)| (name, v.to_bits())).collect());
        if let Some(p) = self.pipelines.borrow().get(&key) {
            return p.clone();
        }
        let mut modules = self.modules.borrow_mut();
        let module = modules.entry((file, view, subgroups)).or_insert_with(|| {
            let source = shader_source(file, view, subgroups).unwrap_or_default();
            self.device
                .create_shader_module(wgpu::ShaderModuleDescriptor { label: Some(file), source: wgpu::ShaderSource::Wgsl(source.into()) })
        });
        let pipeline = Arc::new(self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(entry),
            layout: Some(&self.pipeline_layout),
            module,
            entry_point: Some(entry),
            // Every kernel writes its workgroup memory before reading it, so zeroing it at each
            // workgroup's start (where the backend honours this) is wasted work.
            compilation_options: wgpu::PipelineCompilationOptions { constants: overrides, zero_initialize_workgroup_memory: false },
            cache: None,
        }));
        self.pipelines.borrow_mut().insert(key, pipeline.clone());
        pipeline
    }
}

/// One dispatch, ready to record: pipeline, its uniform slot, and the workgroup counts.
struct Dispatch {
    pipeline: Arc<wgpu::ComputePipeline>,
    param_offset: u32,
    groups: [u32; 3],
    label: &'static str,
}

impl Dispatch {
    fn record(&self, pass: &mut wgpu::ComputePass, bind_group: &wgpu::BindGroup) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, bind_group, &[self.param_offset]);
        pass.dispatch_workgroups(self.groups[0], self.groups[1], self.groups[2]);
    }
}

/// One variant's arena on the GPU and its op lists as dispatches.
pub struct GpuArena {
    arena: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
    _params: wgpu::Buffer,
    lists: Vec<Vec<Dispatch>>,
    len: usize,
}

fn workgroups(grid: Grid) -> [u32; 3] {
    let fold = |groups: u32| {
        let x = groups.clamp(1, MAX_GROUPS_PER_DIM);
        [x, groups.div_ceil(x).max(1), 1]
    };
    match grid {
        Grid::Threads(n) => fold(n.div_ceil(WORKGROUP_1D)),
        Grid::ThreadsIn(n, per_group) => fold(n.div_ceil(per_group)),
        Grid::Workgroups(n) => fold(n),
        Grid::Tiles(x, y, z) => [x.max(1), y.max(1), z.max(1)],
    }
}

impl GpuArena {
    /// Uploads `initial` as the arena and prepares every op list in `lists`.
    pub fn new(ctx: &GpuContext, label: &str, initial: &[f32], lists: &[&[Op]]) -> Result<GpuArena, GpuError> {
        // Whole vec4s: the vec4 view declares the arena as array<vec4<f32>> (kernels/: ArenaView).
        let bytes = ((initial.len() * 4) as u64).div_ceil(16).max(1) * 16;
        let (limit, limit_name) = ctx.max_buffer_bytes();
        if bytes > limit {
            return Err(GpuError::TooLarge {
                needed_mib: bytes as f64 / 1048576.0,
                limit: limit_name,
                limit_mib: limit as f64 / 1048576.0,
            });
        }
        let arena = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        ctx.queue.write_buffer(&arena, 0, bytemuck::cast_slice(initial));
        let total_ops: usize = lists.iter().map(|l| l.len()).sum();
        let mut params = vec![0u8; (total_ops.max(1) as u64 * PARAM_SLOT) as usize];
        let mut prepared = Vec::with_capacity(lists.len());
        let mut slot = 0u64;
        let tuning = ctx.tuning();
        for list in lists {
            let mut dispatches = Vec::with_capacity(list.len());
            for op in list.iter() {
                let op = match ctx.matmul_kernel() {
                    Some(kernel) => op.with_matmul_kernel(kernel),
                    None => op.with_register_block(tuning.register_block),
                };
                let (file, entry) = op.entry();
                let at = (slot * PARAM_SLOT) as usize;
                let bytes = op.params_bytes();
                params[at..at + bytes.len()].copy_from_slice(bytes);
                dispatches.push(Dispatch {
                    pipeline: ctx.pipeline(file, entry, &op.overrides(&tuning)),
                    param_offset: (slot * PARAM_SLOT) as u32,
                    groups: workgroups(op.grid()),
                    label: entry,
                });
                slot += 1;
            }
            prepared.push(dispatches);
        }
        let params_buffer = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("op params"),
            size: params.len() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        ctx.queue.write_buffer(&params_buffer, 0, &params);
        let bind_group = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(label),
            layout: &ctx.bind_group_layout,
            entries: &[
                wgpu::BindGroupEntry { binding: 0, resource: arena.as_entire_binding() },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: &params_buffer,
                        offset: 0,
                        size: wgpu::BufferSize::new(PARAM_SLOT),
                    }),
                },
            ],
        });
        ctx.check()?;
        Ok(GpuArena { arena, bind_group, _params: params_buffer, lists: prepared, len: initial.len() })
    }

    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes `data` at element `offset`, after every step recorded so far.
    pub fn write(&self, ctx: &GpuContext, offset: u32, data: &[f32]) {
        // A queue write lands before the next submit: the waiting steps go first.
        ctx.flush();
        ctx.queue.write_buffer(&self.arena, offset as u64 * 4, bytemuck::cast_slice(data));
    }

    /// Records the given op lists (by index) into one compute pass of one encoder and submits.
    pub fn run(&self, ctx: &GpuContext, lists: &[OpList]) {
        ctx.run(&[(self, lists)]);
    }

    /// Records dispatch `index` of `list` `times` times in one pass and submits it (profiling in
    /// the page, which has no blocking wait: it reads back after this to time it).
    pub fn run_one(&self, ctx: &GpuContext, list: OpList, index: usize, times: u32) {
        let Some(d) = self.lists[list as usize].get(index) else { return };
        let mut encoder = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(d.label) });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(d.label), timestamp_writes: None });
            for _ in 0..times {
                d.record(&mut pass, &self.bind_group);
            }
        }
        ctx.submit(encoder);
    }

    /// Entry-point names of a list, in dispatch order (for per-kernel timing reports).
    pub fn labels(&self, list: OpList) -> Vec<&'static str> {
        self.lists[list as usize].iter().map(|d| d.label).collect()
    }

    /// Runs each dispatch of `list` `repeats` times, each in its own submit waited for, and
    /// returns `(entry point, seconds)` of its fastest run: on a shared machine whose speed
    /// swings 2x within a minute the fastest of a few runs is what stays put. Only for the native
    /// `bench` command: it blocks.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn time_each(&self, ctx: &GpuContext, list: OpList, repeats: u32) -> Vec<(&'static str, f64)> {
        let mut out = Vec::with_capacity(self.lists[list as usize].len());
        for d in &self.lists[list as usize] {
            let mut fastest = f64::INFINITY;
            for _ in 0..repeats.max(1) {
                let start = std::time::Instant::now();
                let mut encoder = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(d.label) });
                {
                    let mut pass =
                        encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(d.label), timestamp_writes: None });
                    d.record(&mut pass, &self.bind_group);
                }
                ctx.submit(encoder);
                let _ = ctx.device.poll(wgpu::PollType::wait_indefinitely());
                fastest = fastest.min(start.elapsed().as_secs_f64());
            }
            out.push((d.label, fastest));
        }
        out
    }

    /// Reads `len` elements from element `offset`, after all submitted work.
    pub async fn read(&self, ctx: &GpuContext, offset: u32, len: usize) -> Result<Vec<f32>, GpuError> {
        ctx.check()?;
        if len == 0 {
            return Ok(Vec::new());
        }
        let bytes = (len * 4) as u64;
        let staging = ctx.take_staging(bytes);
        let mut encoder = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("readback") });
        encoder.copy_buffer_to_buffer(&self.arena, offset as u64 * 4, &staging, 0, bytes);
        ctx.submit(encoder);
        let (sender, receiver) = futures_channel::oneshot::channel();
        staging.slice(..bytes).map_async(wgpu::MapMode::Read, move |result| {
            let _ = sender.send(result);
        });
        #[cfg(not(target_arch = "wasm32"))]
        ctx.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| GpuError::Readback(e.to_string()))?;
        receiver.await.map_err(|_| GpuError::Readback("the device went away".into()))?.map_err(|e| GpuError::Readback(e.to_string()))?;
        let values = {
            let view = staging.slice(..bytes).get_mapped_range().map_err(|e| GpuError::Readback(e.to_string()))?;
            bytemuck::cast_slice::<u8, f32>(&view).to_vec()
        };
        staging.unmap();
        ctx.give_back_staging(staging);
        ctx.check()?;
        Ok(values)
    }
}

/// Whether an adapter renders in software: by its device type, or by the names the common
/// software rasterisers give themselves.
fn is_software(info: &wgpu::AdapterInfo) -> bool {
    let names = [&info.name, &info.driver, &info.driver_info].map(|s| s.to_lowercase());
    info.device_type == wgpu::DeviceType::Cpu
        || ["swiftshader", "llvmpipe", "lavapipe", "warp", "basic render"].iter().any(|soft| names.iter().any(|n| n.contains(soft)))
}
