//! Face templates and how a probe is compared with them. Embeddings are unit vectors from one model
//! pack; a template only ever meets a probe from the same pack.

use serde::Serialize;

/// An enrolled face: never a photo, only the embedding and what was measured about it.
#[derive(Clone, PartialEq, Serialize)]
pub struct FaceTemplate {
    pub id: String,
    pub user_id: String,
    pub pack: String,
    #[serde(skip)]
    pub embedding: Vec<f32>,
    /// Quality measures at enrolment (JSON), shown on the account page.
    pub quality: serde_json::Value,
    pub created_at: i64,
}

impl std::fmt::Debug for FaceTemplate {
    // Embeddings are biometric data: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "FaceTemplate({} of {}, {}, dim {})",
            self.id,
            self.user_id,
            self.pack,
            self.embedding.len()
        )
    }
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return -1.0;
    }
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The false-match rate each comparison must meet so that a search over `gallery` people keeps the
/// overall false-match rate at `target` (a union bound: FMR_1:N ~ N x FMR_1:1).
pub fn per_comparison_fmr(target: f64, gallery: usize) -> f64 {
    target / gallery.max(1) as f64
}

/// Who a probe matches best: for each person the best of their templates, then the best person,
/// with the runner-up's score (a close second means the match is not distinctive).
#[derive(Debug, Clone, PartialEq)]
pub struct Identification {
    pub user_id: String,
    pub score: f32,
    pub runner_up: Option<f32>,
}

pub fn identify<'a>(
    probe: &[f32],
    templates: impl IntoIterator<Item = &'a FaceTemplate>,
) -> Option<Identification> {
    let mut best: std::collections::HashMap<&str, f32> = std::collections::HashMap::new();
    for t in templates {
        let s = cosine(probe, &t.embedding);
        let e = best.entry(t.user_id.as_str()).or_insert(f32::MIN);
        *e = e.max(s);
    }
    let mut people: Vec<(&str, f32)> = best.into_iter().collect();
    people.sort_by(|a, b| b.1.total_cmp(&a.1));
    let (user, score) = people.first()?;
    Some(Identification {
        user_id: user.to_string(),
        score: *score,
        runner_up: people.get(1).map(|p| p.1),
    })
}

/// A coarse score band for the audit log: enough to investigate, too coarse to be a biometric.
pub fn score_band(score: f32, threshold: f32) -> &'static str {
    let margin = score - threshold;
    if margin >= 0.2 {
        "strong-match"
    } else if margin >= 0.0 {
        "match"
    } else if margin >= -0.1 {
        "near-miss"
    } else {
        "no-match"
    }
}

pub fn to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn from_bytes(b: &[u8]) -> Option<Vec<f32>> {
    b.len().is_multiple_of(4).then(|| {
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(user: &str, v: &[f32]) -> FaceTemplate {
        FaceTemplate {
            id: "x".into(),
            user_id: user.into(),
            pack: "p".into(),
            embedding: v.to_vec(),
            quality: serde_json::Value::Null,
            created_at: 0,
        }
    }

    #[test]
    fn identifies_by_best_template_per_person() {
        let gallery = [t("a", &[1.0, 0.0]), t("a", &[0.0, 1.0]), t("b", &[0.6, 0.8])];
        let id = identify(&[0.0, 1.0], &gallery).unwrap();
        assert_eq!(id.user_id, "a");
        assert!((id.score - 1.0).abs() < 1e-6);
        assert!((id.runner_up.unwrap() - 0.8).abs() < 1e-6);
        assert!(identify(&[1.0, 0.0], &[]).is_none());
    }

    #[test]
    fn gallery_tightens_the_rate_and_bytes_round_trip() {
        assert_eq!(per_comparison_fmr(1e-4, 100), 1e-6);
        assert_eq!(per_comparison_fmr(1e-4, 0), 1e-4);
        let v = vec![0.25, -1.5, 3.0];
        assert_eq!(from_bytes(&to_bytes(&v)).unwrap(), v);
        assert!(from_bytes(&[1, 2, 3]).is_none());
        assert_eq!(score_band(0.55, 0.3), "strong-match");
        assert_eq!(score_band(0.25, 0.3), "near-miss");
        assert!(format!("{:?}", t("a", &[0.5])).contains("dim 1"));
    }
}
