//! The face API's tables: collections, indexed faces (embeddings, never images), the record of files
//! a folder import has done (so a re-run skips them), and per-client monthly request counters.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::sync::CollectionChange;
use crate::{Result, Store, StoreError, conflict_or};

pub use facegate_core::face_api::{ApiCollection, ApiFace};

fn collection(r: &AnyRow) -> Result<ApiCollection> {
    Ok(ApiCollection {
        id: r.try_get("id")?,
        pack: r.try_get("pack")?,
        created_at: r.try_get("created_at")?,
        face_count: r.try_get("face_count")?,
    })
}

fn json(r: &AnyRow, col: &str) -> Result<serde_json::Value> {
    let s: String = r.try_get(col)?;
    serde_json::from_str(&s).map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
}

fn face(s: &Store, r: &AnyRow) -> Result<ApiFace> {
    let id: String = r.try_get("id")?;
    let bytes = s.open_value(&format!("api_faces:{id}"), r.try_get("embedding")?)?;
    Ok(ApiFace {
        id,
        collection_id: r.try_get("collection_id")?,
        external_id: r.try_get("external_id")?,
        pack: r.try_get("pack")?,
        embedding: facegate_core::face::from_bytes(&bytes)
            .ok_or_else(|| StoreError::Corrupt("embedding length".into()))?,
        bbox: json(r, "bbox")?,
        quality: json(r, "quality")?,
        created_at: r.try_get("created_at")?,
    })
}

const COLLECTION: &str = "SELECT c.id, c.pack, c.created_at, (SELECT COUNT(*) FROM api_faces f WHERE f.collection_id = c.id) AS face_count FROM api_collections c";

impl Store {
    pub async fn create_collection(&self, id: &str, pack: &str, now: i64) -> Result<()> {
        sqlx::query("INSERT INTO api_collections (id, pack, created_at) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(pack)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(|e| conflict_or(e, "collection"))?;
        self.notify(&self.pool, &CollectionChange::Created(id.to_string()))
            .await?;
        Ok(())
    }

    pub async fn collection(&self, id: &str) -> Result<Option<ApiCollection>> {
        let sql = format!("{COLLECTION} WHERE c.id = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(collection)
            .transpose()
    }

    /// Every collection, by id.
    pub async fn collections(&self) -> Result<Vec<ApiCollection>> {
        let sql = format!("{COLLECTION} ORDER BY c.id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(collection).collect()
    }

    /// Deletes a collection with its faces and import records.
    pub async fn delete_collection(&self, id: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query("DELETE FROM api_collections WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        self.notify(&mut *tx, &CollectionChange::Dropped(id.to_string()))
            .await?;
        tx.commit().await?;
        Ok(r.rows_affected() > 0)
    }

    /// Stores faces in one transaction (all or none).
    pub async fn add_api_faces(&self, faces: &[ApiFace]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for f in faces {
            sqlx::query("INSERT INTO api_faces (id, collection_id, external_id, pack, dim, embedding, bbox, quality, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
                .bind(&f.id)
                .bind(&f.collection_id)
                .bind(&f.external_id)
                .bind(&f.pack)
                .bind(f.embedding.len() as i64)
                .bind(self.seal(&format!("api_faces:{}", f.id), &facegate_core::face::to_bytes(&f.embedding))?)
                .bind(f.bbox.to_string())
                .bind(f.quality.to_string())
                .bind(f.created_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| conflict_or(e, "face"))?;
        }
        self.notify(&mut *tx, &added(faces)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Up to `limit` faces of a collection with ids after `after`, by id (keyset paging).
    pub async fn api_faces_page(&self, collection_id: &str, after: &str, limit: i64) -> Result<Vec<ApiFace>> {
        let rows =
            sqlx::query("SELECT * FROM api_faces WHERE collection_id = $1 AND id > $2 ORDER BY id LIMIT $3")
                .bind(collection_id)
                .bind(after)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(|r| face(self, r)).collect()
    }

    /// Every face of one collection (to rebuild its search index).
    pub async fn api_faces_in(&self, collection_id: &str) -> Result<Vec<ApiFace>> {
        let rows = sqlx::query("SELECT * FROM api_faces WHERE collection_id = $1 ORDER BY id")
            .bind(collection_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| face(self, r)).collect()
    }

    /// Every face of every collection (to build the search indexes at start).
    pub async fn all_api_faces(&self) -> Result<Vec<ApiFace>> {
        let rows = sqlx::query("SELECT * FROM api_faces ORDER BY collection_id, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| face(self, r)).collect()
    }

    pub async fn api_face(&self, collection_id: &str, id: &str) -> Result<Option<ApiFace>> {
        sqlx::query("SELECT * FROM api_faces WHERE collection_id = $1 AND id = $2")
            .bind(collection_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(|r| face(self, r))
            .transpose()
    }

    /// Deletes the given faces of a collection; returns the ids that existed.
    pub async fn delete_api_faces(&self, collection_id: &str, ids: &[String]) -> Result<Vec<String>> {
        let mut tx = self.pool.begin().await?;
        let mut deleted = Vec::new();
        for id in ids {
            let r = sqlx::query("DELETE FROM api_faces WHERE collection_id = $1 AND id = $2")
                .bind(collection_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if r.rows_affected() > 0 {
                deleted.push(id.clone());
            }
        }
        let change = CollectionChange::Deleted {
            collection: collection_id.to_string(),
            ids: deleted.clone(),
        };
        self.notify(&mut *tx, &change).await?;
        tx.commit().await?;
        Ok(deleted)
    }

    /// Whether a folder import already handled the file with this sha256 for this collection.
    pub async fn import_done(&self, collection_id: &str, sha256: &str) -> Result<bool> {
        Ok(
            sqlx::query("SELECT 1 FROM api_imports WHERE collection_id = $1 AND sha256 = $2")
                .bind(collection_id)
                .bind(sha256)
                .fetch_optional(&self.pool)
                .await?
                .is_some(),
        )
    }

    /// Stores faces and records the imported file in one transaction, so an interrupted import
    /// never indexes a file twice nor marks a file done without its faces.
    pub async fn add_imported_faces(
        &self,
        faces: &[ApiFace],
        collection_id: &str,
        sha256: &str,
        external_id: &str,
        now: i64,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for f in faces {
            sqlx::query("INSERT INTO api_faces (id, collection_id, external_id, pack, dim, embedding, bbox, quality, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
                .bind(&f.id)
                .bind(&f.collection_id)
                .bind(&f.external_id)
                .bind(&f.pack)
                .bind(f.embedding.len() as i64)
                .bind(self.seal(&format!("api_faces:{}", f.id), &facegate_core::face::to_bytes(&f.embedding))?)
                .bind(f.bbox.to_string())
                .bind(f.quality.to_string())
                .bind(f.created_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| conflict_or(e, "face"))?;
        }
        sqlx::query("INSERT INTO api_imports (collection_id, sha256, external_id, faces, imported_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(collection_id)
            .bind(sha256)
            .bind(external_id)
            .bind(faces.len() as i64)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict_or(e, "import"))?;
        self.notify(&mut *tx, &added(faces)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Counts one request of `client_id` in `month` (e.g. "2026-11") unless it already made `quota`
    /// (0: no quota). Returns the new count, or `None` when the quota is exhausted.
    pub async fn count_request(&self, client_id: &str, month: &str, quota: i64) -> Result<Option<i64>> {
        let limit = if quota <= 0 { i64::MAX } else { quota };
        let row = sqlx::query("INSERT INTO api_usage (client_id, month, requests) VALUES ($1, $2, 1) ON CONFLICT (client_id, month) DO UPDATE SET requests = api_usage.requests + 1 WHERE api_usage.requests < $3 RETURNING requests")
            .bind(client_id)
            .bind(month)
            .bind(limit)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| r.try_get::<i64, _>("requests"))
            .transpose()
            .map_err(Into::into)
    }

    /// Requests counted for a client in a month.
    pub async fn requests_in(&self, client_id: &str, month: &str) -> Result<i64> {
        Ok(
            sqlx::query("SELECT requests FROM api_usage WHERE client_id = $1 AND month = $2")
                .bind(client_id)
                .bind(month)
                .fetch_optional(&self.pool)
                .await?
                .map(|r| r.try_get::<i64, _>("requests"))
                .transpose()?
                .unwrap_or(0),
        )
    }
}

/// The change that adding `faces` (of one collection) makes.
fn added(faces: &[ApiFace]) -> CollectionChange {
    CollectionChange::Added {
        collection: faces.first().map(|f| f.collection_id.clone()).unwrap_or_default(),
        ids: faces.iter().map(|f| f.id.clone()).collect(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn face(id: &str, c: &str, ext: Option<&str>) -> ApiFace {
        ApiFace {
            id: id.into(),
            collection_id: c.into(),
            external_id: ext.map(String::from),
            pack: "p".into(),
            embedding: vec![0.6, 0.8],
            bbox: serde_json::json!({"left": 1}),
            quality: serde_json::json!({"sharpness": 2}),
            created_at: 5,
        }
    }

    #[tokio::test]
    async fn collections_faces_imports_and_usage() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let s = Store::open(&url).await.unwrap();
        s.create_collection("c1", "p", 1).await.unwrap();
        assert!(matches!(
            s.create_collection("c1", "p", 1).await,
            Err(StoreError::Conflict(_))
        ));
        s.add_api_faces(&[face("a", "c1", Some("x")), face("b", "c1", None)])
            .await
            .unwrap();
        assert_eq!(s.collection("c1").await.unwrap().unwrap().face_count, 2);
        let page = s.api_faces_page("c1", "", 1).await.unwrap();
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].id, "a");
        assert_eq!(page[0].embedding, vec![0.6, 0.8]);
        assert_eq!(s.api_faces_page("c1", "a", 10).await.unwrap()[0].id, "b");
        assert!(format!("{:?}", page[0]).contains("dim 2"));
        assert_eq!(
            s.delete_api_faces("c1", &["a".into(), "zz".into()])
                .await
                .unwrap(),
            vec!["a".to_string()]
        );
        assert!(!s.import_done("c1", "h").await.unwrap());
        s.add_imported_faces(&[face("c", "c1", Some("y"))], "c1", "h", "y", 3)
            .await
            .unwrap();
        assert!(s.import_done("c1", "h").await.unwrap());
        assert_eq!(s.all_api_faces().await.unwrap().len(), 2);
        assert!(s.delete_collection("c1").await.unwrap());
        assert!(
            s.all_api_faces().await.unwrap().is_empty(),
            "faces go with their collection"
        );
        assert!(!s.import_done("c1", "h").await.unwrap());
        assert_eq!(s.count_request("k", "2026-11", 2).await.unwrap(), Some(1));
        assert_eq!(s.count_request("k", "2026-11", 2).await.unwrap(), Some(2));
        assert_eq!(s.count_request("k", "2026-11", 2).await.unwrap(), None);
        assert_eq!(s.count_request("k", "2026-12", 2).await.unwrap(), Some(1));
        assert_eq!(s.count_request("k", "2026-11", 0).await.unwrap(), Some(3));
        assert_eq!(s.requests_in("k", "2026-11").await.unwrap(), 3);
    }
}
