//! Synthetic face-like embeddings for tests and benchmarks: `identities` random unit centres, and
//! samples that are a centre plus Gaussian noise, renormalised. Like real embeddings, photos of one
//! identity are close (cosine ~0.5-0.8 for noise 0.6-1.0 relative to the centre's norm) and different
//! identities nearly orthogonal. Deterministic for a seed.

use crate::kmeans::Rng;

#[derive(Debug)]
pub struct Synthetic {
    dim: usize,
    centres: Vec<f32>,
    noise: f32,
    rng: RngBox,
}

struct RngBox(Rng);

impl std::fmt::Debug for RngBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rng")
    }
}

fn unit_gauss(rng: &mut Rng, dim: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..dim).map(|_| rng.gauss()).collect();
    let n = crate::dot(&v, &v).sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= n);
    v
}

impl Synthetic {
    /// `noise` is the noise vector's norm relative to the unit centre.
    pub fn new(dim: usize, identities: usize, noise: f32, seed: u64) -> Self {
        let mut rng = Rng::new(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let centres = (0..identities.max(1))
            .flat_map(|_| unit_gauss(&mut rng, dim))
            .collect();
        Self {
            dim,
            centres,
            noise,
            rng: RngBox(rng),
        }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// A unit sample of a random identity.
    pub fn sample(&mut self) -> Vec<f32> {
        let ids = self.centres.len() / self.dim;
        let id = self.rng.0.below(ids);
        self.sample_of(id)
    }

    /// A unit sample of identity `id` (modulo the number of identities).
    pub fn sample_of(&mut self, id: usize) -> Vec<f32> {
        let ids = self.centres.len() / self.dim;
        let id = id % ids;
        let noise = unit_gauss(&mut self.rng.0, self.dim);
        let mut v: Vec<f32> = self.centres[id * self.dim..(id + 1) * self.dim]
            .iter()
            .zip(&noise)
            .map(|(c, n)| c + self.noise * n)
            .collect();
        let n = crate::dot(&v, &v).sqrt().max(1e-12);
        v.iter_mut().for_each(|x| *x /= n);
        v
    }
}
