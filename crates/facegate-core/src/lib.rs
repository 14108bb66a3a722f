//! facegate-core: the domain — accounts and their credentials, the login core, the face and
//! liveness services, the audit log, every limiter. No HTTP, no SQL, no models here: what the
//! services need from outside (store, face engine) are small traits (`face::ports`).

pub mod account;
pub mod audit;
pub mod face;
pub mod face_api;
pub mod face_fusion;
pub mod liveness;
pub mod login;
pub mod password;
pub mod secret;
pub mod similarity;
pub mod throttle;

pub use account::{Email, User, Username};
