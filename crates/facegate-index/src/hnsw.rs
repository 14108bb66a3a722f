//! HNSW (hierarchical navigable small world graph, Malkov & Yashunin 2016) over int8 codes, with
//! exact f32 re-ranking of the candidates.
//!
//! - Every vector is stored twice: an int8 code (symmetric, one f32 scale per vector; the dot product
//!   of two codes times both scales approximates the cosine within ~1e-3 for 512-d unit vectors) that
//!   the graph walk reads, and the exact f32 vector that re-scores the `ef` candidates a search ends
//!   with, so every returned score is the exact cosine. The f32 copies live in memory, or in a file
//!   (`HnswConfig::exact_dir`) read with positioned reads for the few candidates of a search: at a
//!   million 512-d faces the codes and graph take ~0.7 GB and the f32 copies another 2 GB, which then
//!   stay on disk (in the page cache when memory allows).
//! - Level 0 holds up to `2 * m` links per node, the levels above `m`; links are picked with the
//!   paper's heuristic (a candidate is kept when it is nearer the new node than any link already
//!   kept), and the free slots are filled with the nearest pruned ones. A neighbour whose list is full
//!   keeps its nearest links.
//! - Links are `AtomicU32` slots, so a batch build runs on every core with one small lock per node
//!   stripe while searches read without locks (a reader may see a list mid-update: every id in it is a
//!   valid node, so that costs at most a slightly worse step). No `unsafe`.
//! - Deletes are tombstones: the node still routes searches but is never returned; `rebuild` compacts
//!   (the caller decides when; `tombstones()` says how many there are).

use std::collections::{BinaryHeap, HashMap};
use std::fs::File;
use std::hash::Hash;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use crate::kmeans::Rng;
use crate::{Hit, IndexError, dot};

/// Shape of the graph and of a search.
#[derive(Debug, Clone, PartialEq)]
pub struct HnswConfig {
    /// Links per node above level 0 (level 0 holds twice as many).
    pub m: usize,
    /// Candidates considered while linking a new node.
    pub ef_construction: usize,
    /// Candidates a search keeps (at least `k`); all of them are re-ranked exactly.
    pub ef_search: usize,
    /// Threads of a batch build (0: every core).
    pub threads: usize,
    /// Where to keep the f32 copies for re-ranking: `None` in memory, or a directory for a file
    /// (removed when the index is dropped).
    pub exact_dir: Option<PathBuf>,
    /// Seed of the level draws (a build is deterministic for one thread).
    pub seed: u64,
}

impl Default for HnswConfig {
    fn default() -> Self {
        Self {
            m: 16,
            ef_construction: 128,
            ef_search: 96,
            threads: 0,
            exact_dir: None,
            seed: 0x5eed_face,
        }
    }
}

/// The int8 code of a vector and its scale: `x ~= code * scale`.
pub fn quantize(v: &[f32], out: &mut Vec<i8>) -> f32 {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
    let inv = 1.0 / scale;
    out.extend(v.iter().map(|x| (x * inv).round().clamp(-127.0, 127.0) as i8));
    scale
}

/// Dot product of two int8 codes (exact in i32), in a shape LLVM vectorises (pmaddwd on SSE2).
#[inline]
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0i32; 16];
    let ca = a.chunks_exact(16);
    let cb = b.chunks_exact(16);
    let tail: i32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(&x, &y)| i32::from(x) * i32::from(y))
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..16 {
            acc[i] += i32::from(i16::from(x[i]) * i16::from(y[i]));
        }
    }
    acc.iter().sum::<i32>() + tail
}

#[derive(Debug)]
enum Exact {
    Memory(Vec<f32>),
    Disk { file: File, path: PathBuf, rows: usize },
}

impl Exact {
    fn new(dir: Option<&Path>) -> std::io::Result<Self> {
        let Some(dir) = dir else {
            return Ok(Self::Memory(Vec::new()));
        };
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let path = dir.join(format!(
            "facegate-hnsw-{}-{}.f32",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok(Self::Disk { file, path, rows: 0 })
    }

    fn push_all(&mut self, data: &[f32]) -> std::io::Result<()> {
        match self {
            Self::Memory(v) => v.extend_from_slice(data),
            Self::Disk { file, rows, .. } => {
                let mut w = std::io::BufWriter::with_capacity(1 << 20, &*file);
                for x in data {
                    w.write_all(&x.to_le_bytes())?;
                }
                w.flush()?;
                *rows += data.len();
            }
        }
        Ok(())
    }

    /// Writes one row at `id` (ids are dense, so this appends or overwrites).
    fn put(&mut self, id: usize, dim: usize, v: &[f32]) -> std::io::Result<()> {
        match self {
            Self::Memory(data) => {
                if data.len() < (id + 1) * dim {
                    data.resize((id + 1) * dim, 0.0);
                }
                data[id * dim..(id + 1) * dim].copy_from_slice(v);
            }
            Self::Disk { file, rows, .. } => {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                file.write_all_at(&bytes, (id * dim * 4) as u64)?;
                *rows = (*rows).max((id + 1) * dim);
            }
        }
        Ok(())
    }

    fn get(&self, id: usize, dim: usize, buf: &mut Vec<f32>) -> bool {
        buf.clear();
        match self {
            Self::Memory(data) => match data.get(id * dim..(id + 1) * dim) {
                Some(row) => {
                    buf.extend_from_slice(row);
                    true
                }
                None => false,
            },
            Self::Disk { file, .. } => {
                let mut bytes = vec![0u8; dim * 4];
                if file.read_exact_at(&mut bytes, (id * dim * 4) as u64).is_err() {
                    return false;
                }
                buf.extend(
                    bytes
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                );
                true
            }
        }
    }

    fn memory_bytes(&self) -> usize {
        match self {
            Self::Memory(v) => v.capacity() * 4,
            Self::Disk { .. } => 0,
        }
    }
}

impl Drop for Exact {
    fn drop(&mut self) {
        if let Self::Disk { path, .. } = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A visited set that clears in O(1): a mark equals the current generation.
#[derive(Debug, Default)]
struct Visited {
    marks: Vec<u32>,
    generation: u32,
}

impl Visited {
    fn reset(&mut self, n: usize) {
        if self.marks.len() < n {
            self.marks.resize(n, 0);
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.marks.iter_mut().for_each(|m| *m = 0);
            self.generation = 1;
        }
    }

    /// True the first time `id` is seen since the last reset.
    #[inline]
    fn insert(&mut self, id: u32) -> bool {
        let m = &mut self.marks[id as usize];
        if *m == self.generation {
            false
        } else {
            *m = self.generation;
            true
        }
    }
}

/// A similarity and a node, ordered by similarity (ties by id, for determinism).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Near(f32, u32);
impl Eq for Near {}
impl PartialOrd for Near {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Near {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&o.0).then_with(|| o.1.cmp(&self.1))
    }
}

const NO_UPPER: u32 = u32::MAX;
const STRIPES: usize = 4096;

/// The HNSW index. `K` is the caller's key (a face id).
#[derive(Debug)]
pub struct Hnsw<K> {
    dim: usize,
    config: HnswConfig,
    codes: Vec<i8>,
    scales: Vec<f32>,
    exact: Exact,
    levels: Vec<u8>,
    /// `n * (2m + 1)` slots: a count, then the links.
    level0: Vec<AtomicU32>,
    /// Per node the offset of its upper levels in `upper` (`NO_UPPER` for level-0 nodes).
    upper_at: Vec<u32>,
    /// For a node of level L: L blocks of `m + 1` slots (count, links) for levels 1..=L.
    upper: Vec<AtomicU32>,
    /// Entry node and the top level (`None` when empty).
    entry: Mutex<Option<(u32, u8)>>,
    keys: Vec<K>,
    pos: HashMap<K, u32>,
    deleted: Vec<bool>,
    tombstones: usize,
    locks: Vec<Mutex<()>>,
    visited: Mutex<Vec<Visited>>,
    rng: Rng,
}

impl std::fmt::Debug for Rng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rng")
    }
}

impl<K: Clone + Eq + Hash + Send + Sync> Hnsw<K> {
    /// An empty index. Fails only when the re-ranking file cannot be created.
    pub fn new(dim: usize, config: HnswConfig) -> std::io::Result<Self> {
        let exact = Exact::new(config.exact_dir.as_deref())?;
        let rng = Rng::new(config.seed | 1);
        Ok(Self {
            dim,
            config: HnswConfig {
                m: config.m.clamp(2, 128),
                ef_construction: config.ef_construction.max(8),
                ef_search: config.ef_search.max(1),
                ..config
            },
            codes: Vec::new(),
            scales: Vec::new(),
            exact,
            levels: Vec::new(),
            level0: Vec::new(),
            upper_at: Vec::new(),
            upper: Vec::new(),
            entry: Mutex::new(None),
            keys: Vec::new(),
            pos: HashMap::new(),
            deleted: Vec::new(),
            tombstones: 0,
            locks: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            visited: Mutex::new(Vec::new()),
            rng,
        })
    }

    /// Builds an index from many vectors at once, linking them on `config.threads` threads. A key
    /// given twice keeps its last vector.
    pub fn build(
        dim: usize,
        config: HnswConfig,
        items: impl IntoIterator<Item = (K, Vec<f32>)>,
    ) -> Result<Self, HnswError> {
        let mut index = Self::new(dim, config)?;
        let mut data = Vec::new();
        let mut keys: Vec<K> = Vec::new();
        let mut at: HashMap<K, usize> = HashMap::new();
        for (k, v) in items {
            index.check(&v)?;
            if let Some(&i) = at.get(&k) {
                data[i * dim..(i + 1) * dim].copy_from_slice(&v);
            } else {
                at.insert(k.clone(), keys.len());
                keys.push(k);
                data.extend_from_slice(&v);
            }
        }
        drop(at);
        index.build_from(keys, &data)?;
        Ok(index)
    }

    fn build_from(&mut self, keys: Vec<K>, data: &[f32]) -> Result<(), HnswError> {
        let n = keys.len();
        let first = self.keys.len();
        for (i, (k, v)) in keys.into_iter().zip(data.chunks_exact(self.dim)).enumerate() {
            self.alloc(k, v, first + i);
        }
        self.exact.push_all(data)?;
        let threads = if self.config.threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            self.config.threads
        }
        .clamp(1, n.max(1));
        let next = AtomicUsize::new(first);
        let end = first + n;
        let this = &*self;
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    let mut scratch = Scratch::default();
                    loop {
                        let id = next.fetch_add(1, Ordering::Relaxed);
                        if id >= end {
                            break;
                        }
                        this.link(id as u32, &mut scratch);
                    }
                });
            }
        });
        Ok(())
    }

    /// Appends a node's code, level and empty link slots (not yet linked).
    fn alloc(&mut self, key: K, v: &[f32], id: usize) {
        self.scales.push(quantize(v, &mut self.codes));
        let ml = 1.0 / (self.config.m as f64).ln();
        let level = ((-self.rng.unit().max(1e-12).ln() * ml) as usize).min(15);
        self.levels.push(level as u8);
        let m0 = 2 * self.config.m;
        self.level0.extend((0..=m0).map(|_| AtomicU32::new(0)));
        if level > 0 {
            self.upper_at.push(self.upper.len() as u32);
            self.upper
                .extend((0..level * (self.config.m + 1)).map(|_| AtomicU32::new(0)));
        } else {
            self.upper_at.push(NO_UPPER);
        }
        self.deleted.push(false);
        self.pos.insert(key.clone(), id as u32);
        self.keys.push(key);
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Live vectors (tombstones not counted).
    pub fn len(&self) -> usize {
        self.pos.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pos.is_empty()
    }

    /// Deleted nodes still in the graph; `rebuild` drops them.
    pub fn tombstones(&self) -> usize {
        self.tombstones
    }

    pub fn config(&self) -> &HnswConfig {
        &self.config
    }

    /// Changes how many candidates a search keeps.
    pub fn set_ef_search(&mut self, ef: usize) {
        self.config.ef_search = ef.max(1);
    }

    pub fn contains(&self, key: &K) -> bool {
        self.pos.contains_key(key)
    }

    /// Every live key, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.pos.keys()
    }

    /// The exact stored vector of a key.
    pub fn get(&self, key: &K) -> Option<Vec<f32>> {
        let &id = self.pos.get(key)?;
        let mut buf = Vec::with_capacity(self.dim);
        self.exact.get(id as usize, self.dim, &mut buf).then_some(buf)
    }

    /// Bytes held in memory: codes, scales, links, keys and the key map, and the f32 copies when they
    /// are kept in memory (not the file).
    pub fn memory_bytes(&self) -> usize {
        let k = std::mem::size_of::<K>();
        self.codes.capacity()
            + self.scales.capacity() * 4
            + self.levels.capacity()
            + self.deleted.capacity()
            + (self.level0.capacity() + self.upper.capacity() + self.upper_at.capacity()) * 4
            + self.keys.capacity() * k
            + self.pos.capacity() * (k + 4 + 1)
            + self.exact.memory_bytes()
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

    /// Adds (or replaces: the old vector becomes a tombstone) one vector.
    pub fn insert(&mut self, key: K, v: &[f32]) -> Result<(), HnswError> {
        self.check(v)?;
        self.remove(&key);
        let id = self.keys.len();
        if id >= u32::MAX as usize - 1 {
            return Err(HnswError::Full);
        }
        self.exact.put(id, self.dim, v)?;
        self.alloc(key, v, id);
        let mut scratch = Scratch::default();
        self.link(id as u32, &mut scratch);
        Ok(())
    }

    /// Removes a vector (a tombstone until `rebuild`); false if the key was not there.
    pub fn remove(&mut self, key: &K) -> bool {
        let Some(id) = self.pos.remove(key) else {
            return false;
        };
        self.deleted[id as usize] = true;
        self.tombstones += 1;
        true
    }

    /// A new index of the live vectors only (same configuration), built on every core.
    pub fn rebuild(&self) -> Result<Self, HnswError> {
        let mut keys = Vec::with_capacity(self.len());
        let mut data = Vec::with_capacity(self.len() * self.dim);
        let mut buf = Vec::with_capacity(self.dim);
        for (id, k) in self.keys.iter().enumerate() {
            if self.deleted[id] {
                continue;
            }
            if !self.exact.get(id, self.dim, &mut buf) {
                return Err(HnswError::Io(std::io::Error::other("re-ranking file is short")));
            }
            keys.push(k.clone());
            data.extend_from_slice(&buf);
        }
        let mut index = Self::new(self.dim, self.config.clone())?;
        index.build_from(keys, &data)?;
        Ok(index)
    }

    #[inline]
    fn code(&self, id: u32) -> &[i8] {
        let i = id as usize * self.dim;
        &self.codes[i..i + self.dim]
    }

    #[inline]
    fn sim(&self, q: &[i8], q_scale: f32, id: u32) -> f32 {
        dot_i8(q, self.code(id)) as f32 * q_scale * self.scales[id as usize]
    }

    fn slots(&self, id: u32, level: usize) -> &[AtomicU32] {
        if level == 0 {
            let w = 2 * self.config.m + 1;
            &self.level0[id as usize * w..(id as usize + 1) * w]
        } else {
            let w = self.config.m + 1;
            let at = self.upper_at[id as usize] as usize + (level - 1) * w;
            &self.upper[at..at + w]
        }
    }

    fn neighbours(&self, id: u32, level: usize, out: &mut Vec<u32>) {
        out.clear();
        let s = self.slots(id, level);
        let n = (s[0].load(Ordering::Acquire) as usize).min(s.len() - 1);
        out.extend(s[1..=n].iter().map(|a| a.load(Ordering::Relaxed)));
    }

    fn set_neighbours(&self, id: u32, level: usize, links: &[u32]) {
        let s = self.slots(id, level);
        let n = links.len().min(s.len() - 1);
        for (slot, &l) in s[1..=n].iter().zip(links) {
            slot.store(l, Ordering::Relaxed);
        }
        s[0].store(n as u32, Ordering::Release);
    }

    fn greedy(&self, q: &[i8], qs: f32, mut cur: Near, level: usize, scratch: &mut Scratch) -> Near {
        loop {
            let mut moved = false;
            self.neighbours(cur.1, level, &mut scratch.links);
            for &n in &scratch.links {
                let s = self.sim(q, qs, n);
                if s > cur.0 {
                    cur = Near(s, n);
                    moved = true;
                }
            }
            if !moved {
                return cur;
            }
        }
    }

    /// Beam search of one level from `start`; the best `ef` nodes, best first. With `live_only`,
    /// tombstones route the walk but are not returned.
    fn search_level(
        &self,
        (q, qs): (&[i8], f32),
        (start, ef, level): (Near, usize, usize),
        live_only: bool,
        scratch: &mut Scratch,
        visited: &mut Visited,
    ) -> Vec<Near> {
        visited.reset(self.keys.len());
        let mut candidates: BinaryHeap<Near> = BinaryHeap::with_capacity(ef * 2);
        let mut results: BinaryHeap<std::cmp::Reverse<Near>> = BinaryHeap::with_capacity(ef + 1);
        visited.insert(start.1);
        candidates.push(start);
        if !(live_only && self.deleted[start.1 as usize]) {
            results.push(std::cmp::Reverse(start));
        }
        while let Some(c) = candidates.pop() {
            if results.len() >= ef && results.peek().is_some_and(|w| c.0 < w.0.0) {
                break;
            }
            self.neighbours(c.1, level, &mut scratch.links);
            for &n in &scratch.links {
                if !visited.insert(n) {
                    continue;
                }
                let s = self.sim(q, qs, n);
                if results.len() < ef || results.peek().is_some_and(|w| s > w.0.0) {
                    candidates.push(Near(s, n));
                    if !(live_only && self.deleted[n as usize]) {
                        results.push(std::cmp::Reverse(Near(s, n)));
                        if results.len() > ef {
                            results.pop();
                        }
                    }
                }
            }
        }
        let mut out: Vec<Near> = results.into_iter().map(|r| r.0).collect();
        out.sort_by(|a, b| b.cmp(a));
        out
    }

    /// The paper's neighbour heuristic, the free slots filled with the nearest pruned candidates.
    fn select(&self, candidates: &[Near], m: usize) -> Vec<u32> {
        let mut kept: Vec<u32> = Vec::with_capacity(m);
        let mut pruned: Vec<u32> = Vec::new();
        for c in candidates {
            if kept.len() >= m {
                break;
            }
            let cc = self.code(c.1);
            let cs = self.scales[c.1 as usize];
            let diverse = kept.iter().all(|&k| self.sim(cc, cs, k) < c.0);
            if diverse {
                kept.push(c.1);
            } else {
                pruned.push(c.1);
            }
        }
        for p in pruned {
            if kept.len() >= m {
                break;
            }
            kept.push(p);
        }
        kept
    }

    fn lock(&self, id: u32) -> std::sync::MutexGuard<'_, ()> {
        let m = &self.locks[id as usize % STRIPES];
        m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn take_visited(&self) -> Visited {
        self.visited
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop()
            .unwrap_or_default()
    }

    fn give_visited(&self, v: Visited) {
        self.visited
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(v);
    }

    /// Links an allocated node into the graph (safe to call from several threads at once).
    fn link(&self, id: u32, scratch: &mut Scratch) {
        let level = self.levels[id as usize] as usize;
        let mut entry = self
            .entry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some((ep, top)) = *entry else {
            *entry = Some((id, level as u8));
            return;
        };
        let top = top as usize;
        // Only a node that raises the top level holds the entry lock while it links (rare).
        let held = if level > top {
            Some(entry)
        } else {
            drop(entry);
            None
        };
        let q = self.code(id).to_vec();
        let qs = self.scales[id as usize];
        let mut cur = Near(self.sim(&q, qs, ep), ep);
        for l in (level + 1..=top).rev() {
            cur = self.greedy(&q, qs, cur, l, scratch);
        }
        let mut visited = self.take_visited();
        let mut chosen = Vec::with_capacity(level.min(top) + 1);
        for l in (0..=level.min(top)).rev() {
            let found = self.search_level(
                (&q, qs),
                (cur, self.config.ef_construction, l),
                false,
                scratch,
                &mut visited,
            );
            let cap = if l == 0 { 2 * self.config.m } else { self.config.m };
            chosen.push((l, cap, self.select(&found, cap)));
            if let Some(&best) = found.first() {
                cur = best;
            }
        }
        self.give_visited(visited);
        // Every level's own links first, the links back to it after: the node becomes reachable
        // only once all its lists are set, so a concurrent insert never starts from an empty list
        // nor has its link back overwritten.
        {
            let _g = self.lock(id);
            for (l, _, links) in &chosen {
                self.set_neighbours(id, *l, links);
            }
        }
        for (l, cap, links) in &chosen {
            for &n in links {
                self.add_link(n, id, *l, *cap, scratch);
            }
        }
        if let Some(mut e) = held {
            *e = Some((id, level as u8));
        }
    }

    /// Adds `new` to `node`'s links at `level`; a full list keeps its `cap` nearest.
    fn add_link(&self, node: u32, new: u32, level: usize, cap: usize, scratch: &mut Scratch) {
        if node == new {
            return;
        }
        let _g = self.lock(node);
        self.neighbours(node, level, &mut scratch.links);
        if scratch.links.contains(&new) {
            return;
        }
        if scratch.links.len() < cap {
            scratch.links.push(new);
            let links = std::mem::take(&mut scratch.links);
            self.set_neighbours(node, level, &links);
            scratch.links = links;
            return;
        }
        let nc = self.code(node);
        let ns = self.scales[node as usize];
        let mut all: Vec<Near> = scratch
            .links
            .iter()
            .chain(std::iter::once(&new))
            .map(|&l| Near(self.sim(nc, ns, l), l))
            .collect();
        all.sort_by(|a, b| b.cmp(a));
        all.truncate(cap);
        let links: Vec<u32> = all.iter().map(|n| n.1).collect();
        self.set_neighbours(node, level, &links);
    }

    /// The `k` most similar live vectors with exact cosine >= `min_score`, best first: a graph walk
    /// over the int8 codes keeps `max(ef_search, k)` candidates, which are re-scored with the exact
    /// f32 vectors. A query of the wrong length or with NaN finds nothing.
    pub fn search(&self, query: &[f32], k: usize, min_score: f32) -> Vec<Hit<K>> {
        self.search_ef(query, k, min_score, self.config.ef_search)
    }

    /// `search` with an explicit candidate count.
    pub fn search_ef(&self, query: &[f32], k: usize, min_score: f32, ef: usize) -> Vec<Hit<K>> {
        if k == 0 || self.check(query).is_err() || self.pos.is_empty() {
            return Vec::new();
        }
        let Some((ep, top)) = *self
            .entry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        else {
            return Vec::new();
        };
        let mut q = Vec::with_capacity(self.dim);
        let qs = quantize(query, &mut q);
        let mut scratch = Scratch::default();
        let mut cur = Near(self.sim(&q, qs, ep), ep);
        for l in (1..=top as usize).rev() {
            cur = self.greedy(&q, qs, cur, l, &mut scratch);
        }
        let mut visited = self.take_visited();
        let found = self.search_level((&q, qs), (cur, ef.max(k), 0), true, &mut scratch, &mut visited);
        self.give_visited(visited);
        let mut buf = Vec::with_capacity(self.dim);
        let mut hits: Vec<(f32, u32)> = Vec::with_capacity(found.len());
        for c in &found {
            if self.exact.get(c.1 as usize, self.dim, &mut buf) {
                let score = dot(&buf, query);
                if score >= min_score {
                    hits.push((score, c.1));
                }
            }
        }
        hits.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        hits.truncate(k);
        hits.into_iter()
            .map(|(score, id)| Hit {
                key: self.keys[id as usize].clone(),
                score,
            })
            .collect()
    }
}

#[derive(Debug, Default)]
struct Scratch {
    links: Vec<u32>,
}

/// Why building or changing an HNSW index failed.
#[derive(Debug)]
pub enum HnswError {
    Vector(IndexError),
    /// The re-ranking file could not be written or read.
    Io(std::io::Error),
    /// More than 2^32 - 2 nodes.
    Full,
}

impl std::fmt::Display for HnswError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Vector(e) => e.fmt(f),
            Self::Io(e) => write!(f, "re-ranking file: {e}"),
            Self::Full => f.write_str("the index is full (2^32 nodes)"),
        }
    }
}

impl std::error::Error for HnswError {}

impl From<IndexError> for HnswError {
    fn from(e: IndexError) -> Self {
        Self::Vector(e)
    }
}

impl From<std::io::Error> for HnswError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::synthetic::Synthetic;
    use crate::{Index, IndexConfig};

    #[test]
    fn int8_dot_is_exact_and_the_code_close() {
        for n in [0usize, 1, 15, 16, 17, 512, 515] {
            let a: Vec<i8> = (0..n).map(|i| ((i * 37) % 255) as i8).collect();
            let b: Vec<i8> = (0..n).map(|i| ((i * 11 + 5) % 255) as i8).collect();
            let plain: i32 = a.iter().zip(&b).map(|(&x, &y)| x as i32 * y as i32).sum();
            assert_eq!(dot_i8(&a, &b), plain, "n={n}");
        }
        let mut g = Synthetic::new(512, 10, 0.8, 2);
        let (x, y) = (g.sample(), g.sample());
        let (mut cx, mut cy) = (Vec::new(), Vec::new());
        let (sx, sy) = (quantize(&x, &mut cx), quantize(&y, &mut cy));
        let approx = dot_i8(&cx, &cy) as f32 * sx * sy;
        assert!((approx - dot(&x, &y)).abs() < 3e-3, "{approx} vs {}", dot(&x, &y));
    }

    fn exact_top(items: &[(u32, Vec<f32>)], q: &[f32], k: usize, min: f32) -> Vec<u32> {
        let idx = Index::build(
            q.len(),
            IndexConfig {
                exact_max: usize::MAX,
                ..Default::default()
            },
            items.iter().cloned(),
        )
        .unwrap();
        idx.search_exact(q, k, min).into_iter().map(|h| h.key).collect()
    }

    #[test]
    fn finds_the_exact_matches_with_exact_scores_on_disk_and_in_memory() {
        let mut g = Synthetic::new(128, 500, 0.8, 5);
        let items: Vec<(u32, Vec<f32>)> = (0..5000).map(|i| (i, g.sample_of(i as usize))).collect();
        let dir = std::env::temp_dir();
        for exact_dir in [None, Some(dir.clone())] {
            let cfg = HnswConfig {
                exact_dir,
                threads: 2,
                ..Default::default()
            };
            let idx = Hnsw::build(128, cfg, items.clone()).unwrap();
            assert_eq!(idx.len(), 5000);
            let (mut found, mut total) = (0, 0);
            for i in 0..100 {
                let q = g.sample_of(i * 7);
                let want = exact_top(&items, &q, 10, 0.3);
                let got = idx.search(&q, 10, 0.3);
                for h in &got {
                    // Scores are exact, not the int8 estimate.
                    let v = &items[h.key as usize].1;
                    assert!((h.score - dot(v, &q)).abs() < 1e-5);
                    assert!(h.score >= 0.3);
                }
                total += want.len();
                found += want.iter().filter(|w| got.iter().any(|h| h.key == **w)).count();
            }
            assert!(total > 300, "the queries have matches ({total})");
            let recall = found as f64 / total as f64;
            assert!(recall >= 0.99, "recall of matches {recall}");
        }
    }

    #[test]
    fn deletes_replacements_and_rebuild() {
        let mut g = Synthetic::new(64, 300, 0.7, 9);
        let vs: Vec<Vec<f32>> = (0..3000).map(|i| g.sample_of(i)).collect();
        let mut idx: Hnsw<u32> = Hnsw::new(64, HnswConfig::default()).unwrap();
        for (i, v) in vs.iter().enumerate() {
            idx.insert(i as u32, v).unwrap();
        }
        assert_eq!(idx.len(), 3000);
        for i in (0..3000).step_by(2) {
            assert!(idx.remove(&(i as u32)));
        }
        assert!(!idx.remove(&0));
        assert_eq!((idx.len(), idx.tombstones()), (1500, 1500));
        for i in 0..3000u32 {
            let top = idx.search(&vs[i as usize], 1, f32::MIN);
            if i % 2 == 0 {
                assert!(
                    top.iter().all(|h| h.key % 2 == 1),
                    "a deleted face is never returned"
                );
            } else {
                assert_eq!(top[0].key, i, "a stored vector finds itself");
            }
        }
        // Replacing a key: the old vector is gone, the new one found.
        idx.insert(1, &vs[2]).unwrap();
        assert_eq!(idx.get(&1).unwrap(), vs[2]);
        assert_eq!(idx.search(&vs[2], 1, f32::MIN)[0].key, 1);
        let rebuilt = idx.rebuild().unwrap();
        assert_eq!((rebuilt.len(), rebuilt.tombstones()), (1500, 0));
        for i in (3..3000u32).step_by(2) {
            assert_eq!(rebuilt.search(&vs[i as usize], 1, f32::MIN)[0].key, i);
        }
        assert!(matches!(
            idx.insert(7, &[0.0; 3]),
            Err(HnswError::Vector(IndexError::Dimension { expected: 64, got: 3 }))
        ));
        assert!(idx.search(&[f32::NAN; 64], 3, f32::MIN).is_empty());
        assert!(idx.search(&[0.0; 3], 3, f32::MIN).is_empty());
    }
}
