//! facegate-index: nearest-neighbour search over face embeddings (unit vectors, cosine = dot product).
//!
//! Small collections are scanned exactly: a dot product written so that the compiler vectorises it
//! (16 independent accumulators over `chunks_exact(16)`, no `unsafe`). Above a configurable size the
//! index switches to IVF-flat: spherical k-means splits the vectors into about sqrt(n) lists and a
//! search scans only the `nprobe` lists whose centroids are nearest the query. Inserts and deletes
//! keep it current; it retrains when the collection has doubled since the last training, and falls
//! back to the exact scan when it shrinks well below the threshold. No I/O: the caller loads it.

pub mod gallery;
pub mod hnsw;
mod kmeans;
pub mod synthetic;

use std::collections::{BinaryHeap, HashMap};
use std::hash::Hash;

/// How the index decides between exact and approximate search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IndexConfig {
    /// Up to this many vectors the index scans them all (exact); above it, IVF.
    pub exact_max: usize,
    /// Lists scanned per approximate search; 0 picks a quarter of the lists (at least 8), which
    /// measured recall >= 0.95 on clustered synthetic vectors (README).
    pub nprobe: usize,
    /// Seed of the k-means sampling (training is deterministic for a given insertion order).
    pub seed: u64,
}

impl Default for IndexConfig {
    fn default() -> Self {
        Self {
            exact_max: 20_000,
            nprobe: 0,
            seed: 0x5eed_face,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexError {
    /// The vector's length is not the index's dimension.
    Dimension { expected: usize, got: usize },
    /// The vector holds NaN or infinity.
    NotFinite,
}

impl std::fmt::Display for IndexError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Dimension { expected, got } => {
                write!(f, "vector has {got} dimensions, the index {expected}")
            }
            Self::NotFinite => f.write_str("vector holds a NaN or infinite value"),
        }
    }
}

impl std::error::Error for IndexError {}

/// One search result: a key and its cosine similarity to the query.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit<K> {
    pub key: K,
    pub score: f32,
}

/// The dot product of two equally long slices, in a shape LLVM vectorises: 16 independent lanes.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 16];
    let ca = a.chunks_exact(16);
    let cb = b.chunks_exact(16);
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..16 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[derive(Debug, Clone)]
struct List<K> {
    keys: Vec<K>,
    /// `keys.len() * dim` floats, row-major.
    data: Vec<f32>,
}

impl<K> Default for List<K> {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            data: Vec::new(),
        }
    }
}

/// The index. `K` is the caller's key (a face id).
#[derive(Debug, Clone)]
pub struct Index<K> {
    dim: usize,
    config: IndexConfig,
    lists: Vec<List<K>>,
    /// `nlist * dim` unit centroids when approximate; empty when exact (one list).
    centroids: Vec<f32>,
    pos: HashMap<K, (u32, u32)>,
    trained_at: usize,
}

/// A score with a total order, for the top-k heap (smallest on top).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Scored(f32, u32, u32);

impl Eq for Scored {}
impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scored {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Reversed: BinaryHeap is a max-heap and we want the worst kept hit on top.
        other
            .0
            .total_cmp(&self.0)
            .then_with(|| (self.1, self.2).cmp(&(other.1, other.2)))
    }
}

struct TopK {
    k: usize,
    min_score: f32,
    heap: BinaryHeap<Scored>,
}

impl TopK {
    fn new(k: usize, min_score: f32) -> Self {
        Self {
            k,
            min_score,
            heap: BinaryHeap::with_capacity(k + 1),
        }
    }

    #[inline]
    fn push(&mut self, score: f32, list: u32, row: u32) {
        if score < self.min_score || self.k == 0 {
            return;
        }
        if self.heap.len() < self.k {
            self.heap.push(Scored(score, list, row));
        } else if self.heap.peek().is_some_and(|w| score > w.0) {
            self.heap.pop();
            self.heap.push(Scored(score, list, row));
            self.min_score = self.min_score.max(self.heap.peek().map_or(score, |w| w.0));
        }
    }
}

impl<K: Clone + Eq + Hash> Index<K> {
    pub fn new(dim: usize, config: IndexConfig) -> Self {
        Self {
            dim,
            config,
            lists: vec![List::default()],
            centroids: Vec::new(),
            pos: HashMap::new(),
            trained_at: 0,
        }
    }

    /// Builds an index from many vectors at once (one training at the end, not one per doubling).
    pub fn build(
        dim: usize,
        config: IndexConfig,
        items: impl IntoIterator<Item = (K, Vec<f32>)>,
    ) -> Result<Self, IndexError> {
        let mut index = Self::new(dim, config);
        for (k, v) in items {
            index.check(&v)?;
            index.remove_quiet(&k);
            index.push_into(0, k, &v);
        }
        index.rebalance();
        Ok(index)
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn len(&self) -> usize {
        self.pos.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pos.is_empty()
    }

    pub fn config(&self) -> IndexConfig {
        self.config
    }

    /// True when searches are approximate (IVF).
    pub fn is_approximate(&self) -> bool {
        !self.centroids.is_empty()
    }

    /// Number of inverted lists (1 when exact).
    pub fn lists(&self) -> usize {
        self.lists.len()
    }

    /// Changes the number of lists an approximate search probes (0: automatic).
    pub fn set_nprobe(&mut self, nprobe: usize) {
        self.config.nprobe = nprobe;
    }

    /// Lists probed by an approximate search.
    pub fn nprobe(&self) -> usize {
        let nlist = self.lists.len();
        if self.config.nprobe > 0 {
            self.config.nprobe.min(nlist)
        } else {
            (nlist / 4).max(8).min(nlist)
        }
    }

    /// Bytes held by vectors, centroids and the key map (keys themselves counted by their size).
    pub fn memory_bytes(&self) -> usize {
        let vectors: usize = self.lists.iter().map(|l| l.data.capacity() * 4).sum();
        let keys: usize = self
            .lists
            .iter()
            .map(|l| l.keys.capacity() * std::mem::size_of::<K>())
            .sum();
        let map = self.pos.capacity() * (std::mem::size_of::<K>() + 8 + 8);
        vectors + keys + map + self.centroids.capacity() * 4
    }

    fn check(&self, v: &[f32]) -> Result<(), IndexError> {
        if v.len() != self.dim {
            return Err(IndexError::Dimension {
                expected: self.dim,
                got: v.len(),
            });
        }
        if v.iter().any(|x| !x.is_finite()) {
            return Err(IndexError::NotFinite);
        }
        Ok(())
    }

    fn nearest_list(&self, v: &[f32]) -> usize {
        if self.centroids.is_empty() {
            return 0;
        }
        kmeans::nearest(&self.centroids, self.dim, v).0
    }

    fn push_into(&mut self, list: usize, key: K, v: &[f32]) {
        let l = &mut self.lists[list];
        let row = l.keys.len();
        l.keys.push(key.clone());
        l.data.extend_from_slice(v);
        self.pos.insert(key, (list as u32, row as u32));
    }

    /// Adds (or replaces) a vector. May retrain the index (see the crate docs).
    pub fn insert(&mut self, key: K, v: &[f32]) -> Result<(), IndexError> {
        self.check(v)?;
        self.remove_quiet(&key);
        let list = self.nearest_list(v);
        self.push_into(list, key, v);
        let n = self.len();
        if (!self.is_approximate() && n > self.config.exact_max)
            || (self.is_approximate() && n >= 2 * self.trained_at.max(1))
        {
            self.rebalance();
        }
        Ok(())
    }

    fn remove_quiet(&mut self, key: &K) -> bool {
        let Some((list, row)) = self.pos.remove(key) else {
            return false;
        };
        let (list, row) = (list as usize, row as usize);
        let dim = self.dim;
        let l = &mut self.lists[list];
        let last = l.keys.len() - 1;
        l.keys.swap_remove(row);
        if row != last {
            let (head, tail) = l.data.split_at_mut(last * dim);
            head[row * dim..(row + 1) * dim].copy_from_slice(&tail[..dim]);
            if let Some(p) = self.pos.get_mut(&l.keys[row]) {
                *p = (list as u32, row as u32);
            }
        }
        l.data.truncate(last * dim);
        true
    }

    /// Removes a vector; false if the key was not there.
    pub fn remove(&mut self, key: &K) -> bool {
        let removed = self.remove_quiet(key);
        if removed && self.is_approximate() && self.len() <= self.config.exact_max / 2 {
            self.rebalance();
        }
        removed
    }

    /// The stored vector of a key.
    pub fn get(&self, key: &K) -> Option<&[f32]> {
        let &(list, row) = self.pos.get(key)?;
        let (list, row) = (list as usize, row as usize);
        self.lists[list].data.get(row * self.dim..(row + 1) * self.dim)
    }

    pub fn contains(&self, key: &K) -> bool {
        self.pos.contains_key(key)
    }

    /// Chooses exact or IVF for the current size and (re)trains the lists.
    pub fn rebalance(&mut self) {
        let n = self.len();
        let mut keys = Vec::with_capacity(n);
        let mut data = Vec::with_capacity(n * self.dim);
        for l in std::mem::take(&mut self.lists) {
            keys.extend(l.keys);
            data.extend(l.data);
        }
        self.pos.clear();
        if n <= self.config.exact_max || n < 2 {
            self.centroids.clear();
            self.lists = vec![List { keys, data }];
            for (row, k) in self.lists[0].keys.iter().enumerate() {
                self.pos.insert(k.clone(), (0, row as u32));
            }
            self.trained_at = n;
            return;
        }
        let nlist = ((n as f64).sqrt().round() as usize).clamp(2, 4096);
        self.centroids = kmeans::train(&data, self.dim, nlist, self.config.seed);
        let assignment = kmeans::assign(&self.centroids, self.dim, &data);
        let nlist = self.centroids.len() / self.dim;
        self.lists = (0..nlist).map(|_| List::default()).collect();
        for ((k, v), list) in keys.into_iter().zip(data.chunks_exact(self.dim)).zip(assignment) {
            self.push_into(list, k, v);
        }
        // Lists grew by doubling: give the slack back (up to half the vectors' memory).
        for l in &mut self.lists {
            l.keys.shrink_to_fit();
            l.data.shrink_to_fit();
        }
        self.trained_at = n;
    }

    /// The `k` most similar vectors with cosine >= `min_score`, best first: exact below the size
    /// threshold, approximate (IVF, `nprobe` lists) above it.
    pub fn search(&self, query: &[f32], k: usize, min_score: f32) -> Vec<Hit<K>> {
        if !self.is_approximate() {
            return self.search_exact(query, k, min_score);
        }
        if query.len() != self.dim {
            return Vec::new();
        }
        let nlist = self.lists.len();
        let mut order: Vec<(f32, usize)> = self
            .centroids
            .chunks_exact(self.dim)
            .enumerate()
            .map(|(i, c)| (dot(c, query), i))
            .collect();
        let nprobe = self.nprobe();
        if nprobe < nlist {
            order.select_nth_unstable_by(nprobe, |a, b| b.0.total_cmp(&a.0));
        }
        let mut top = TopK::new(k, min_score);
        for &(_, list) in order.iter().take(nprobe) {
            self.scan(list, query, &mut top);
        }
        self.finish(top)
    }

    /// The `k` most similar vectors by scanning every one.
    pub fn search_exact(&self, query: &[f32], k: usize, min_score: f32) -> Vec<Hit<K>> {
        if query.len() != self.dim {
            return Vec::new();
        }
        let mut top = TopK::new(k, min_score);
        for list in 0..self.lists.len() {
            self.scan(list, query, &mut top);
        }
        self.finish(top)
    }

    fn scan(&self, list: usize, query: &[f32], top: &mut TopK) {
        for (row, v) in self.lists[list].data.chunks_exact(self.dim).enumerate() {
            top.push(dot(v, query), list as u32, row as u32);
        }
    }

    fn finish(&self, top: TopK) -> Vec<Hit<K>> {
        let mut hits: Vec<Scored> = top.heap.into_vec();
        hits.sort_by(|a, b| b.0.total_cmp(&a.0));
        hits.into_iter()
            .map(|Scored(score, list, row)| Hit {
                key: self.lists[list as usize].keys[row as usize].clone(),
                score,
            })
            .collect()
    }

    /// Every key, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.lists.iter().flat_map(|l| l.keys.iter())
    }
}

/// Share of the exact top-`k` hits with cosine >= `min_score` that the approximate search also
/// returns, over all `queries` (`f32::MIN` for plain recall@k). A face search only cares about hits
/// above its threshold, so that is the recall that matters; plain recall@k also counts the random
/// tail of non-matches.
pub fn recall<K: Clone + Eq + Hash>(index: &Index<K>, queries: &[Vec<f32>], k: usize, min_score: f32) -> f64 {
    if queries.is_empty() || k == 0 {
        return 1.0;
    }
    let mut found = 0usize;
    let mut total = 0usize;
    for q in queries {
        let exact = index.search_exact(q, k, min_score);
        let approx = index.search(q, k, min_score);
        total += exact.len();
        found += exact
            .iter()
            .filter(|e| approx.iter().any(|a| a.key == e.key))
            .count();
    }
    if total == 0 {
        1.0
    } else {
        found as f64 / total as f64
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::synthetic::Synthetic;

    fn naive(data: &[(u32, Vec<f32>)], q: &[f32], k: usize) -> Vec<u32> {
        let mut s: Vec<(f32, u32)> = data
            .iter()
            .map(|(id, v)| (v.iter().zip(q).map(|(a, b)| a * b).sum(), *id))
            .collect();
        s.sort_by(|a, b| b.0.total_cmp(&a.0));
        s.into_iter().take(k).map(|x| x.1).collect()
    }

    #[test]
    fn dot_matches_the_plain_sum_for_every_length() {
        for n in [0, 1, 7, 15, 16, 17, 33, 128, 192, 512, 515] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - plain).abs() < 1e-4, "n={n}");
        }
    }

    #[test]
    fn exact_search_equals_a_naive_sort_and_respects_threshold_and_k() {
        let mut g = Synthetic::new(64, 50, 0.6, 1);
        let data: Vec<(u32, Vec<f32>)> = (0..500).map(|i| (i, g.sample())).collect();
        let idx = Index::build(64, IndexConfig::default(), data.clone()).unwrap();
        assert!(!idx.is_approximate());
        for _ in 0..20 {
            let q = g.sample();
            let got: Vec<u32> = idx.search(&q, 5, f32::MIN).into_iter().map(|h| h.key).collect();
            assert_eq!(got, naive(&data, &q, 5));
            let above = idx.search(&q, 500, 0.5);
            assert!(above.iter().all(|h| h.score >= 0.5));
            assert!(above.windows(2).all(|w| w[0].score >= w[1].score));
        }
    }

    #[test]
    fn inserts_deletes_and_switching_modes_keep_every_vector_findable() {
        let cfg = IndexConfig {
            exact_max: 300,
            ..Default::default()
        };
        let mut g = Synthetic::new(32, 40, 0.5, 7);
        let mut idx: Index<u32> = Index::new(32, cfg);
        let vs: Vec<Vec<f32>> = (0..1000).map(|_| g.sample()).collect();
        for (i, v) in vs.iter().enumerate() {
            idx.insert(i as u32, v).unwrap();
        }
        assert!(idx.is_approximate(), "above exact_max the index is IVF");
        assert_eq!(idx.len(), 1000);
        for i in (0..1000).step_by(2) {
            assert!(idx.remove(&(i as u32)));
        }
        assert!(!idx.remove(&0));
        assert_eq!(idx.len(), 500);
        for i in (1..1000).step_by(2) {
            assert_eq!(idx.get(&(i as u32)).unwrap(), &vs[i][..]);
            // A stored vector finds itself first, even approximately (it lives in its nearest list).
            let top = idx.search(&vs[i], 1, f32::MIN);
            assert_eq!(top[0].key, i as u32);
        }
        for i in (1..1000).step_by(2).take(400) {
            idx.remove(&(i as u32));
        }
        assert!(
            !idx.is_approximate(),
            "well below exact_max the index scans again"
        );
        assert_eq!(idx.len(), 100);
        assert_eq!(
            idx.insert(1, &[0.0; 3]),
            Err(IndexError::Dimension { expected: 32, got: 3 })
        );
        let mut nan = vs[1].clone();
        nan[0] = f32::NAN;
        assert_eq!(idx.insert(1, &nan), Err(IndexError::NotFinite));
    }

    #[test]
    fn approximate_recall_on_clustered_vectors() {
        let mut g = Synthetic::new(128, 2000, 0.8, 3);
        let items: Vec<(u32, Vec<f32>)> = (0..20_000).map(|i| (i, g.sample())).collect();
        let cfg = IndexConfig {
            exact_max: 1000,
            ..Default::default()
        };
        let idx = Index::build(128, cfg, items).unwrap();
        assert!(idx.is_approximate());
        let queries: Vec<Vec<f32>> = (0..200).map(|_| g.sample()).collect();
        let matches = recall(&idx, &queries, 10, 0.3);
        let top1 = recall(&idx, &queries, 1, f32::MIN);
        assert!(
            matches >= 0.9 && top1 >= 0.9,
            "recall of matches {matches}, recall@1 {top1}"
        );
    }
}
