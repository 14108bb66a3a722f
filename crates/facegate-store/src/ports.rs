//! The store as the core's ports: where the face service keeps templates and accounts, and where
//! the audit log goes.

use facegate_core::User;
use facegate_core::audit::{AuditLog, Event};
use facegate_core::face::{AccountStore, FaceTemplate, PortError, TemplateStore};

use crate::Store;

fn port(e: crate::StoreError) -> PortError {
    PortError(e.to_string())
}

impl TemplateStore for Store {
    async fn templates_of(&self, user_id: &str) -> Result<Vec<FaceTemplate>, PortError> {
        self.faces_of(user_id).await.map_err(port)
    }

    async fn templates_by_pack(&self, pack: &str) -> Result<Vec<FaceTemplate>, PortError> {
        self.faces_by_pack(pack).await.map_err(port)
    }

    async fn add_template(&self, t: &FaceTemplate) -> Result<(), PortError> {
        self.add_face(t).await.map_err(port)
    }

    async fn delete_template(&self, user_id: &str, id: &str) -> Result<bool, PortError> {
        self.delete_face(user_id, id).await.map_err(port)
    }

    async fn delete_templates(&self, user_id: &str) -> Result<u64, PortError> {
        self.delete_faces(user_id).await.map_err(port)
    }
}

impl AccountStore for Store {
    async fn account_id(&self, username: &str) -> Result<Option<String>, PortError> {
        Ok(self
            .user_with_password(username)
            .await
            .map_err(port)?
            .map(|(u, _)| u.id))
    }

    async fn create_account(&self, user: &User) -> Result<(), PortError> {
        self.create_user(user, None).await.map_err(port)
    }
}

/// The metric label for an event's factor: the first word of its detail for logins and sign-ups
/// (`pwd`, `face-1:n`, ...), the reason for liveness; fixed words only, so the series stay few.
fn factor_label(event: &Event) -> String {
    let first = event
        .detail
        .as_deref()
        .and_then(|d| d.split(' ').next())
        .map(|w| w.trim_end_matches(':'))
        .filter(|w| {
            !w.is_empty()
                && w.len() <= 24
                && w.chars().all(|c| c.is_ascii_alphanumeric() || "-_:".contains(c))
        });
    match event.kind {
        facegate_core::audit::Kind::Login
        | facegate_core::audit::Kind::Signup
        | facegate_core::audit::Kind::Liveness => first.unwrap_or("none").to_ascii_lowercase(),
        _ => String::new(),
    }
}

impl AuditLog for Store {
    async fn record(&self, event: Event) {
        metrics::counter!(
            "facegate_events_total",
            "kind" => event.kind.as_str(),
            "factor" => factor_label(&event),
            "outcome" => event.outcome.as_str()
        )
        .increment(1);
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        if let Err(e) = self.audit(&event, at).await {
            // Recording must not fail the request that caused the event.
            tracing::error!("audit event {} not recorded: {e}", event.kind.as_str());
        }
    }
}

impl facegate_core::face_api::CollectionStore for Store {
    async fn create_collection(&self, id: &str, pack: &str, now: i64) -> Result<bool, PortError> {
        match Store::create_collection(self, id, pack, now).await {
            Ok(()) => Ok(true),
            Err(crate::StoreError::Conflict(_)) => Ok(false),
            Err(e) => Err(port(e)),
        }
    }

    async fn collection(
        &self,
        id: &str,
    ) -> Result<Option<facegate_core::face_api::ApiCollection>, PortError> {
        Store::collection(self, id).await.map_err(port)
    }

    async fn delete_collection(&self, id: &str) -> Result<bool, PortError> {
        Store::delete_collection(self, id).await.map_err(port)
    }

    async fn add_faces(&self, faces: &[facegate_core::face_api::ApiFace]) -> Result<(), PortError> {
        self.add_api_faces(faces).await.map_err(port)
    }

    async fn add_imported_faces(
        &self,
        faces: &[facegate_core::face_api::ApiFace],
        collection: &str,
        sha256: &str,
        source: &str,
        now: i64,
    ) -> Result<(), PortError> {
        Store::add_imported_faces(self, faces, collection, sha256, source, now)
            .await
            .map_err(port)
    }

    async fn delete_faces(&self, collection: &str, ids: &[String]) -> Result<Vec<String>, PortError> {
        self.delete_api_faces(collection, ids).await.map_err(port)
    }
}
