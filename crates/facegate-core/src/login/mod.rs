//! The login core: one state machine for every way in. A `LoginTransaction` collects `Factor`s (each
//! a `Method`: password, face 1:1 / 1:N / sign-up, with or without liveness) for one account;
//! `policy::decide` says whether the site, the client and the request are satisfied, and if not,
//! which step is owed; `amr` and `acr` come from the factors in one place (`factor::amr`, `Acr`).

pub mod acr;
pub mod factor;
pub mod policy;
pub mod transaction;

pub use acr::Acr;
pub use factor::{FaceMode, Factor, Method};
pub use policy::{
    Account, Context, Decision, FaceRole, Outcome, Refusal, Requested, SitePolicy, Step, decide,
};
pub use transaction::{LoginTransaction, TransactionError};
