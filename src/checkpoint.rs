//! Safetensors files: checkpoints (one variant's parameters, DESIGN.md names, the experiment's
//! query string under metadata key `config`), batches (`x`, `y`) and gradient dumps
//! (`loss`, `grad.<name>`). Works on bytes so the browser can use it too.

use crate::config::{Config, ConfigNotice};
use crate::layout::ParamLayout;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::HashMap;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("not a readable safetensors file: {0}")]
    Format(String),
    #[error("the file has no `config` metadata, so the experiment it belongs to is unknown")]
    NoConfig,
    #[error("the checkpoint holds {found} variants' tensors; it must name exactly one in `modes`")]
    Modes { found: usize },
    #[error("tensor `{0}` is missing")]
    Missing(String),
    #[error("tensor `{name}` has shape {found:?}, expected {expected:?}")]
    Shape { name: String, found: Vec<usize>, expected: Vec<usize> },
    #[error("tensor `{name}` is {found}, expected {expected}")]
    Dtype { name: String, found: String, expected: &'static str },
    #[error("tensor `{0}` is not part of this model")]
    Unexpected(String),
    #[error("tensor `{0}` contains NaN or infinity")]
    NonFinite(String),
    #[error("label {label} in `y` is outside 0..{classes}")]
    Label { label: i64, classes: usize },
}

/// Named f32 tensors plus metadata, serialised as safetensors.
pub fn write_tensors(
    tensors: &[(String, Vec<usize>, Vec<f32>)],
    ints: &[(String, Vec<usize>, Vec<i32>)],
    config: Option<&str>,
) -> Result<Vec<u8>, CheckpointError> {
    let mut views = Vec::new();
    for (name, shape, values) in tensors {
        let view =
            TensorView::new(Dtype::F32, shape.clone(), bytemuck::cast_slice(values)).map_err(|e| CheckpointError::Format(e.to_string()))?;
        views.push((name.clone(), view));
    }
    for (name, shape, values) in ints {
        let view =
            TensorView::new(Dtype::I32, shape.clone(), bytemuck::cast_slice(values)).map_err(|e| CheckpointError::Format(e.to_string()))?;
        views.push((name.clone(), view));
    }
    let metadata = config.map(|c| HashMap::from([("config".to_string(), c.to_string())]));
    safetensors::tensor::serialize(views, metadata).map_err(|e| CheckpointError::Format(e.to_string()))
}

/// The parameters of one variant as a checkpoint.
pub fn save_checkpoint(layout: &ParamLayout, values: &[f32], config: &Config) -> Result<Vec<u8>, CheckpointError> {
    let tensors: Vec<_> = layout.entries.iter().map(|e| (e.name.clone(), e.shape.clone(), values[e.range()].to_vec())).collect();
    write_tensors(&tensors, &[], Some(&config.with_single_mode(layout.dims.kind).to_query()))
}

/// A parsed safetensors file.
pub struct TensorFile<'a> {
    inner: SafeTensors<'a>,
    pub config: Option<String>,
}

impl<'a> TensorFile<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<TensorFile<'a>, CheckpointError> {
        let (_, metadata) = SafeTensors::read_metadata(bytes).map_err(|e| CheckpointError::Format(e.to_string()))?;
        let config = metadata.metadata().as_ref().and_then(|m| m.get("config").cloned());
        let inner = SafeTensors::deserialize(bytes).map_err(|e| CheckpointError::Format(e.to_string()))?;
        Ok(TensorFile { inner, config })
    }

    pub fn names(&self) -> Vec<String> {
        self.inner.names().into_iter().map(String::from).collect()
    }

    fn view(&self, name: &str, dtype: Dtype, expected: Option<&[usize]>) -> Result<TensorView<'a>, CheckpointError> {
        let view = self.inner.tensor(name).map_err(|_| CheckpointError::Missing(name.to_string()))?;
        if view.dtype() != dtype {
            return Err(CheckpointError::Dtype {
                name: name.into(),
                found: format!("{:?}", view.dtype()),
                expected: if dtype == Dtype::F32 { "F32" } else { "I32" },
            });
        }
        if let Some(shape) = expected {
            if view.shape() != shape {
                return Err(CheckpointError::Shape { name: name.into(), found: view.shape().to_vec(), expected: shape.to_vec() });
            }
        }
        Ok(view)
    }

    /// An f32 tensor, optionally of a required shape; NaN and infinity are refused.
    pub fn f32(&self, name: &str, expected: Option<&[usize]>) -> Result<(Vec<usize>, Vec<f32>), CheckpointError> {
        let view = self.view(name, Dtype::F32, expected)?;
        // Copy through from_le_bytes: the data need not be 4-byte aligned inside the file.
        let values: Vec<f32> = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        if values.iter().any(|v| !v.is_finite()) {
            return Err(CheckpointError::NonFinite(name.into()));
        }
        Ok((view.shape().to_vec(), values))
    }

    pub fn i32(&self, name: &str) -> Result<(Vec<usize>, Vec<i32>), CheckpointError> {
        let view = self.view(name, Dtype::I32, None)?;
        let values = view.data().chunks_exact(4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        Ok((view.shape().to_vec(), values))
    }

    /// The experiment the file belongs to, with any notices from reading its query string.
    pub fn experiment(&self) -> Result<(Config, Vec<ConfigNotice>), CheckpointError> {
        let query = self.config.as_deref().ok_or(CheckpointError::NoConfig)?;
        Ok(Config::from_query(query))
    }

    /// Parameters in `layout`'s order; every tensor present with its exact shape, nothing extra.
    pub fn params(&self, layout: &ParamLayout) -> Result<Vec<f32>, CheckpointError> {
        let mut values = vec![0.0f32; layout.total];
        for e in &layout.entries {
            let (_, v) = self.f32(&e.name, Some(&e.shape))?;
            values[e.range()].copy_from_slice(&v);
        }
        if let Some(extra) = self.names().into_iter().find(|n| layout.get(n).is_none()) {
            return Err(CheckpointError::Unexpected(extra));
        }
        Ok(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ResidualKind;
    use crate::layout::Dims;

    fn small() -> (Config, ParamLayout) {
        let (config, _) = Config::from_query("depth=2&width=4&streams=2&modes=mhc");
        let layout = ParamLayout::new(Dims::new(&config, ResidualKind::Mhc));
        (config, layout)
    }

    #[test]
    fn round_trip_keeps_values_and_config() {
        let (config, layout) = small();
        let values = layout.initial_values(3);
        let bytes = save_checkpoint(&layout, &values, &config).unwrap();
        let file = TensorFile::parse(&bytes).unwrap();
        assert_eq!(file.experiment().unwrap().0, config);
        assert_eq!(file.params(&layout).unwrap(), values);
    }

    #[test]
    fn corrupt_and_mismatched_files_are_refused_with_a_reason() {
        let (config, layout) = small();
        let values = layout.initial_values(3);
        let bytes = save_checkpoint(&layout, &values, &config).unwrap();
        assert!(matches!(TensorFile::parse(&bytes[..bytes.len() / 2]), Err(CheckpointError::Format(_))));
        assert!(matches!(TensorFile::parse(b"garbage"), Err(CheckpointError::Format(_))));
        let (wider, _) = Config::from_query("depth=2&width=8&streams=2&modes=mhc");
        let other = ParamLayout::new(Dims::new(&wider, ResidualKind::Mhc));
        let err = TensorFile::parse(&bytes).unwrap().params(&other).unwrap_err();
        assert!(matches!(err, CheckpointError::Shape { .. }), "{err}");
        let residual = ParamLayout::new(Dims::new(&config, ResidualKind::Residual));
        let err = TensorFile::parse(&bytes).unwrap().params(&residual).unwrap_err();
        assert!(matches!(err, CheckpointError::Unexpected(_)), "{err}");
        let mut bad = values.clone();
        bad[0] = f32::NAN;
        let bytes = save_checkpoint(&layout, &bad, &config).unwrap();
        let err = TensorFile::parse(&bytes).unwrap().params(&layout).unwrap_err();
        assert!(matches!(err, CheckpointError::NonFinite(_)), "{err}");
    }
}
