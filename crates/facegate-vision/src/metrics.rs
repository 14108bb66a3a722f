//! Verification metrics over scored pairs: ROC/DET points, equal error rate, true-accept rate at a
//! false-accept rate, and the thresholds that give them. Scores are similarities: higher = same person.

use serde::Serialize;

/// Scores of genuine (same person) and impostor (different people) pairs.
#[derive(Debug, Clone, Default)]
pub struct ScoreSet {
    genuine: Vec<f32>,
    impostor: Vec<f32>,
}

/// An operating point at a target false-accept rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct OperatingPoint {
    pub target_far: f64,
    /// The lowest threshold whose false-accept rate is at most the target (accept: score >= threshold).
    pub threshold: f32,
    pub far: f64,
    pub tar: f64,
    /// False on a set too small to measure the target: fewer than 1/target impostor pairs.
    pub measurable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Eer {
    pub rate: f64,
    pub threshold: f32,
}

impl ScoreSet {
    pub fn push(&mut self, score: f32, genuine: bool) {
        if !score.is_finite() {
            return;
        }
        if genuine {
            self.genuine.push(score)
        } else {
            self.impostor.push(score)
        }
    }

    pub fn genuine(&self) -> &[f32] {
        &self.genuine
    }

    pub fn impostor(&self) -> &[f32] {
        &self.impostor
    }

    /// Share of impostor scores `>= t`.
    pub fn far(&self, t: f32) -> f64 {
        share(&self.impostor, |s| s >= t)
    }

    /// Share of genuine scores `>= t`.
    pub fn tar(&self, t: f32) -> f64 {
        share(&self.genuine, |s| s >= t)
    }

    /// The lowest threshold with FAR <= `target`: just above the impostor score ranked
    /// `floor(target * n)` from the top.
    pub fn at_far(&self, target: f64) -> Option<OperatingPoint> {
        if self.impostor.is_empty() || self.genuine.is_empty() {
            return None;
        }
        let mut imp = self.impostor.clone();
        imp.sort_by(|a, b| b.total_cmp(a));
        let allowed = (target * imp.len() as f64).floor() as usize;
        let threshold = if allowed >= imp.len() {
            imp[imp.len() - 1]
        } else {
            next_up(imp[allowed])
        };
        Some(OperatingPoint {
            target_far: target,
            threshold,
            far: self.far(threshold),
            tar: self.tar(threshold),
            measurable: imp.len() as f64 * target >= 1.0,
        })
    }

    /// The equal error rate: where the false-reject and false-accept rates cross, found over every
    /// distinct score as a threshold (reported as the mean of the two rates at the closest point).
    pub fn eer(&self) -> Option<Eer> {
        if self.impostor.is_empty() || self.genuine.is_empty() {
            return None;
        }
        let mut best: Option<(f64, Eer)> = None;
        for t in self.thresholds() {
            let (far, frr) = (self.far(t), 1.0 - self.tar(t));
            let gap = (far - frr).abs();
            if best.as_ref().is_none_or(|(g, _)| gap < *g) {
                best = Some((
                    gap,
                    Eer {
                        rate: (far + frr) / 2.0,
                        threshold: t,
                    },
                ));
            }
        }
        best.map(|(_, e)| e)
    }

    /// Every distinct score, ascending: the thresholds at which the curves change.
    fn thresholds(&self) -> Vec<f32> {
        let mut all: Vec<f32> = self.genuine.iter().chain(&self.impostor).copied().collect();
        all.sort_by(f32::total_cmp);
        all.dedup();
        all
    }

    /// (FAR, FRR) for every distinct threshold, for DET/ROC plots.
    pub fn det_curve(&self) -> Vec<(f64, f64)> {
        let mut genuine = self.genuine.clone();
        let mut imp = self.impostor.clone();
        genuine.sort_by(f32::total_cmp);
        imp.sort_by(f32::total_cmp);
        let (ng, ni) = (genuine.len().max(1) as f64, imp.len().max(1) as f64);
        self.thresholds()
            .into_iter()
            .map(|t| {
                let rejected = genuine.partition_point(|s| *s < t) as f64;
                let accepted = imp.len() as f64 - imp.partition_point(|s| *s < t) as f64;
                (accepted / ni, rejected / ng)
            })
            .collect()
    }
}

fn share(v: &[f32], pred: impl Fn(f32) -> bool) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.iter().filter(|s| pred(**s)).count() as f64 / v.len() as f64
}

/// The smallest f32 greater than `x`.
fn next_up(x: f32) -> f32 {
    if x.is_nan() || x == f32::INFINITY {
        return x;
    }
    if x == 0.0 {
        return f32::from_bits(1);
    }
    let bits = x.to_bits();
    f32::from_bits(if x > 0.0 { bits + 1 } else { bits - 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(genuine: &[f32], impostor: &[f32]) -> ScoreSet {
        let mut s = ScoreSet::default();
        genuine.iter().for_each(|g| s.push(*g, true));
        impostor.iter().for_each(|i| s.push(*i, false));
        s
    }

    #[test]
    fn separable_scores_have_zero_eer_and_full_tar() {
        let s = set(&[0.6, 0.7, 0.8], &[0.1, 0.2, 0.3, 0.4]);
        let e = s.eer().unwrap();
        assert_eq!(e.rate, 0.0);
        assert!(e.threshold > 0.4 && e.threshold <= 0.6);
        let op = s.at_far(0.01).unwrap();
        assert_eq!((op.far, op.tar), (0.0, 1.0));
        assert!(op.threshold > 0.4 && op.threshold < 0.41);
        assert!(!op.measurable, "4 impostors cannot measure 1e-2");
    }

    #[test]
    fn overlapping_scores_give_the_counted_rates() {
        // 10 impostors, one of them (0.65) above two genuine scores.
        let s = set(
            &[0.5, 0.6, 0.7, 0.8],
            &[0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.65],
        );
        // FAR 0.1 allows one impostor: the threshold sits just above the second-highest (0.4).
        let op = s.at_far(0.1).unwrap();
        assert!(op.threshold > 0.4 && op.threshold < 0.4001, "{op:?}");
        assert_eq!((op.far, op.tar), (0.1, 1.0));
        let strict = s.at_far(0.0).unwrap();
        assert!((strict.far, strict.tar) == (0.0, 0.5));
        let e = s.eer().unwrap();
        assert!(e.rate > 0.0 && e.rate <= 0.25, "{e:?}");
    }

    #[test]
    fn det_curve_runs_from_all_accepted_to_none() {
        let s = set(&[0.5, 0.9], &[0.1, 0.6]);
        let c = s.det_curve();
        assert_eq!(c.first(), Some(&(1.0, 0.0)));
        assert_eq!(c.last(), Some(&(0.0, 0.5)));
        assert!(s.eer().is_some() && ScoreSet::default().eer().is_none());
    }
}
