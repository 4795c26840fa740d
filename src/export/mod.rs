//! The bridge to PyTorch (`export-torch` and the page's Export PyTorch): an experiment becomes a
//! folder (or one `.zip`) holding a readable, self-contained `train.py`, the experiment's keys, the
//! initial weights of every variant and the data the playground trains on, so the script starts
//! from exactly the playground's state and draws the same batches (it ports `rng.rs`).
//!
//! Files: `train.py`, `experiment.json` (`query`, every key's value, default and range),
//! `init.<mode>.safetensors` for all three variants (checkpoints in DESIGN.md's names, whatever
//! `modes` says, so `--set modes=...` still starts from the playground's weights),
//! `data.safetensors` (`train_x [N, d_in] f32`, `train_y [N] i32`, `test_x`, `test_y`; teacher:
//! also `teacher.{k}.weight [out, in] f64`, `teacher.{k}.bias [out] f64`; the transformer: see
//! [`data_tensors`]), `README.md`.

mod zip;

use crate::checkpoint::{save_checkpoint, CheckpointError};
use crate::config::{key_specs, Arch, Config, KeyKind, ResidualKind, Task};
use crate::layout::{Dims, ParamLayout};
use crate::program::label_value;
use crate::tasks::Dataset;
use safetensors::tensor::{Dtype, TensorView};
use serde_json::json;

pub use zip::stored_zip;

/// The training script; it reads `experiment.json` beside it, so it is the same for every export.
pub const TRAIN_PY: &str = include_str!("train.py");

/// One file of an export: its name inside the folder or zip, and its bytes.
pub struct ExportFile {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// Why an experiment cannot be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Text(#[from] crate::tokens::TextError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

/// The files of `config`'s PyTorch export.
pub fn torch_export(config: &Config) -> Result<Vec<ExportFile>, ExportError> {
    crate::tokens::check_text(config)?;
    let file = |name: &str, bytes: Vec<u8>| ExportFile { name: name.to_string(), bytes };
    let mut files = vec![file("train.py", TRAIN_PY.as_bytes().to_vec()), file("experiment.json", experiment_json(config).into_bytes())];
    for kind in ResidualKind::ALL {
        let layout = ParamLayout::new(Dims::new(config, kind));
        let values = layout.initial_values(config.seed);
        files.push(file(&format!("init.{}.safetensors", kind.name()), save_checkpoint(&layout, &values, config)?));
    }
    files.push(file("data.safetensors", data_tensors(config)?));
    files.push(file("README.md", readme(config).into_bytes()));
    Ok(files)
}

/// Every key with its value and default as the playground writes them, and its range, so the
/// script can take `--set` as strictly as the runner does.
fn experiment_json(config: &Config) -> String {
    let defaults = Config::default();
    let (mut keys, mut order) = (serde_json::Map::new(), Vec::new());
    let (mut values, mut default_values) = (serde_json::Map::new(), serde_json::Map::new());
    for spec in key_specs() {
        let kind = match spec.kind {
            KeyKind::Float { min, max } => json!({"kind": "float", "min": min, "max": max}),
            KeyKind::Int { min, max } => json!({"kind": "int", "min": min, "max": max}),
            KeyKind::Choice(names) => json!({"kind": "choice", "names": names}),
            KeyKind::Modes => json!({"kind": "modes"}),
        };
        keys.insert(spec.name.into(), kind);
        order.push(spec.name);
        values.insert(spec.name.into(), json!(config.get(spec.name)));
        default_values.insert(spec.name.into(), json!(defaults.get(spec.name)));
    }
    let doc = json!({"query": config.to_query(), "order": order, "config": values, "defaults": default_values, "keys": keys});
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}

/// The data set as tensors (labels as i32; the teacher's weights in f64, as it labels in f64).
/// The transformer's: `test_x`, `test_y [E, T] i32` (-1: no target), and the whole text the
/// script cuts its splits from (`text_tokens [L] i32`, `vocabulary [V] i32` code points; the
/// book for the digit puzzles, so `--set task=text` works too).
fn data_tensors(config: &Config) -> Result<Vec<u8>, ExportError> {
    let data = Dataset::new(config);
    let labels = |y: &[u32]| y.iter().flat_map(|&v| (label_value(v) as i32).to_le_bytes()).collect::<Vec<u8>>();
    let floats = |x: &[f32]| x.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>();
    let doubles = |x: &[f64]| x.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>();
    let mut tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    if config.arch == Arch::Transformer {
        let ctx = config.ctx as usize;
        let tokens: Vec<u32> = data.test_x.iter().map(|&t| t as u32).collect();
        let corpus = crate::tokens::corpus(if config.task == Task::Text { config.text } else { crate::tokens::BOOK })?;
        let code_points: Vec<u32> = corpus.vocabulary.iter().map(|&ch| ch as u32).collect();
        tensors = vec![
            ("test_x".into(), Dtype::I32, vec![data.n_test(), ctx], labels(&tokens)),
            ("test_y".into(), Dtype::I32, vec![data.n_test(), ctx], labels(&data.test_y)),
            ("text_tokens".into(), Dtype::I32, vec![corpus.tokens.len()], labels(&corpus.tokens)),
            ("vocabulary".into(), Dtype::I32, vec![code_points.len()], labels(&code_points)),
        ];
    } else {
        tensors.extend([
            ("train_x".into(), Dtype::F32, vec![data.n_train(), data.d_in], floats(&data.train_x)),
            ("train_y".into(), Dtype::I32, vec![data.n_train()], labels(&data.train_y)),
            ("test_x".into(), Dtype::F32, vec![data.n_test(), data.d_in], floats(&data.test_x)),
            ("test_y".into(), Dtype::I32, vec![data.n_test()], labels(&data.test_y)),
        ]);
    }
    for (k, (weight, bias)) in data.teacher_layers().iter().enumerate() {
        let fan_out = bias.len();
        tensors.push((format!("teacher.{k}.weight"), Dtype::F64, vec![fan_out, weight.len() / fan_out], doubles(weight)));
        tensors.push((format!("teacher.{k}.bias"), Dtype::F64, vec![fan_out], doubles(bias)));
    }
    let views = tensors
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            Ok((name.clone(), TensorView::new(*dtype, shape.clone(), bytes).map_err(|e| CheckpointError::Format(e.to_string()))?))
        })
        .collect::<Result<Vec<_>, CheckpointError>>()?;
    Ok(safetensors::tensor::serialize(views, None).map_err(|e| CheckpointError::Format(e.to_string()))?)
}

fn readme(config: &Config) -> String {
    format!(
        "# mHC Playground experiment, exported for PyTorch\n\n\
         Experiment: `{query}`\n\n\
         Needs Python 3.9+ with `torch` and `safetensors` (`pip install torch safetensors`).\n\n\
         ```\n\
         python train.py --steps 300 --metrics metrics.jsonl          # the experiment, as in the playground\n\
         python train.py --set width=256 --set depth=48 --device cuda   # wider and deeper (fresh weights)\n\
         torchrun --nproc_per_node=4 train.py --metrics metrics.jsonl   # DistributedDataParallel on 4 GPUs\n\
         python train.py --save run                                    # run.<mode>.safetensors: Import them in the page\n\
         ```\n\n\
         `metrics.jsonl` uses the playground's schema: the page's Export > Import PyTorch metrics\n\
         draws it dashed over a live run. Files: `init.<mode>.safetensors` (initial weights),\n\
         `data.safetensors` (the data set), `experiment.json` (every key; change any with `--set`).\n",
        query = config.to_query()
    )
}
