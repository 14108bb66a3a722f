//! Where challenge parameters come from.

/// Where challenge parameters come from. In production every draw is read from the operating
/// system's cryptographic RNG, so no number of observed challenges predicts the next one;
/// `Seeded` (SplitMix64) makes a challenge reproducible, for tests only (the server refuses a seed
/// unless told it is being tested).
#[derive(Debug, Clone)]
pub enum Rng {
    System,
    Seeded(u64),
}

impl Rng {
    pub fn seeded(seed: u64) -> Rng {
        Rng::Seeded(seed)
    }

    pub fn from_system() -> Rng {
        Rng::System
    }

    pub fn next_u64(&mut self) -> u64 {
        match self {
            Rng::System => crate::secret::random_u64(),
            Rng::Seeded(state) => {
                *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = *state;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^ (z >> 31)
            }
        }
    }

    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f32, hi: f32) -> f32 {
        let u = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * u
    }
}
