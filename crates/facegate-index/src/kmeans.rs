//! Spherical k-means for the IVF lists: centroids are unit vectors, assignment by dot product.

use crate::dot;

/// Index and score of the centroid nearest `v`.
pub(crate) fn nearest(centroids: &[f32], dim: usize, v: &[f32]) -> (usize, f32) {
    let mut best = (0, f32::MIN);
    for (i, c) in centroids.chunks_exact(dim).enumerate() {
        let s = dot(c, v);
        if s > best.1 {
            best = (i, s);
        }
    }
    best
}

/// The nearest centroid of every row of `data`, on all cores.
pub(crate) fn assign(centroids: &[f32], dim: usize, data: &[f32]) -> Vec<usize> {
    let rows = data.len() / dim.max(1);
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(rows.max(1));
    let per = rows.div_ceil(threads.max(1)).max(1);
    let mut out = vec![0usize; rows];
    std::thread::scope(|s| {
        for (chunk_out, chunk) in out.chunks_mut(per).zip(data.chunks(per * dim)) {
            s.spawn(move || {
                for (o, v) in chunk_out.iter_mut().zip(chunk.chunks_exact(dim)) {
                    *o = nearest(centroids, dim, v).0;
                }
            });
        }
    });
    out
}

fn normalise(v: &mut [f32]) -> bool {
    let n = dot(v, v).sqrt();
    if n > 1e-12 {
        v.iter_mut().for_each(|x| *x /= n);
        true
    } else {
        false
    }
}

/// A small deterministic generator (xorshift64*), enough for sampling.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    /// Uniform in (0, 1].
    pub(crate) fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }
    /// Standard normal (Box-Muller).
    pub(crate) fn gauss(&mut self) -> f32 {
        let (u, v) = (self.unit(), self.unit());
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }
}

/// `nlist` unit centroids trained on a sample of at most 32 vectors per list (8 iterations).
pub(crate) fn train(data: &[f32], dim: usize, nlist: usize, seed: u64) -> Vec<f32> {
    let rows = data.len() / dim.max(1);
    let nlist = nlist.min(rows).max(1);
    let mut rng = Rng::new(seed);
    let sample_rows = (nlist * 32).min(rows);
    let mut sample = Vec::with_capacity(sample_rows * dim);
    if sample_rows == rows {
        sample.extend_from_slice(data);
    } else {
        for _ in 0..sample_rows {
            let r = rng.below(rows);
            sample.extend_from_slice(&data[r * dim..(r + 1) * dim]);
        }
    }
    // Initial centroids: distinct random sample rows.
    let mut picks: Vec<usize> = (0..sample_rows).collect();
    for i in 0..nlist {
        let j = i + rng.below(sample_rows - i);
        picks.swap(i, j);
    }
    let mut centroids: Vec<f32> = picks[..nlist]
        .iter()
        .flat_map(|&r| sample[r * dim..(r + 1) * dim].iter().copied())
        .collect();
    for _ in 0..8 {
        let assignment = assign(&centroids, dim, &sample);
        let mut sums = vec![0f32; nlist * dim];
        let mut counts = vec![0usize; nlist];
        for (v, &c) in sample.chunks_exact(dim).zip(&assignment) {
            counts[c] += 1;
            for (s, x) in sums[c * dim..(c + 1) * dim].iter_mut().zip(v) {
                *s += x;
            }
        }
        for c in 0..nlist {
            let slot = &mut sums[c * dim..(c + 1) * dim];
            if counts[c] == 0 || !normalise(slot) {
                // An empty list takes a random sample vector, so every list stays useful.
                let r = rng.below(sample_rows);
                slot.copy_from_slice(&sample[r * dim..(r + 1) * dim]);
                normalise(slot);
            }
        }
        centroids = sums;
    }
    centroids
}
