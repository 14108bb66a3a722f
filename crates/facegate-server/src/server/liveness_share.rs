//! Liveness checks shared by every instance on PostgreSQL: a check is stored after every change
//! (start, each frame, its use by a login) and read again before every use, so the frames of one
//! check may reach any instance behind a load balancer, and a check passed through one instance
//! signs in through another. Each store is conditional on the version (`Store::save_check`): when
//! two instances change one check at once (the same frame token sent to both), one wins, and the
//! other takes the stored state and refuses its own answer. On SQLite (one instance) nothing is
//! stored: checks live in the instance's memory.

use facegate_core::liveness::{LivenessError, Snapshot};

use crate::server::liveness::{LivenessService, Owner};
use crate::server::state::AppState;

fn shared(state: &AppState) -> bool {
    state.store.backend() == facegate_store::Backend::Postgres
}

/// Takes the stored state of check `id` when it is newer than this instance's copy.
pub async fn pull(state: &AppState, live: &LivenessService, id: &str) {
    if shared(state) {
        adopt_stored(state, live, id, false).await;
    }
}

/// Reads check `id` from the database and takes it (when newer, or always with `force`).
async fn adopt_stored(state: &AppState, live: &LivenessService, id: &str, force: bool) {
    match state.store.load_check(id, crate::server::now()).await {
        Ok(Some((version, bytes))) => {
            let stored = Snapshot {
                version: version.max(0) as u64,
                expires_at: 0,
                state: bytes,
            };
            live.adopt(id, &stored, force);
        }
        Ok(None) => {}
        Err(e) => tracing::error!("reading a liveness check: {e}"),
    }
}

/// Stores this instance's state of check `id` if it changed since `before` (its version then).
/// False when another instance changed the check first (or the database failed): the caller must
/// not answer with its own result.
pub async fn push(state: &AppState, live: &LivenessService, id: &str, before: Option<u64>) -> bool {
    if !shared(state) {
        return true;
    }
    if live.version(id) == before {
        return true;
    }
    let Some(snap) = live.snapshot(id) else {
        return true;
    };
    let version = i64::try_from(snap.version).unwrap_or(i64::MAX);
    match state
        .store
        .save_check(id, version, &snap.state, snap.expires_at)
        .await
    {
        Ok(true) => true,
        Ok(false) => {
            // Lost a race: the stored state is the check's history; take it.
            adopt_stored(state, live, id, true).await;
            false
        }
        Err(e) => {
            tracing::error!("storing a liveness check: {e}");
            false
        }
    }
}

/// Uses up a passed check for `binding` (see `LivenessService::consume`), on whichever instance
/// it ran: two instances using one check at once give it to one login only.
pub async fn consume(
    state: &AppState,
    live: &LivenessService,
    owner: &Owner,
    id: &str,
    binding: &str,
) -> Result<(Vec<f32>, u8), LivenessError> {
    pull(state, live, id).await;
    let before = live.version(id);
    let out = live.consume(owner, id, binding);
    if !push(state, live, id, before).await {
        return Err(LivenessError::Used);
    }
    out
}
