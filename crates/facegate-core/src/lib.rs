//! facegate-core: the domain — accounts and their credentials, secrets, and login throttling.
//! No HTTP, no SQL, no models here.

pub mod account;
pub mod face;
pub mod face_fusion;
pub mod liveness;
pub mod login;
pub mod password;
pub mod secret;
pub mod similarity;
pub mod throttle;

pub use account::{Email, User, Username};
