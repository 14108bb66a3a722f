//! The face API's similarity scale, 0-100, the same in every endpoint and for every model pack.
//!
//! A cosine means different things for different packs (insightface-s reaches a false-match rate of
//! 1e-5 at 0.35, the open pack at 0.6), so the scale is defined by risk instead: similarity
//! `30 + 10 x -log10(FMR)`, i.e. 50 at FMR 1e-2, 60 at 1e-3, 70 at 1e-4, 80 at 1e-5. Between a pack's
//! calibrated cosine thresholds the scale is linear in cosine; below the loosest one it runs linearly
//! to 30 at cosine 0 and 0 at cosine -1; above the strictest one linearly to 100 at cosine 1.

/// Similarity at a false-match rate: `30 + 10 x -log10(fmr)`.
pub fn similarity_at_fmr(fmr: f64) -> f32 {
    (30.0 - 10.0 * fmr.log10()) as f32
}

#[derive(Debug, Clone, PartialEq)]
pub struct SimilarityScale {
    /// (cosine, similarity) knots, both strictly increasing.
    knots: Vec<(f32, f32)>,
}

impl SimilarityScale {
    /// The scale through a pack's calibration: (target FMR, cosine threshold) pairs. Points that are
    /// out of range or would break monotonicity are skipped.
    pub fn from_calibration(points: &[(f64, f32)]) -> SimilarityScale {
        let mut cal: Vec<(f32, f32)> = points
            .iter()
            .filter(|(fmr, c)| *fmr > 0.0 && *fmr < 1.0 && *c > 0.0 && *c < 1.0)
            .map(|&(fmr, c)| (c, similarity_at_fmr(fmr).min(99.0)))
            .collect();
        cal.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut knots = vec![(-1.0, 0.0), (0.0, 30.0)];
        for (c, s) in cal {
            if let Some(&(lc, ls)) = knots.last()
                && c > lc
                && s > ls
            {
                knots.push((c, s));
            }
        }
        knots.push((1.0, 100.0));
        SimilarityScale { knots }
    }

    /// The (cosine, similarity) knots of the scale.
    pub fn knots(&self) -> &[(f32, f32)] {
        &self.knots
    }

    /// Similarity 0-100 of a cosine.
    pub fn similarity(&self, cosine: f32) -> f32 {
        interpolate(&self.knots, cosine.clamp(-1.0, 1.0), |k| k.0, |k| k.1)
    }

    /// The cosine at a similarity (the inverse, for thresholds).
    pub fn cosine(&self, similarity: f32) -> f32 {
        interpolate(&self.knots, similarity.clamp(0.0, 100.0), |k| k.1, |k| k.0)
    }
}

fn interpolate(
    knots: &[(f32, f32)],
    x: f32,
    from: fn(&(f32, f32)) -> f32,
    to: fn(&(f32, f32)) -> f32,
) -> f32 {
    for w in knots.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        if x <= from(b) {
            let t = (x - from(a)) / (from(b) - from(a)).max(f32::EPSILON);
            return to(a) + t.clamp(0.0, 1.0) * (to(b) - to(a));
        }
    }
    knots.last().map_or(0.0, to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibrated_thresholds_land_on_their_risk_and_the_inverse_holds() {
        // insightface-s's calibration.
        let s = SimilarityScale::from_calibration(&[
            (1e-2, 0.2024),
            (1e-3, 0.2597),
            (1e-4, 0.3001),
            (1e-5, 0.3526),
        ]);
        assert!((s.similarity(0.2024) - 50.0).abs() < 1e-3);
        assert!((s.similarity(0.3526) - 80.0).abs() < 1e-3);
        assert_eq!(s.similarity(-1.0), 0.0);
        assert_eq!(s.similarity(0.0), 30.0);
        assert_eq!(s.similarity(1.0), 100.0);
        assert_eq!(s.similarity(7.0), 100.0);
        for c in [-0.5, 0.1, 0.25, 0.33, 0.6, 0.95] {
            assert!((s.cosine(s.similarity(c)) - c).abs() < 1e-4, "{c}");
        }
        let mut last = -1.0;
        for i in 0..=200 {
            let v = s.similarity(i as f32 / 100.0 - 1.0);
            assert!(v >= last);
            last = v;
        }
        // Another pack with other cosines: the same similarity means the same risk.
        let open = SimilarityScale::from_calibration(&[(1e-3, 0.543), (1e-5, 0.61), (2.0, 0.1)]);
        assert!((open.similarity(0.543) - 60.0).abs() < 1e-3);
        assert!((open.cosine(80.0) - 0.61).abs() < 1e-4);
        assert_eq!(open.knots().len(), 5);
    }
}
