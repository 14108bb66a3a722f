//! Measures read off the 106 landmarks (insightface 2d106 layout): head pose, eye openness, mouth
//! opening and smile. Indices: contour 0-32 (0 = chin), image-left eye 33-42, brows 43-51 and 97-105,
//! mouth 52-71, nose 72-86 (86 = tip), image-right eye 87-96.

use serde::Serialize;

use crate::geometry::Point;
use crate::quality::Pose;

/// Landmark indices and a generic 3-D face (millimetres; x right, y down, z away from the camera,
/// nose tip at the origin) used to fit the head pose.
const POSE_MODEL: [(usize, [f64; 3]); 9] = [
    (35, [-45.0, -35.0, 30.0]), // outer corner of the image-left eye
    (39, [-16.0, -35.0, 20.0]), // its inner corner
    (89, [16.0, -35.0, 20.0]),  // inner corner of the image-right eye
    (93, [45.0, -35.0, 30.0]),  // its outer corner
    (72, [0.0, -37.0, 18.0]),   // nose bridge between the eyes
    (86, [0.0, 0.0, 0.0]),      // nose tip
    (52, [-26.0, 32.0, 24.0]),  // mouth corner, image-left
    (61, [26.0, 32.0, 24.0]),   // mouth corner, image-right
    (0, [0.0, 72.0, 18.0]),     // chin
];

/// Eye and mouth measures, each scale-free.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Expression {
    /// Eye aspect ratio (lid-to-lid height over corner-to-corner width) of the eye on the image's
    /// left: ~0.25-0.35 open, below ~0.15 closed.
    pub left_eye: f32,
    pub right_eye: f32,
    /// Gap between the inner lips over mouth width: ~0 closed, > 0.15 clearly open.
    pub mouth_open: f32,
    /// Mouth width over the distance between the outer eye corners: ~0.55-0.65 neutral, larger in a smile.
    pub mouth_width: f32,
    /// How far the mouth corners sit above the midline of the lips, over mouth width: > 0 in a smile.
    pub corner_lift: f32,
}

/// Head pose from 106 landmarks by fitting a weak-perspective projection of a generic 3-D face;
/// `None` if there are not 106 points or the fit is degenerate. Same sign conventions as [`Pose`].
pub fn pose_from_landmarks(points: &[Point]) -> Option<Pose> {
    if points.len() != 106 {
        return None;
    }
    // Least squares for the 2x4 affine camera P: [u v]^T = P [X Y Z 1]^T.
    let mut ata = [[0f64; 4]; 4];
    let mut atu = [0f64; 4];
    let mut atv = [0f64; 4];
    for (idx, xyz) in POSE_MODEL {
        let row = [xyz[0], xyz[1], xyz[2], 1.0];
        let (u, v) = (f64::from(points[idx].x), f64::from(points[idx].y));
        for i in 0..4 {
            for j in 0..4 {
                ata[i][j] += row[i] * row[j];
            }
            atu[i] += row[i] * u;
            atv[i] += row[i] * v;
        }
    }
    let p0 = solve4(ata, atu)?;
    let p1 = solve4(ata, atv)?;
    let r1 = normalize([p0[0], p0[1], p0[2]])?;
    let r2 = normalize([p1[0], p1[1], p1[2]])?;
    let r3 = normalize(cross(r1, r2))?;
    let r2 = cross(r3, r1);
    // R = Rz(roll) * Ry(b) * Rx(a), rows r1, r2, r3.
    let a = r3[1].atan2(r3[2]);
    let b = (-r3[0]).atan2((r1[0] * r1[0] + r2[0] * r2[0]).sqrt());
    let g = r2[0].atan2(r1[0]);
    // A head turning to the image's right rotates by negative b about the downward y axis; a chin
    // going up rotates by negative a.
    Some(Pose {
        yaw: (-b).to_degrees() as f32,
        pitch: (-a).to_degrees() as f32,
        roll: g.to_degrees() as f32,
    })
}

/// Eye and mouth measures from 106 landmarks.
pub fn expression(points: &[Point]) -> Option<Expression> {
    if points.len() != 106 {
        return None;
    }
    let p = |i: usize| points[i];
    let ear = |outer: usize, inner: usize, upper: [usize; 3], lower: [usize; 3]| {
        let width = p(outer).distance(p(inner)).max(1e-3);
        let height: f32 = upper
            .iter()
            .zip(lower)
            .map(|(u, l)| p(*u).distance(p(l)))
            .sum::<f32>()
            / 3.0;
        height / width
    };
    let mouth_w = p(52).distance(p(61)).max(1e-3);
    let eyes_w = p(35).distance(p(93)).max(1e-3);
    // Lift: the corners' height above the line through the inner-lip midpoints, perpendicular to the
    // corner-to-corner line (so head roll does not count).
    let mid = p(62).midpoint(p(60));
    let corners = p(52).midpoint(p(61));
    let (dx, dy) = ((p(61).x - p(52).x) / mouth_w, (p(61).y - p(52).y) / mouth_w);
    let lift = ((mid.x - corners.x) * -dy + (mid.y - corners.y) * dx) / mouth_w;
    Some(Expression {
        left_eye: ear(35, 39, [41, 40, 42], [36, 33, 37]),
        right_eye: ear(93, 89, [96, 94, 95], [91, 87, 90]),
        mouth_open: p(62).distance(p(60)) / mouth_w,
        mouth_width: mouth_w / eyes_w,
        corner_lift: lift,
    })
}

fn solve4(mut a: [[f64; 4]; 4], mut b: [f64; 4]) -> Option<[f64; 4]> {
    for col in 0..4 {
        let pivot = (col..4).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-9 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        let (top, rest) = a.split_at_mut(col + 1);
        let pivot_row = top[col];
        for (offset, row) in rest.iter_mut().enumerate() {
            let f = row[col] / pivot_row[col];
            for (x, p) in row.iter_mut().zip(pivot_row).skip(col) {
                *x -= f * p;
            }
            b[col + 1 + offset] -= f * b[col];
        }
    }
    let mut x = [0f64; 4];
    for row in (0..4).rev() {
        let s: f64 = (row + 1..4).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn normalize(v: [f64; 3]) -> Option<[f64; 3]> {
    let n = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
    (n > 1e-9).then(|| v.map(|c| c / n))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Projects the model posed by R = Rz(roll) Ry(b) Rx(a) into 106 points (the rest left at zero).
    fn project(yaw: f64, pitch: f64, roll: f64) -> Vec<Point> {
        let (a, b, g) = ((-pitch).to_radians(), (-yaw).to_radians(), roll.to_radians());
        let rx = [[1.0, 0.0, 0.0], [0.0, a.cos(), -a.sin()], [0.0, a.sin(), a.cos()]];
        let ry = [[b.cos(), 0.0, b.sin()], [0.0, 1.0, 0.0], [-b.sin(), 0.0, b.cos()]];
        let rz = [[g.cos(), -g.sin(), 0.0], [g.sin(), g.cos(), 0.0], [0.0, 0.0, 1.0]];
        let mul = |m: [[f64; 3]; 3], n: [[f64; 3]; 3]| {
            let mut o = [[0.0; 3]; 3];
            for i in 0..3 {
                for j in 0..3 {
                    o[i][j] = (0..3).map(|k| m[i][k] * n[k][j]).sum();
                }
            }
            o
        };
        let r = mul(rz, mul(ry, rx));
        let mut pts = vec![Point::default(); 106];
        for (idx, x) in POSE_MODEL {
            let c = |row: usize| r[row][0] * x[0] + r[row][1] * x[1] + r[row][2] * x[2];
            pts[idx] = Point::new((2.5 * c(0) + 300.0) as f32, (2.5 * c(1) + 200.0) as f32);
        }
        pts
    }

    #[test]
    fn recovers_known_poses() {
        for (yaw, pitch, roll) in [
            (0.0, 0.0, 0.0),
            (25.0, 0.0, 0.0),
            (-30.0, 10.0, 5.0),
            (10.0, -20.0, -15.0),
        ] {
            let p = pose_from_landmarks(&project(yaw, pitch, roll)).unwrap();
            assert!((f64::from(p.yaw) - yaw).abs() < 0.5, "yaw {yaw}: {p:?}");
            assert!((f64::from(p.pitch) - pitch).abs() < 0.5, "pitch {pitch}: {p:?}");
            assert!((f64::from(p.roll) - roll).abs() < 0.5, "roll {roll}: {p:?}");
        }
    }

    #[test]
    fn positive_yaw_moves_the_nose_to_the_image_right() {
        let pts = project(25.0, 0.0, 0.0);
        let eyes_mid = pts[39].midpoint(pts[89]);
        assert!(pts[86].x > eyes_mid.x + 5.0);
        let up = project(0.0, 20.0, 0.0);
        let level = project(0.0, 0.0, 0.0);
        assert!(
            up[86].y - up[72].y < level[86].y - level[72].y,
            "chin up: the nose tip rises towards the eyes"
        );
    }

    #[test]
    fn too_few_points_give_nothing() {
        assert!(pose_from_landmarks(&[Point::default(); 5]).is_none());
        assert!(expression(&[Point::default(); 5]).is_none());
    }
}
