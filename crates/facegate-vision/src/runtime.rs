//! The ONNX Runtime backend: loads the shared library once per process and wraps each model file in a
//! [`Model`] that takes `f32` tensors in and gives `f32` tensors out.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::TensorRef;

use crate::error::{Result, VisionError};

/// File name of the ONNX Runtime library that `facegate models fetch` installs.
pub const ORT_LIBRARY_FILE: &str = "libonnxruntime.so.1.31.1";

/// How inference sessions are set up.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Threads for one inference call. 1 is best for a server handling requests in parallel; spinning
    /// is always off, since spin-waiting threads made 2-core machines slower, not faster.
    pub intra_threads: usize,
    /// Where the ONNX Runtime shared library is; `None` looks at `ORT_DYLIB_PATH`, then the models dir.
    pub library: Option<PathBuf>,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            intra_threads: 1,
            library: None,
        }
    }
}

// ONNX Runtime allows exactly one environment per process, so this one piece of state is global.
static ENVIRONMENT: OnceLock<std::result::Result<ort::environment::Environment, String>> = OnceLock::new();

/// Finds the runtime library: explicit path, `ORT_DYLIB_PATH`, then `<models_dir>/runtime/`.
pub fn locate_library(explicit: Option<&Path>, models_dir: &Path) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        return Some(PathBuf::from(p));
    }
    let p = models_dir.join("runtime").join(ORT_LIBRARY_FILE);
    p.exists().then_some(p)
}

fn environment(library: &Path) -> Result<ort::environment::Environment> {
    let env = ENVIRONMENT.get_or_init(|| {
        let builder = ort::init_from(library).map_err(|e| {
            format!(
                "cannot load the ONNX Runtime library {}: {e}. Run `facegate models fetch` to install it, \
                 or set ORT_DYLIB_PATH",
                library.display()
            )
        })?;
        builder.with_name("facegate").build().map_err(|e| e.to_string())
    });
    env.clone().map_err(VisionError::Runtime)
}

/// A tensor that came out of a model.
#[derive(Debug, Clone)]
pub struct Output {
    pub shape: Vec<i64>,
    pub data: Vec<f32>,
}

/// One loaded model. `run` is serialised per model: callers wanting parallel inference load one
/// `Model` per worker.
#[derive(Debug)]
pub struct Model {
    name: String,
    session: Mutex<Session>,
    input_name: String,
    output_names: Vec<String>,
}

impl Model {
    pub fn load(path: &Path, library: &Path, opts: &RuntimeOptions) -> Result<Model> {
        let env = environment(library)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let rt = |e: ort::Error<ort::session::builder::SessionBuilder>| VisionError::Runtime(e.to_string());
        let session = Session::builder(&env)?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(rt)?
            .with_intra_threads(opts.intra_threads.max(1))
            .map_err(rt)?
            .with_inter_threads(1)
            .map_err(rt)?
            .with_intra_op_spinning(false)
            .map_err(rt)?
            .with_inter_op_spinning(false)
            .map_err(rt)?
            .commit_from_file(path)
            .map_err(|e| VisionError::Runtime(format!("cannot load model {}: {e}", path.display())))?;
        let input_name = session
            .inputs()
            .first()
            .map(|i| i.name().to_string())
            .ok_or_else(|| VisionError::ModelOutput {
                model: name.clone(),
                detail: "model has no input".into(),
            })?;
        let output_names = session.outputs().iter().map(|o| o.name().to_string()).collect();
        Ok(Model {
            name,
            session: Mutex::new(session),
            input_name,
            output_names,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn output_names(&self) -> &[String] {
        &self.output_names
    }

    /// Runs the model on one `f32` input of `shape`, returning every output in the model's order.
    pub fn run(&self, shape: &[usize], data: &[f32]) -> Result<Vec<Output>> {
        let input = TensorRef::from_array_view((shape.to_vec(), data))?;
        let mut session = self
            .session
            .lock()
            .map_err(|_| VisionError::Runtime("model lock poisoned".into()))?;
        let outputs = session.run(ort::inputs![self.input_name.as_str() => input])?;
        let mut result = Vec::with_capacity(outputs.len());
        for (_, value) in outputs.iter() {
            let (shape, data) = value.try_extract_tensor::<f32>()?;
            result.push(Output {
                shape: shape.to_vec(),
                data: data.to_vec(),
            });
        }
        Ok(result)
    }

    pub(crate) fn bad_output(&self, detail: impl Into<String>) -> VisionError {
        VisionError::ModelOutput {
            model: self.name.clone(),
            detail: detail.into(),
        }
    }
}
