//! A face gallery for 1:N login: templates (`T`, e.g. a template id) that belong to owners (`O`, e.g.
//! a user id), searched with HNSW and answered per owner. Build it from the store at start, then keep
//! it current with `insert` / `remove` / `remove_owner` after each committed write; the store stays
//! the truth.

use std::collections::HashMap;
use std::hash::Hash;

use crate::hnsw::{Hnsw, HnswConfig, HnswError};

/// The best template of one owner for a query.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnerHit<O, T> {
    pub owner: O,
    pub template: T,
    pub score: f32,
}

#[derive(Debug)]
pub struct Gallery<O, T> {
    index: Hnsw<T>,
    owner_of: HashMap<T, O>,
    templates_of: HashMap<O, Vec<T>>,
}

impl<O, T> Gallery<O, T>
where
    O: Clone + Eq + Hash,
    T: Clone + Eq + Hash + Send + Sync,
{
    pub fn new(dim: usize, config: HnswConfig) -> Result<Self, HnswError> {
        Ok(Self {
            index: Hnsw::new(dim, config)?,
            owner_of: HashMap::new(),
            templates_of: HashMap::new(),
        })
    }

    /// Builds the gallery from `(owner, template, embedding)` rows on every core.
    pub fn build(
        dim: usize,
        config: HnswConfig,
        rows: impl IntoIterator<Item = (O, T, Vec<f32>)>,
    ) -> Result<Self, HnswError> {
        let mut owner_of = HashMap::new();
        let mut templates_of: HashMap<O, Vec<T>> = HashMap::new();
        let mut items = Vec::new();
        for (o, t, v) in rows {
            if let Some(old) = owner_of.insert(t.clone(), o.clone())
                && let Some(list) = templates_of.get_mut(&old)
            {
                list.retain(|x| x != &t);
            }
            templates_of.entry(o).or_default().push(t.clone());
            items.push((t, v));
        }
        Ok(Self {
            index: Hnsw::build(dim, config, items)?,
            owner_of,
            templates_of,
        })
    }

    /// Templates in the gallery.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Owners with at least one template (the gallery size a 1:N threshold depends on).
    pub fn owners(&self) -> usize {
        self.templates_of.len()
    }

    /// The graph underneath (tombstones, rebuild, memory, ef).
    pub fn index(&self) -> &Hnsw<T> {
        &self.index
    }

    /// Adds (or moves, or replaces) a template.
    pub fn insert(&mut self, owner: O, template: T, v: &[f32]) -> Result<(), HnswError> {
        self.index.insert(template.clone(), v)?;
        if let Some(old) = self.owner_of.insert(template.clone(), owner.clone()) {
            self.unlink(&old, &template);
        }
        self.templates_of.entry(owner).or_default().push(template);
        Ok(())
    }

    fn unlink(&mut self, owner: &O, template: &T) {
        if let Some(list) = self.templates_of.get_mut(owner) {
            list.retain(|x| x != template);
            if list.is_empty() {
                self.templates_of.remove(owner);
            }
        }
    }

    /// Removes one template; false if it was not there.
    pub fn remove(&mut self, template: &T) -> bool {
        let Some(owner) = self.owner_of.remove(template) else {
            return false;
        };
        self.unlink(&owner, template);
        self.index.remove(template)
    }

    /// Removes every template of an owner (an account deleted, faces reset); how many were removed.
    pub fn remove_owner(&mut self, owner: &O) -> usize {
        let templates = self.templates_of.remove(owner).unwrap_or_default();
        for t in &templates {
            self.owner_of.remove(t);
            self.index.remove(t);
        }
        templates.len()
    }

    /// The best `max_owners` owners (each by its best template) with exact cosine >= `min_score`,
    /// best first.
    pub fn search(&self, query: &[f32], max_owners: usize, min_score: f32) -> Vec<OwnerHit<O, T>> {
        // Several templates per owner: ask for a few more hits than owners.
        let hits = self
            .index
            .search(query, max_owners.saturating_mul(4).max(8), min_score);
        let mut out: Vec<OwnerHit<O, T>> = Vec::new();
        for h in hits {
            let Some(owner) = self.owner_of.get(&h.key) else {
                continue;
            };
            if out.iter().any(|o| &o.owner == owner) {
                continue; // hits come best first: this owner's best is already in
            }
            out.push(OwnerHit {
                owner: owner.clone(),
                template: h.key,
                score: h.score,
            });
            if out.len() >= max_owners {
                break;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::synthetic::Synthetic;

    #[test]
    fn searches_per_owner_and_forgets_removed_templates_and_owners() {
        let mut g = Synthetic::new(64, 200, 0.6, 4);
        // 200 people, 3 templates each: template t of person p is (p, t).
        let rows: Vec<(u32, (u32, u32), Vec<f32>)> = (0..200u32)
            .flat_map(|p| (0..3u32).map(move |t| (p, t)))
            .map(|(p, t)| (p, (p, t), g.sample_of(p as usize)))
            .collect();
        let mut gallery = Gallery::build(64, HnswConfig::default(), rows).unwrap();
        assert_eq!((gallery.len(), gallery.owners()), (600, 200));
        let q = g.sample_of(7);
        let hits = gallery.search(&q, 3, 0.3);
        assert_eq!(hits[0].owner, 7);
        assert_eq!(
            hits.iter().filter(|h| h.owner == 7).count(),
            1,
            "one hit per owner"
        );
        assert!(gallery.remove(&hits[0].template));
        assert_eq!(gallery.search(&q, 1, 0.3)[0].owner, 7, "two templates left");
        assert_eq!(gallery.remove_owner(&7), 2);
        assert!(gallery.search(&q, 5, 0.3).iter().all(|h| h.owner != 7));
        assert_eq!(gallery.owners(), 199);
        // A template moved to another owner answers for the new one.
        let v = g.sample_of(7);
        gallery.insert(9, (7, 0), &v).unwrap();
        assert_eq!(gallery.search(&v, 1, 0.3)[0].owner, 9);
        assert_eq!(gallery.remove_owner(&9), 4);
    }
}
