//! The audit log: what happened to whom, from where, and how it ended, in a few coarse words. Every
//! login attempt (any factor, success or failure) and every change to a person's faces is an event.
//! An event carries the factor and at most a score band, never an embedding, a photo or a secret:
//! the only way to write one is through these types.

use std::future::Future;

/// What kind of thing happened. The names are what the store keeps and the account page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Login,
    Signup,
    FaceAdded,
    FaceDeleted,
    FacesDeleted,
    Liveness,
    Logout,
    /// A device authorization (RFC 8628) approved or denied.
    Device,
    /// An email address confirmed (sign-up or a change of address).
    EmailConfirmed,
    EmailChanged,
    PasswordChanged,
    /// A password set through an emailed reset link.
    PasswordReset,
    /// A reset link asked for (by the person or forced by an operator).
    ResetRequested,
    /// Other sessions, or one of them, ended from the account page.
    SessionsEnded,
    /// An application's access revoked from the account page.
    AppRevoked,
    AccountDisabled,
    AccountEnabled,
    AccountDeleted,
    /// A person allowed an application.
    Consent,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Login => "login",
            Kind::Signup => "signup",
            Kind::FaceAdded => "face_added",
            Kind::FaceDeleted => "face_deleted",
            Kind::FacesDeleted => "faces_deleted",
            Kind::Liveness => "liveness",
            Kind::Logout => "logout",
            Kind::Device => "device",
            Kind::EmailConfirmed => "email_confirmed",
            Kind::EmailChanged => "email_changed",
            Kind::PasswordChanged => "password_changed",
            Kind::PasswordReset => "password_reset",
            Kind::ResetRequested => "reset_requested",
            Kind::SessionsEnded => "sessions_ended",
            Kind::AppRevoked => "app_revoked",
            Kind::AccountDisabled => "account_disabled",
            Kind::AccountEnabled => "account_enabled",
            Kind::AccountDeleted => "account_deleted",
            Kind::Consent => "consent",
        }
    }

    /// Every kind, for filters.
    pub const ALL: [Kind; 19] = [
        Kind::Login,
        Kind::Signup,
        Kind::FaceAdded,
        Kind::FaceDeleted,
        Kind::FacesDeleted,
        Kind::Liveness,
        Kind::Logout,
        Kind::Device,
        Kind::EmailConfirmed,
        Kind::EmailChanged,
        Kind::PasswordChanged,
        Kind::PasswordReset,
        Kind::ResetRequested,
        Kind::SessionsEnded,
        Kind::AppRevoked,
        Kind::AccountDisabled,
        Kind::AccountEnabled,
        Kind::AccountDeleted,
        Kind::Consent,
    ];

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// How it ended: done, a wrong guess (a failed factor), or refused before any guess was judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Failed,
    Refused,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::Refused => "refused",
        }
    }
}

/// One event. `detail` is a short fixed phrase (a factor, a score band, a reason), never input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: Kind,
    pub user: Option<String>,
    pub ip: Option<String>,
    pub outcome: Outcome,
    pub detail: Option<String>,
    /// The application (OAuth client) it concerns, if any.
    pub client: Option<String>,
}

impl Event {
    pub fn new(kind: Kind, outcome: Outcome) -> Event {
        Event {
            kind,
            user: None,
            ip: None,
            outcome,
            detail: None,
            client: None,
        }
    }

    pub fn user(mut self, user: Option<&str>) -> Event {
        self.user = user.map(str::to_string);
        self
    }

    pub fn client(mut self, client: Option<&str>) -> Event {
        self.client = client.map(str::to_string);
        self
    }

    pub fn ip(mut self, ip: Option<&str>) -> Event {
        self.ip = ip.map(str::to_string);
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Event {
        self.detail = Some(detail.into());
        self
    }
}

/// Where events go (the store). Recording must not fail the request that caused it: an
/// implementation that cannot write reports that itself (a log line) and returns.
pub trait AuditLog: Send + Sync {
    fn record(&self, event: Event) -> impl Future<Output = ()> + Send;
}

/// An audit log in memory, for tests of the services.
#[derive(Debug, Default)]
pub struct MemoryLog(pub std::sync::Mutex<Vec<Event>>);

impl MemoryLog {
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

impl AuditLog for MemoryLog {
    async fn record(&self, event: Event) {
        if let Ok(mut v) = self.0.lock() {
            v.push(event);
        }
    }
}
