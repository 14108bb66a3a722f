//! `facegate faces import DIR --collection C`: indexes a folder of photos into a face API collection,
//! one subfolder per externalId, through the same service the `/v1` API uses. Resumable: each file's
//! sha256 is recorded with its faces (one transaction), so a re-run skips what is done. Progress on
//! stderr, a summary of what failed and why on stdout.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Subcommand;
use sha2::{Digest, Sha256};

use super::serve::runtime;
use crate::server::Settings;
use crate::server::api_auth::{ClientLimits, client_limits, set_client_limits};
use crate::server::face_api::{FaceApi, IndexRequest, QualityFilter, valid_external_id};

#[derive(Debug, Subcommand)]
pub enum FacesCommand {
    /// Index a folder into a collection (created if missing): DIR/<externalId>/<photo>. The largest
    /// face of each photo is indexed; files already imported into the collection are skipped.
    Import {
        dir: PathBuf,
        #[arg(long)]
        collection: String,
        /// none, low, medium or high (docs/face-api.md).
        #[arg(long, default_value = "low")]
        quality_filter: String,
    },
    /// Show or set one client's /v1 limits (overriding FACEGATE_API_RATE, _BURST, _MONTHLY_QUOTA),
    /// and its requests this month.
    Limits {
        client_id: String,
        /// Requests per second, sustained.
        #[arg(long)]
        rate: Option<f64>,
        #[arg(long)]
        burst: Option<u32>,
        /// Requests per calendar month (UTC); 0 = no quota.
        #[arg(long)]
        monthly_quota: Option<i64>,
        /// Remove this client's overrides (back to the defaults).
        #[arg(long)]
        clear: bool,
    },
    /// AWS access keys of API clients, for the Rekognition-compatible API at /aws/rekognition
    /// (docs/rekognition.md).
    AwsKey {
        #[command(subcommand)]
        cmd: AwsKeyCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum AwsKeyCommand {
    /// Make an access key for a client: prints AccessKeyId and SecretAccessKey (shown once).
    Add {
        #[arg(long)]
        client: String,
    },
    /// List access keys (of one client with --client); never their secrets.
    List {
        #[arg(long)]
        client: Option<String>,
    },
    /// Remove an access key: requests it signs are refused from then on.
    Remove { access_key_id: String },
}

pub fn run(cmd: FacesCommand, models_dir: &Path) -> anyhow::Result<()> {
    match cmd {
        FacesCommand::AwsKey { cmd } => runtime()?.block_on(aws_key(cmd)),
        FacesCommand::Import {
            dir,
            collection,
            quality_filter,
        } => {
            let filter = QualityFilter::parse(&quality_filter)
                .context("--quality-filter is one of none, low, medium, high")?;
            runtime()?.block_on(import(&dir, &collection, filter, models_dir))
        }
        FacesCommand::Limits {
            client_id,
            rate,
            burst,
            monthly_quota,
            clear,
        } => runtime()?.block_on(async move {
            let settings = Settings::from_env()?;
            std::fs::create_dir_all(&settings.data_dir)?;
            let store = crate::server::data_key::open_store(&settings).await?;
            if store.client(&client_id).await?.is_none() {
                bail!("no client {client_id}");
            }
            let mut limits = if clear {
                ClientLimits::default()
            } else {
                client_limits(&store, &client_id).await?
            };
            if rate.is_some_and(|r| r <= 0.0) || burst == Some(0) || monthly_quota.is_some_and(|q| q < 0) {
                bail!("--rate and --burst must be positive, --monthly-quota 0 (none) or more");
            }
            limits.rate_per_sec = rate.or(limits.rate_per_sec);
            limits.burst = burst.or(limits.burst);
            limits.monthly_quota = monthly_quota.or(limits.monthly_quota);
            if clear || rate.is_some() || burst.is_some() || monthly_quota.is_some() {
                set_client_limits(&store, &client_id, &limits).await?;
            }
            let d = &settings.api;
            let (month, _) = crate::server::api_auth::month_of(crate::server::now());
            let used = store.requests_in(&client_id, &month).await?;
            let quota = limits.monthly_quota.unwrap_or(d.monthly_quota);
            println!(
                "{client_id}: {} requests/s, burst {}, monthly quota {} ({}); {used} requests in {month}",
                limits.rate_per_sec.unwrap_or(d.rate_per_sec),
                limits.burst.unwrap_or(d.burst),
                if quota == 0 {
                    "none".to_string()
                } else {
                    quota.to_string()
                },
                if limits == ClientLimits::default() {
                    "defaults"
                } else {
                    "overridden"
                },
            );
            Ok(())
        }),
    }
}

async fn aws_key(cmd: AwsKeyCommand) -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    std::fs::create_dir_all(&settings.data_dir)?;
    let store = facegate_store::Store::open(&settings.database_url).await?;
    match cmd {
        AwsKeyCommand::Add { client } => {
            let k = crate::server::aws_keys::add(&store, &settings.data_dir, &client, crate::server::now())
                .await?;
            println!("AccessKeyId: {}", k.access_key_id);
            println!("SecretAccessKey: {}", k.secret_access_key);
            eprintln!(
                "The secret is shown this once. Endpoint: {}/aws/rekognition (any region).",
                settings.issuer.trim_end_matches('/')
            );
        }
        AwsKeyCommand::List { client } => {
            for k in store.aws_keys(client.as_deref()).await? {
                println!(
                    "{}\t{}\tcreated {}\tlast used {}",
                    k.access_key_id,
                    k.client_id,
                    k.created_at,
                    k.last_used_at.map_or("never".to_string(), |t| t.to_string())
                );
            }
        }
        AwsKeyCommand::Remove { access_key_id } => {
            if !store.delete_aws_key(&access_key_id).await? {
                bail!("no access key {access_key_id}");
            }
            println!("removed {access_key_id}");
        }
    }
    Ok(())
}

/// The files to import: (externalId, path), subfolders and files in name order, hidden ones skipped.
fn files(dir: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let sorted = |d: &Path| -> anyhow::Result<Vec<PathBuf>> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(d)
            .with_context(|| format!("cannot read {}", d.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                !p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with('.'))
            })
            .collect();
        v.sort();
        Ok(v)
    };
    let mut out = Vec::new();
    for sub in sorted(dir)?.into_iter().filter(|p| p.is_dir()) {
        let Some(external) = sub.file_name().and_then(|n| n.to_str()).map(String::from) else {
            continue;
        };
        if !valid_external_id(&external) {
            bail!("folder name {external:?} cannot be an externalId (1-255 characters)");
        }
        for f in sorted(&sub)?.into_iter().filter(|p| p.is_file()) {
            out.push((external.clone(), f));
        }
    }
    Ok(out)
}

async fn import(
    dir: &Path,
    collection: &str,
    filter: QualityFilter,
    models_dir: &Path,
) -> anyhow::Result<()> {
    let mut settings = Settings::from_env()?;
    settings.face.models_dir = models_dir.to_path_buf();
    std::fs::create_dir_all(&settings.data_dir)?;
    let store = crate::server::data_key::open_store(&settings).await?;
    let work = files(dir)?;
    if work.is_empty() {
        bail!(
            "{} has no photos in subfolders (expected DIR/<externalId>/<photo>)",
            dir.display()
        );
    }
    let face_settings = settings.face.clone();
    let face = tokio::task::spawn_blocking(move || crate::server::face::Faces::load(face_settings)).await??;
    let api = crate::server::face_api::load(
        &store,
        face.pack(),
        settings.api.index_exact_max,
        settings.api.index_nprobe,
    )
    .await?;
    if store.collection(collection).await?.is_none() {
        api.create_collection(&store, collection, crate::server::now())
            .await?;
        eprintln!("created collection {collection}");
    }
    api.usable_collection(&store, collection).await?;

    let total = work.len();
    let (mut imported, mut done, mut faces) = (0usize, 0usize, 0usize);
    let mut failed: Vec<(PathBuf, String)> = Vec::new();
    let started = std::time::Instant::now();
    for (i, (external, path)) in work.iter().enumerate() {
        let outcome = import_one(
            &api,
            &store,
            &face,
            collection,
            external,
            path,
            filter,
            settings.api.max_image,
        )
        .await;
        match outcome {
            Ok(Some(n)) => {
                imported += 1;
                faces += n;
            }
            Ok(None) => done += 1,
            Err(reason) => failed.push((path.clone(), reason)),
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        eprint!(
            "\r\x1b[2K[{}/{total}] {imported} imported, {done} already done, {} failed  {external}/{name}",
            i + 1,
            failed.len()
        );
        let _ = std::io::stderr().flush();
    }
    eprintln!();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{total} files: {imported} imported, {done} already done, {} failed ({faces} faces into {collection}, {:.1} s, {:.1} files/s)",
        failed.len(),
        secs,
        total as f64 / secs.max(1e-9)
    );
    if !failed.is_empty() {
        println!("failed:");
        for (p, reason) in &failed {
            println!("  {}: {reason}", p.display());
        }
    }
    Ok(())
}

/// Imports one file: `Ok(Some(faces))`, `Ok(None)` when already done, `Err(reason)`.
#[allow(clippy::too_many_arguments)]
async fn import_one(
    api: &FaceApi,
    store: &facegate_store::Store,
    face: &crate::server::face::Faces,
    collection: &str,
    external: &str,
    path: &Path,
    filter: QualityFilter,
    max_image: usize,
) -> Result<Option<usize>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let sha: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if store
        .import_done(collection, &sha)
        .await
        .map_err(|e| e.to_string())?
    {
        return Ok(None);
    }
    let analysed = crate::server::face_api::analyse(face.engine(), bytes, max_image, true, false)
        .await
        .map_err(|p| p.detail.clone())?;
    if analysed.faces.is_empty() {
        return Err("no face found".into());
    }
    let out = api
        .index_faces(
            store,
            collection,
            analysed.found(),
            IndexRequest {
                external_id: Some(external),
                max_faces: 1,
                filter,
                import_sha256: Some(&sha),
            },
            crate::server::now(),
        )
        .await
        .map_err(|e| e.to_string())?;
    if out.indexed.is_empty() {
        let reasons: Vec<String> = out.unindexed.iter().flat_map(|(_, r)| r.clone()).collect();
        return Err(format!(
            "quality below the {filter:?} filter: {}",
            reasons.join(", ")
        ));
    }
    Ok(Some(out.indexed.len()))
}
