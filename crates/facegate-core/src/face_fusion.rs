//! Matching a probe against a person's several templates (score fusion, weighted by each template's
//! quality) and choosing templates that differ in pose and light rather than repeat one picture.
//! Pure functions over embeddings (unit vectors of one pack) and the quality measured at enrolment;
//! `facegate eval --templates K` measures them (docs/accuracy.md).

use serde::Serialize;

/// What enrolment measured about a template, as far as matching and selection use it.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct TemplateQuality {
    pub eye_distance_px: f32,
    pub sharpness: f32,
    pub brightness: f32,
    pub yaw: f32,
    pub pitch: f32,
}

impl TemplateQuality {
    /// Reads the quality JSON stored with a template (`FaceTemplate::quality`); missing fields are 0.
    pub fn from_json(v: &serde_json::Value) -> TemplateQuality {
        let f = |k: &str| v.get(k).and_then(serde_json::Value::as_f64).unwrap_or(0.0) as f32;
        TemplateQuality {
            eye_distance_px: f("eye_distance_px"),
            sharpness: f("sharpness"),
            brightness: f("brightness"),
            yaw: f("yaw"),
            pitch: f("pitch"),
        }
    }

    /// A weight in [0.2, 1] for score fusion: lower for a small, blurred, badly lit or turned face.
    /// Each factor saturates where the quality stops limiting recognition (eyes 60 px apart,
    /// sharpness 100, brightness 70-190, frontal within 15 degrees). A template without measures
    /// (all 0) gets the middle weight of the size and sharpness factors.
    pub fn weight(&self) -> f32 {
        let ramp = |v: f32, lo: f32, hi: f32| ((v - lo) / (hi - lo)).clamp(0.0, 1.0);
        let size = 0.5 + 0.5 * ramp(self.eye_distance_px, 20.0, 60.0);
        let sharp = 0.5 + 0.5 * ramp(self.sharpness, 10.0, 100.0);
        let light =
            1.0 - 0.5 * (ramp(70.0 - self.brightness, 0.0, 50.0) + ramp(self.brightness - 190.0, 0.0, 50.0));
        let pose = 1.0 - 0.5 * ramp(self.yaw.abs().max(self.pitch.abs()), 15.0, 45.0);
        let w = if self.eye_distance_px == 0.0 && self.sharpness == 0.0 {
            0.75 * 0.75
        } else {
            size * sharp * light.max(0.5) * pose
        };
        w.clamp(0.2, 1.0)
    }
}

/// One enrolled template of a person: its embedding and quality.
#[derive(Debug, Clone, Copy)]
pub struct Template<'a> {
    pub embedding: &'a [f32],
    pub quality: TemplateQuality,
}

/// How a probe's scores against a person's templates become one score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fusion {
    /// The best template's score (what facegate did before fusion).
    Max,
    /// The mean of the scores.
    Mean,
    /// The mean of the scores weighted by [`TemplateQuality::weight`].
    QualityMean,
    /// The cosine with the quality-weighted mean of the templates' embeddings (re-normalised).
    QualityTemplate,
    /// The mean of the best score and the quality-weighted mean score: a good template still
    /// counts most, while a person's other pictures temper a single lucky impostor match.
    MaxQualityMean,
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() || a.is_empty() {
        return -1.0;
    }
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The fused score of `probe` against one person's `templates`; `None` when there are none (or none
/// of the probe's dimension).
pub fn fused_score(probe: &[f32], templates: &[Template<'_>], rule: Fusion) -> Option<f32> {
    let usable: Vec<&Template<'_>> = templates
        .iter()
        .filter(|t| t.embedding.len() == probe.len() && !probe.is_empty())
        .collect();
    if usable.is_empty() {
        return None;
    }
    let scores: Vec<f32> = usable.iter().map(|t| cosine(probe, t.embedding)).collect();
    let max = scores.iter().copied().fold(f32::MIN, f32::max);
    let weights: Vec<f32> = usable.iter().map(|t| t.quality.weight()).collect();
    let weighted_mean = || {
        let total: f32 = weights.iter().sum();
        scores.iter().zip(&weights).map(|(s, w)| s * w).sum::<f32>() / total
    };
    Some(match rule {
        Fusion::Max => max,
        Fusion::Mean => scores.iter().sum::<f32>() / scores.len() as f32,
        Fusion::QualityMean => weighted_mean(),
        Fusion::MaxQualityMean => (max + weighted_mean()) / 2.0,
        Fusion::QualityTemplate => {
            let mut mean = vec![0f32; probe.len()];
            for (t, w) in usable.iter().zip(&weights) {
                for (m, v) in mean.iter_mut().zip(t.embedding) {
                    *m += w * v;
                }
            }
            let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt();
            if !norm.is_finite() || norm < 1e-6 {
                return Some(max);
            }
            cosine(probe, &mean) / norm
        }
    })
}

/// How different two templates are: embedding distance (1 - cosine) plus pose and light
/// differences, scaled so that 20 degrees of yaw, 15 of pitch or 60 levels of brightness each count
/// like a cosine step of 0.2.
pub fn template_distance(a: &Template<'_>, b: &Template<'_>) -> f32 {
    let emb = 1.0 - cosine(a.embedding, b.embedding).clamp(-1.0, 1.0);
    let yaw = (a.quality.yaw - b.quality.yaw).abs() / 20.0 * 0.2;
    let pitch = (a.quality.pitch - b.quality.pitch).abs() / 15.0 * 0.2;
    let light = (a.quality.brightness - b.quality.brightness).abs() / 60.0 * 0.2;
    emb + yaw + pitch + light
}

/// Chooses `k` of the candidate templates that differ most from each other: first the one of best
/// quality, then each time the one farthest (by [`template_distance`], weighted by quality) from
/// all chosen so far. Returns indices into `candidates`, in the order chosen.
pub fn select_diverse(candidates: &[Template<'_>], k: usize) -> Vec<usize> {
    let mut chosen: Vec<usize> = Vec::new();
    if candidates.is_empty() || k == 0 {
        return chosen;
    }
    // The first of the best quality (max_by would keep the last of equals).
    let first = (0..candidates.len()).fold(0, |best, i| {
        if candidates[i].quality.weight() > candidates[best].quality.weight() {
            i
        } else {
            best
        }
    });
    chosen.push(first);
    while chosen.len() < k.min(candidates.len()) {
        let next = (0..candidates.len())
            .filter(|i| !chosen.contains(i))
            .map(|i| {
                let nearest = chosen
                    .iter()
                    .map(|&c| template_distance(&candidates[i], &candidates[c]))
                    .fold(f32::MAX, f32::min);
                (i, nearest * candidates[i].quality.weight())
            })
            .max_by(|a, b| a.1.total_cmp(&b.1));
        match next {
            Some((i, _)) => chosen.push(i),
            None => break,
        }
    }
    chosen
}

/// Below this [`template_distance`] a new template repeats one already enrolled (same pose, same
/// light, near-identical embedding) and adds almost nothing to recognition.
pub const REDUNDANT_DISTANCE: f32 = 0.12;

/// The enrolled template a new one would repeat, if any (index into `existing`).
pub fn redundant_with(new: &Template<'_>, existing: &[Template<'_>]) -> Option<usize> {
    existing
        .iter()
        .enumerate()
        .map(|(i, t)| (i, template_distance(new, t)))
        .filter(|(_, d)| *d < REDUNDANT_DISTANCE)
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i)
}

/// The fusion rule facegate matches with (chosen by `facegate eval --templates`, docs/accuracy.md):
/// the cosine with the quality-weighted mean template accepts as many genuine probes at the
/// calibrated threshold as the best single template does, with about half its false accepts.
pub const DEFAULT_FUSION: Fusion = Fusion::QualityTemplate;

/// From this many enrolled templates on, a new one that repeats one of them is refused (the first
/// ones are always kept: the account page takes three pictures in one go).
pub const DIVERSE_AFTER: usize = 3;

/// What a person is told when a picture repeats one already enrolled.
pub const REPEAT_ADVICE: &str = "This picture is almost the same as one you enrolled already: \
     turn your head a little or change the light, then take another.";

/// Whether a new template (embedding and its quality JSON) would only repeat one of the person's
/// `existing` templates (of the same pack) once they have [`DIVERSE_AFTER`] or more.
pub fn repeats_enrolled(
    embedding: &[f32],
    quality: &serde_json::Value,
    existing: &[crate::face::FaceTemplate],
) -> bool {
    if existing.len() < DIVERSE_AFTER {
        return false;
    }
    let new = Template {
        embedding,
        quality: TemplateQuality::from_json(quality),
    };
    let old: Vec<Template<'_>> = existing
        .iter()
        .map(|t| Template {
            embedding: &t.embedding,
            quality: TemplateQuality::from_json(&t.quality),
        })
        .collect();
    redundant_with(&new, &old).is_some()
}

/// [`crate::face::identify`] with fusion: each person's templates give one score by `rule`
/// (qualities read from the templates' stored JSON), then the best person, with the runner-up's
/// score.
pub fn identify_fused<'a>(
    probe: &[f32],
    templates: impl IntoIterator<Item = &'a crate::face::FaceTemplate>,
    rule: Fusion,
) -> Option<crate::face::Identification> {
    let mut by_person: std::collections::BTreeMap<&str, Vec<Template<'a>>> =
        std::collections::BTreeMap::new();
    for t in templates {
        by_person.entry(t.user_id.as_str()).or_default().push(Template {
            embedding: &t.embedding,
            quality: TemplateQuality::from_json(&t.quality),
        });
    }
    let mut people: Vec<(&str, f32)> = by_person
        .into_iter()
        .filter_map(|(user, ts)| Some((user, fused_score(probe, &ts, rule)?)))
        .collect();
    people.sort_by(|a, b| b.1.total_cmp(&a.1));
    let (user, score) = people.first()?;
    Some(crate::face::Identification {
        user_id: user.to_string(),
        score: *score,
        runner_up: people.get(1).map(|p| p.1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    fn good() -> TemplateQuality {
        TemplateQuality {
            eye_distance_px: 80.0,
            sharpness: 200.0,
            brightness: 120.0,
            yaw: 0.0,
            pitch: 0.0,
        }
    }

    #[test]
    fn weights_fall_with_each_defect_and_stay_bounded() {
        assert_eq!(good().weight(), 1.0);
        let small = TemplateQuality {
            eye_distance_px: 20.0,
            ..good()
        };
        let blurred = TemplateQuality {
            sharpness: 5.0,
            ..good()
        };
        let dark = TemplateQuality {
            brightness: 20.0,
            ..good()
        };
        let turned = TemplateQuality { yaw: 45.0, ..good() };
        for q in [small, blurred, dark, turned] {
            assert!(
                q.weight() <= 0.5 + 1e-6 && q.weight() >= 0.2,
                "{q:?} {}",
                q.weight()
            );
        }
        let awful = TemplateQuality {
            eye_distance_px: 10.0,
            sharpness: 1.0,
            brightness: 10.0,
            yaw: 60.0,
            pitch: 0.0,
        };
        assert_eq!(awful.weight(), 0.2);
        let json = serde_json::json!({"eye_distance_px": 80, "sharpness": 200, "brightness": 120, "yaw": 0, "pitch": 0});
        assert_eq!(TemplateQuality::from_json(&json), good());
        assert!(TemplateQuality::from_json(&serde_json::Value::Null).weight() > 0.2);
    }

    #[test]
    fn fusion_rules_combine_as_documented() {
        let probe = unit(&[1.0, 0.0, 0.0]);
        let a = unit(&[0.8, 0.6, 0.0]); // cosine 0.8
        let b = unit(&[0.2, 0.0, 0.98]); // cosine ~0.2
        let poor = TemplateQuality {
            eye_distance_px: 20.0,
            sharpness: 10.0,
            ..good()
        };
        let ts = [
            Template {
                embedding: &a,
                quality: good(),
            },
            Template {
                embedding: &b,
                quality: poor,
            },
        ];
        let sb = cosine(&probe, &b);
        let max = fused_score(&probe, &ts, Fusion::Max).unwrap();
        let mean = fused_score(&probe, &ts, Fusion::Mean).unwrap();
        let qmean = fused_score(&probe, &ts, Fusion::QualityMean).unwrap();
        let mix = fused_score(&probe, &ts, Fusion::MaxQualityMean).unwrap();
        assert!((max - 0.8).abs() < 1e-5);
        assert!((mean - (0.8 + sb) / 2.0).abs() < 1e-5);
        // The poor template weighs 0.25 against 1: the weighted mean leans to the good one.
        assert!((qmean - (0.8 + 0.25 * sb) / 1.25).abs() < 1e-4, "{qmean}");
        assert!((mix - (max + qmean) / 2.0).abs() < 1e-6);
        let tmpl = fused_score(&probe, &ts, Fusion::QualityTemplate).unwrap();
        assert!(tmpl > qmean && tmpl <= 1.0, "{tmpl}");
        // One template: every rule gives its cosine.
        for rule in [
            Fusion::Max,
            Fusion::Mean,
            Fusion::QualityMean,
            Fusion::QualityTemplate,
            Fusion::MaxQualityMean,
        ] {
            let s = fused_score(&probe, &ts[..1], rule).unwrap();
            assert!((s - 0.8).abs() < 1e-5, "{rule:?} {s}");
        }
        assert!(fused_score(&probe, &[], Fusion::Max).is_none());
        assert!(
            fused_score(&[1.0, 0.0], &ts, Fusion::Max).is_none(),
            "dimension mismatch"
        );
    }

    #[test]
    fn identification_fuses_each_persons_templates() {
        let template = |user: &str, v: &[f32], q: serde_json::Value| crate::face::FaceTemplate {
            id: "t".into(),
            user_id: user.into(),
            pack: "p".into(),
            embedding: unit(v),
            quality: q,
            created_at: 0,
        };
        let q = serde_json::json!({"eye_distance_px": 80, "sharpness": 200, "brightness": 120});
        // Mallory has one template that happens to lie close to the probe; Alice's three are all
        // fairly close. Max picks Mallory; the mean of each person's scores picks Alice.
        let gallery = [
            template("alice", &[0.8, 0.6, 0.0], q.clone()),
            template("alice", &[0.8, 0.0, 0.6], q.clone()),
            template("alice", &[0.8, 0.4, 0.4], q.clone()),
            template("mallory", &[0.85, -0.5, 0.0], q.clone()),
            template("mallory", &[-0.2, 0.0, 1.0], q.clone()),
        ];
        let probe = unit(&[1.0, 0.0, 0.0]);
        let max = identify_fused(&probe, &gallery, Fusion::Max).unwrap();
        assert_eq!(max.user_id, "mallory");
        assert_eq!(
            max,
            crate::face::identify(&probe, &gallery).unwrap(),
            "Max is the unfused rule"
        );
        let fused = identify_fused(&probe, &gallery, DEFAULT_FUSION).unwrap();
        assert_eq!(fused.user_id, "alice");
        assert!(fused.runner_up.unwrap() < fused.score);
        assert!(identify_fused(&probe, &[], DEFAULT_FUSION).is_none());
    }

    #[test]
    fn diverse_selection_skips_repeats_of_one_pose() {
        let e0 = unit(&[1.0, 0.0, 0.0]);
        let e1 = unit(&[0.999, 0.03, 0.0]);
        let e2 = unit(&[0.998, 0.0, 0.05]);
        let e3 = unit(&[0.8, 0.6, 0.0]);
        let e4 = unit(&[0.8, 0.0, 0.6]);
        let frontal = good();
        let turned = TemplateQuality { yaw: 20.0, ..good() };
        let dim = TemplateQuality {
            brightness: 80.0,
            ..good()
        };
        let cands = [
            Template {
                embedding: &e0,
                quality: frontal,
            },
            Template {
                embedding: &e1,
                quality: frontal,
            },
            Template {
                embedding: &e2,
                quality: frontal,
            },
            Template {
                embedding: &e3,
                quality: turned,
            },
            Template {
                embedding: &e4,
                quality: dim,
            },
        ];
        let chosen = select_diverse(&cands, 3);
        assert_eq!(chosen.len(), 3);
        assert_eq!(chosen[0], 0, "best quality first (ties keep the first)");
        let mut rest = chosen[1..].to_vec();
        rest.sort();
        assert_eq!(
            rest,
            vec![3, 4],
            "the turned and the dim picture, not two more frontal ones"
        );
        assert_eq!(select_diverse(&cands, 9).len(), 5);
        assert!(select_diverse(&[], 3).is_empty());
        assert_eq!(redundant_with(&cands[1], &cands[..1]), Some(0));
        assert_eq!(redundant_with(&cands[3], &cands[..3]), None);
    }

    #[test]
    fn enrolment_refuses_repeats_only_after_the_first_three() {
        let q = serde_json::json!({"eye_distance_px": 80, "sharpness": 200, "brightness": 120, "yaw": 0, "pitch": 0});
        let turned = serde_json::json!({"eye_distance_px": 80, "sharpness": 200, "brightness": 120, "yaw": 22, "pitch": 0});
        let t = |v: &[f32], q: &serde_json::Value| crate::face::FaceTemplate {
            id: "t".into(),
            user_id: "alice".into(),
            pack: "p".into(),
            embedding: unit(v),
            quality: q.clone(),
            created_at: 0,
        };
        let same = unit(&[1.0, 0.0, 0.0]);
        let three = [
            t(&[1.0, 0.0, 0.0], &q),
            t(&[1.0, 0.0, 0.0], &q),
            t(&[1.0, 0.01, 0.0], &q),
        ];
        assert!(
            !repeats_enrolled(&same, &q, &three[..2]),
            "the first three are always kept"
        );
        assert!(
            repeats_enrolled(&same, &q, &three),
            "a fourth copy of the same picture is refused"
        );
        assert!(
            !repeats_enrolled(&unit(&[0.9, 0.3, 0.0]), &turned, &three),
            "a turned head adds something"
        );
        assert!(!REPEAT_ADVICE.is_empty());
    }
}
