//! Command-line interface: parsing and dispatch. Each subcommand lives in its own module and calls the
//! same library functions the server uses.

mod admin;
mod analyze;
mod bench;
mod db;
mod eval;
mod faces;
mod liveness_eval;
mod models;
mod serve;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "facegate",
    version,
    about = "Self-hosted face login: OpenID Connect provider and face API"
)]
pub struct Cli {
    /// Models directory (default: a per-user cache, ~/.cache/facegate/models).
    #[arg(long, global = true, env = "FACEGATE_MODELS")]
    models: Option<PathBuf>,
    /// A TOML config file (docs/configuration.md); FACEGATE_* variables override it.
    #[arg(long, global = true, env = "FACEGATE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the OpenID Connect provider (FACEGATE_LISTEN, FACEGATE_DATA, FACEGATE_ISSUER).
    Serve(serve::ServeArgs),
    /// Manage accounts.
    #[command(subcommand)]
    User(serve::UserCommand),
    /// Manage OAuth clients (relying parties).
    #[command(subcommand)]
    Client(serve::ClientCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(serve::KeysCommand),
    /// Face API collections from the command line (`faces import DIR --collection C`).
    #[command(subcommand)]
    Faces(faces::FacesCommand),
    /// Fetch, list and verify model packs.
    #[command(subcommand)]
    Models(models::ModelsCommand),
    /// Measure a pack's verification accuracy on labelled pairs of images.
    Eval(eval::EvalArgs),
    /// Detect faces in images and show pose, quality and expression.
    Analyze(analyze::AnalyzeArgs),
    /// Measure per-stage latency and throughput of the face pipeline.
    Bench(bench::BenchArgs),
    /// Database operations (`db copy --to postgres://...`: move the embedded database up).
    #[command(subcommand)]
    Db(db::DbCommand),
    /// The admin page's actions: users, invitations, the audit log, face collections.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// APCER and BPCER of the liveness check on the shared test videos and photos (needs ffmpeg).
    LivenessEval(liveness_eval::LivenessEvalArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    if let Some(path) = cli.config.clone() {
        crate::server::settings::use_config_file(path);
    }
    let models_dir = cli.models.unwrap_or_else(facegate_vision::default_models_dir);
    match cli.command {
        Command::Models(cmd) => models::run(cmd, &models_dir),
        Command::Serve(args) => serve::serve(args),
        Command::User(cmd) => serve::user(cmd),
        Command::Client(cmd) => serve::client(cmd),
        Command::Keys(cmd) => serve::keys(cmd),
        Command::Eval(args) => eval::run(args, &models_dir),
        Command::Bench(args) => bench::run(args, &models_dir),
        Command::Analyze(args) => analyze::run(args, &models_dir),
        Command::LivenessEval(args) => liveness_eval::run(args, &models_dir),
        Command::Faces(cmd) => faces::run(cmd, &models_dir),
        Command::Db(cmd) => db::run(cmd),
        Command::Admin(cmd) => admin::run(cmd),
    }
}

/// Loads a pack, with an optional detector input size override.
pub(crate) fn load_pipeline(
    models_dir: &std::path::Path,
    pack: &str,
    det_size: Option<u32>,
    threads: usize,
) -> anyhow::Result<facegate_vision::FacePipeline> {
    let mut manifest = facegate_vision::PackManifest::builtin(pack)?;
    if let (Some(size), Some(det)) = (det_size, manifest.detector.as_mut()) {
        anyhow::ensure!(
            size % 32 == 0 && (64..=1280).contains(&size),
            "--det-size must be a multiple of 32 in 64..=1280"
        );
        det.input_size = size;
    }
    let opts = facegate_vision::RuntimeOptions {
        intra_threads: threads,
        library: None,
    };
    Ok(facegate_vision::FacePipeline::load_manifest(
        models_dir, manifest, &opts,
    )?)
}
