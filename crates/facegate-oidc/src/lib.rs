//! facegate-oidc: OAuth 2 / OpenID Connect as typed values. Requests come in as parameter maps and
//! leave as validated types; responses are built here; keys sign here. No HTTP framework, no database.

pub mod authorize;
pub mod claims;
pub mod client;
pub mod client_auth;
pub mod discovery;
pub mod engine;
pub mod error;
pub mod id_token;
pub mod keys;
pub mod pkce;
pub mod scope;
pub mod token;

pub use error::{ErrorCode, OAuthError};
