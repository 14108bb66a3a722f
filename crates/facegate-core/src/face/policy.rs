//! The match policy: from a pack's calibration (cosine thresholds measured at false-match rates) and
//! the operator's targets to the threshold of each comparison. 1:N counts templates, not people:
//! every template is one comparison, so each must meet the 1:N target divided by their number, and a
//! search is refused when that rate is stricter than anything the calibration measured.

use super::FaceError;
use super::template::{Identification, per_comparison_fmr};

#[derive(Debug, Clone, PartialEq)]
pub struct MatchPolicy {
    /// The pack's calibration: (false-match rate, cosine threshold) pairs.
    pub calibration: Vec<(f64, f32)>,
    /// Target false-match rate of a 1:1 comparison.
    pub target_fmr: f64,
    /// Target false-accept rate of a whole 1:N search.
    pub target_fmr_1n: f64,
    /// A 1:N match must beat the best match of any other account by this much (cosine).
    pub identify_margin: f32,
}

impl MatchPolicy {
    /// The calibrated threshold for `fmr`: the loosest one measured at or below it, else the
    /// strictest measured (never a guess beyond the calibration). 1.0 without any calibration.
    pub fn threshold_for(&self, fmr: f64) -> f32 {
        let mut sorted = self.calibration.clone();
        sorted.sort_by(|a, b| b.0.total_cmp(&a.0));
        sorted
            .iter()
            .find(|t| t.0 <= fmr)
            .or(sorted.last())
            .map_or(1.0, |t| t.1)
    }

    /// The 1:1 threshold at the configured target.
    pub fn threshold(&self) -> f32 {
        self.threshold_for(self.target_fmr)
    }

    /// The smallest false-match rate the calibration measured: nothing stricter is vouched for.
    pub fn vouched_fmr(&self) -> f64 {
        self.calibration.iter().map(|t| t.0).fold(f64::INFINITY, f64::min)
    }

    /// The largest gallery (templates) a 1:N search serves at the configured 1:N target.
    pub fn largest_gallery(&self) -> usize {
        (self.target_fmr_1n / self.vouched_fmr()).floor().max(0.0) as usize
    }

    /// The threshold of a 1:N search over `templates` comparisons, or `GalleryTooLarge`.
    pub fn identify_threshold(&self, templates: usize) -> Result<f32, FaceError> {
        let fmr = per_comparison_fmr(self.target_fmr_1n, templates);
        // Calibrated rates are decimal steps: allow for their rounding.
        if fmr < self.vouched_fmr() * 0.999 {
            return Err(FaceError::GalleryTooLarge {
                templates,
                largest: self.largest_gallery(),
            });
        }
        Ok(self.threshold_for(fmr))
    }

    /// "Possibly the same person": the lenient 1e-2 operating point, for refusing a face sign-up
    /// that may be an existing account's face, and for the frames of one liveness check.
    pub fn possible_match_threshold(&self) -> f32 {
        self.threshold_for(1e-2)
    }

    /// Is `id` a match distinct enough to sign in: above the threshold and clear of every other
    /// account by the margin?
    pub fn accept_identification(&self, id: &Identification, threshold: f32) -> Result<(), FaceError> {
        if id.score < threshold {
            return Err(FaceError::NoMatch);
        }
        if id.runner_up.is_some_and(|r| id.score - r < self.identify_margin) {
            return Err(FaceError::Ambiguous);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> MatchPolicy {
        MatchPolicy {
            calibration: vec![(1e-2, 0.2), (1e-3, 0.3), (1e-4, 0.35), (1e-5, 0.4)],
            target_fmr: 1e-5,
            target_fmr_1n: 1e-3,
            identify_margin: 0.05,
        }
    }

    #[test]
    fn thresholds_come_from_the_calibration_only() {
        let p = policy();
        assert_eq!(p.threshold(), 0.4);
        assert_eq!(
            p.threshold_for(5e-3),
            0.3,
            "the loosest measured at or below the target"
        );
        assert_eq!(
            p.threshold_for(1e-9),
            0.4,
            "never looser than the strictest measured"
        );
        assert_eq!(p.possible_match_threshold(), 0.2);
        let none = MatchPolicy {
            calibration: vec![],
            ..p
        };
        assert_eq!(none.threshold(), 1.0, "no calibration: nothing matches");
    }

    #[test]
    fn the_gallery_counts_templates_and_has_a_ceiling() {
        let p = policy();
        // 1e-3 over 100 templates needs 1e-5 per comparison: the strictest measured.
        assert_eq!(p.largest_gallery(), 100);
        assert_eq!(p.identify_threshold(1).unwrap(), 0.3);
        assert_eq!(p.identify_threshold(10).unwrap(), 0.35);
        assert_eq!(p.identify_threshold(100).unwrap(), 0.4);
        assert!(matches!(
            p.identify_threshold(101),
            Err(FaceError::GalleryTooLarge {
                templates: 101,
                largest: 100
            })
        ));
    }

    #[test]
    fn a_match_must_be_clear_of_every_other_account() {
        let p = policy();
        let id = |score, runner_up| Identification {
            user_id: "a".into(),
            score,
            runner_up,
        };
        assert!(p.accept_identification(&id(0.5, None), 0.4).is_ok());
        assert!(p.accept_identification(&id(0.5, Some(0.44)), 0.4).is_ok());
        assert!(matches!(
            p.accept_identification(&id(0.5, Some(0.46)), 0.4),
            Err(FaceError::Ambiguous)
        ));
        assert!(matches!(
            p.accept_identification(&id(0.39, None), 0.4),
            Err(FaceError::NoMatch)
        ));
    }
}
