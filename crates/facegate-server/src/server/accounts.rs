//! Account life cycle (issue 15): sign-up, email confirmation, password reset and change, change of
//! email address, disabling and deleting, over the store and the mailer. The pages
//! (`routes/account.rs`), the admin page and `facegate admin` all go through these functions.
//!
//! Email links are random secrets sent once and stored only as their storage hash, single use and
//! expiring. No answer tells whether an address has an account: the mail goes out (or not) in the
//! background, so even the time of the answer is the same.

use facegate_core::audit::{Event, Kind, Outcome};
use facegate_core::password::{self, PasswordError};
use facegate_core::secret::{random_token, storage_hash};
use facegate_core::{Email, User, Username};

use super::mail::{Mail, MailKind, masked};
use super::now;
use super::settings::SignupMode;
use super::state::AppState;

/// How long a confirmation link works.
pub const CONFIRM_SECS: i64 = 24 * 3600;
/// How long a password reset link works.
pub const RESET_SECS: i64 = 3600;
/// How long an invitation works.
pub const INVITE_SECS: i64 = 7 * 24 * 3600;

/// The purposes of email links, as stored.
pub const CONFIRM: &str = "confirm";
pub const CHANGE_EMAIL: &str = "change_email";
pub const RESET: &str = "reset";

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("sign-up is not open on this site")]
    SignupOff,
    #[error("this invitation is not valid any more: ask for a new one")]
    BadInvite,
    #[error("{0}")]
    Input(#[from] facegate_core::account::AccountError),
    #[error("{0}")]
    Password(#[from] PasswordError),
    #[error("that username is taken: choose another")]
    UsernameTaken,
    #[error("this link is not valid: it was used already, has expired, or a newer one was sent")]
    BadLink,
    #[error("the current password is not right")]
    WrongPassword,
    #[error("the server is busy: try again in a moment")]
    Busy,
    #[error("{0}")]
    Internal(String),
}

impl From<facegate_store::StoreError> for AccountError {
    fn from(e: facegate_store::StoreError) -> Self {
        AccountError::Internal(e.to_string())
    }
}

fn link(state: &AppState, path: &str, secret: &str) -> String {
    format!("{}{path}?token={secret}", state.settings.issuer)
}

/// Sends a mail in the background (`Mailer::send_later`).
pub fn send_later(state: &AppState, to: String, mail: Mail) {
    state.mailer.send_later(to, mail);
}

/// Hashes a new password after the NIST rules, off the async threads.
async fn new_hash(pw: &str, user: &Username, email: Option<&str>) -> Result<String, AccountError> {
    let mut personal = vec![user.as_str()];
    if let Some(e) = email {
        personal.push(e);
    }
    password::check_new(pw, &personal)?;
    let pw = pw.to_string();
    tokio::task::spawn_blocking(move || password::hash(&pw))
        .await
        .map_err(|e| AccountError::Internal(e.to_string()))?
        .map_err(AccountError::from)
}

/// A new email link for `user` (its secret goes into the mail, its hash into the store).
async fn new_link(
    state: &AppState,
    user_id: &str,
    purpose: &str,
    email: Option<&str>,
    secs: i64,
) -> Result<String, AccountError> {
    let secret = random_token(32);
    let t = now();
    state
        .store
        .put_email_link(&storage_hash(&secret), user_id, purpose, email, t, t + secs)
        .await?;
    Ok(secret)
}

/// Sign-up: a password account with an email address to confirm. `invite` is the invitation's
/// secret in invite mode.
pub async fn signup(
    state: &AppState,
    username: &str,
    email: &str,
    pw: &str,
    invite: Option<&str>,
    ip: &str,
) -> Result<User, AccountError> {
    let invite_hash = match state.settings.accounts.signup {
        SignupMode::Off => return Err(AccountError::SignupOff),
        SignupMode::Open => None,
        SignupMode::Invite => {
            let h = storage_hash(invite.unwrap_or(""));
            if state.store.invite(&h, now()).await?.is_none() {
                return Err(AccountError::BadInvite);
            }
            Some(h)
        }
    };
    let username = Username::parse(username)?;
    let email = Email::parse(email)?;
    let hash = new_hash(pw, &username, Some(email.as_str())).await?;
    if let Some(h) = &invite_hash
        && !state.store.take_invite(h, now()).await?
    {
        return Err(AccountError::BadInvite);
    }
    let user = User {
        id: random_token(16),
        username,
        email: Some(email.clone()),
        email_verified: false,
        name: None,
        created_at: now(),
    };
    match state.store.create_user(&user, Some(&hash)).await {
        Ok(()) => {}
        Err(facegate_store::StoreError::Conflict(_)) => return Err(AccountError::UsernameTaken),
        Err(e) => return Err(e.into()),
    }
    state.store.require_confirmation(&user.id).await?;
    state
        .audit(
            Event::new(Kind::Signup, Outcome::Ok)
                .user(Some(&user.id))
                .ip(Some(ip))
                .detail("pwd"),
        )
        .await;
    send_confirmation(state, &user).await?;
    Ok(user)
}

/// Sends (again) the mail that confirms the account's address.
pub async fn send_confirmation(state: &AppState, user: &User) -> Result<(), AccountError> {
    let Some(email) = &user.email else {
        return Ok(());
    };
    let secret = new_link(state, &user.id, CONFIRM, Some(email.as_str()), CONFIRM_SECS).await?;
    send_later(
        state,
        email.as_str().to_string(),
        Mail {
            kind: MailKind::Confirm,
            username: user.username.as_str().to_string(),
            link: Some(link(state, "/account/verify", &secret)),
            valid_for: "24 hours".into(),
            detail: String::new(),
        },
    );
    Ok(())
}

/// Uses a confirmation link (a new account's, or a change of address): the address is confirmed,
/// and for a change, it replaces the old one, which is told.
pub async fn confirm_email(state: &AppState, secret: &str, ip: &str) -> Result<User, AccountError> {
    let h = storage_hash(secret);
    let t = now();
    let (link, purpose) = match state.store.take_email_link(&h, CONFIRM, t).await? {
        Some(l) => (l, CONFIRM),
        None => match state.store.take_email_link(&h, CHANGE_EMAIL, t).await? {
            Some(l) => (l, CHANGE_EMAIL),
            None => return Err(AccountError::BadLink),
        },
    };
    let user = state
        .store
        .user(&link.user_id)
        .await?
        .ok_or(AccountError::BadLink)?;
    let email = link.email.ok_or(AccountError::BadLink)?;
    // A confirmation of an address the account no longer has confirms nothing.
    if purpose == CONFIRM && user.email.as_ref().map(|e| e.as_str()) != Some(email.as_str()) {
        return Err(AccountError::BadLink);
    }
    state.store.set_email(&user.id, &email, true).await?;
    let kind = if purpose == CONFIRM {
        Kind::EmailConfirmed
    } else {
        Kind::EmailChanged
    };
    state
        .audit(Event::new(kind, Outcome::Ok).user(Some(&user.id)).ip(Some(ip)))
        .await;
    if purpose == CHANGE_EMAIL
        && let Some(old) = &user.email
        && !old.as_str().eq_ignore_ascii_case(&email)
    {
        send_later(
            state,
            old.as_str().to_string(),
            Mail {
                kind: MailKind::EmailChanged,
                username: user.username.as_str().to_string(),
                link: None,
                valid_for: String::new(),
                detail: masked(&email),
            },
        );
    }
    Ok(state.store.user(&user.id).await?.unwrap_or(user))
}

/// "Forgot password": a reset link goes to the address if an account has it. Answers the same,
/// at the same speed, either way.
pub async fn request_reset(state: &AppState, email: &str, ip: &str) -> Result<(), AccountError> {
    let Ok(email) = Email::parse(email) else {
        return Ok(());
    };
    if let Some(user) = state.store.user_by_email(email.as_str()).await? {
        send_reset(state, &user, ip, None).await?;
    }
    Ok(())
}

/// Sends a reset link to the account's address (`by`: the operator who forced it).
pub async fn send_reset(
    state: &AppState,
    user: &User,
    ip: &str,
    by: Option<&str>,
) -> Result<bool, AccountError> {
    let Some(email) = &user.email else {
        return Ok(false);
    };
    let secret = new_link(state, &user.id, RESET, Some(email.as_str()), RESET_SECS).await?;
    state
        .audit(
            Event::new(Kind::ResetRequested, Outcome::Ok)
                .user(Some(&user.id))
                .ip(Some(ip))
                .detail(if by.is_some() {
                    "forced by an operator"
                } else {
                    "by email"
                }),
        )
        .await;
    send_later(
        state,
        email.as_str().to_string(),
        Mail {
            kind: MailKind::Reset,
            username: user.username.as_str().to_string(),
            link: Some(link(state, "/password/reset", &secret)),
            valid_for: "1 hour".into(),
            detail: String::new(),
        },
    );
    Ok(true)
}

/// Whether a reset link can still be used (before showing its form).
pub async fn reset_link_usable(state: &AppState, secret: &str) -> Result<bool, AccountError> {
    Ok(state
        .store
        .email_link_usable(&storage_hash(secret), RESET, now())
        .await?)
}

/// Ends everything the account is signed in with: its sessions (but `keep`, a storage hash), and
/// with `tokens` every grant and token (otherwise its refresh tokens only).
async fn sign_out_everywhere(
    state: &AppState,
    user_id: &str,
    keep: Option<&str>,
    tokens: bool,
) -> Result<(), AccountError> {
    let ended = state.store.end_sessions(user_id, keep).await?;
    for sid in ended {
        super::backchannel::notify(state, &sid);
    }
    let t = now();
    if tokens {
        state.store.revoke_user_tokens(user_id, t).await?;
    } else {
        state.store.revoke_user_refresh_tokens(user_id, t).await?;
    }
    Ok(())
}

/// Sets a new password through a reset link: the link is used up, every session, grant and token
/// of the account ends, and the account's address is told.
pub async fn reset_password(
    state: &AppState,
    secret: &str,
    new: &str,
    ip: &str,
) -> Result<User, AccountError> {
    let h = storage_hash(secret);
    // Checked before the link is used up, so a refused password does not cost the link.
    if !state.store.email_link_usable(&h, RESET, now()).await? {
        return Err(AccountError::BadLink);
    }
    let user_id = match state.store.email_link_owner(&h).await? {
        Some(u) => u,
        None => return Err(AccountError::BadLink),
    };
    let user = state.store.user(&user_id).await?.ok_or(AccountError::BadLink)?;
    let hash = new_hash(new, &user.username, user.email.as_ref().map(|e| e.as_str())).await?;
    if state.store.take_email_link(&h, RESET, now()).await?.is_none() {
        return Err(AccountError::BadLink);
    }
    state.store.set_password_hash(&user.id, Some(&hash)).await?;
    sign_out_everywhere(state, &user.id, None, true).await?;
    // Whoever can read the mailbox has just proved it: the address counts as confirmed.
    if let Some(e) = &user.email
        && !user.email_verified
    {
        state.store.set_email(&user.id, e.as_str(), true).await?;
    }
    state
        .audit(
            Event::new(Kind::PasswordReset, Outcome::Ok)
                .user(Some(&user.id))
                .ip(Some(ip)),
        )
        .await;
    tell_password_changed(state, &user, "reset");
    Ok(user)
}

fn tell_password_changed(state: &AppState, user: &User, how: &str) {
    if let Some(e) = &user.email {
        send_later(
            state,
            e.as_str().to_string(),
            Mail {
                kind: MailKind::PasswordChanged,
                username: user.username.as_str().to_string(),
                link: None,
                valid_for: String::new(),
                detail: how.into(),
            },
        );
    }
}

/// Changes the password from the account page: the current one must be right (if the account has
/// one); the other sessions and the refresh tokens end; this session stays.
pub async fn change_password(
    state: &AppState,
    user: &User,
    current: &str,
    new: &str,
    session_hash: &str,
    ip: &str,
) -> Result<(), AccountError> {
    if let Some(old) = state.store.password_hash(&user.id).await? {
        let ok = state
            .password_pool
            .verify(current.to_string(), Some(old))
            .await
            .map_err(|_| AccountError::Busy)?;
        if !ok {
            state
                .audit(
                    Event::new(Kind::PasswordChanged, Outcome::Failed)
                        .user(Some(&user.id))
                        .ip(Some(ip)),
                )
                .await;
            return Err(AccountError::WrongPassword);
        }
    }
    let hash = new_hash(new, &user.username, user.email.as_ref().map(|e| e.as_str())).await?;
    state.store.set_password_hash(&user.id, Some(&hash)).await?;
    sign_out_everywhere(state, &user.id, Some(session_hash), false).await?;
    state
        .audit(
            Event::new(Kind::PasswordChanged, Outcome::Ok)
                .user(Some(&user.id))
                .ip(Some(ip)),
        )
        .await;
    tell_password_changed(state, user, "changed");
    Ok(())
}

/// Starts a change of address: a confirmation link goes to the new address; the account keeps its
/// old address until the link is used.
pub async fn change_email(state: &AppState, user: &User, new: &str) -> Result<(), AccountError> {
    let email = Email::parse(new)?;
    let secret = new_link(state, &user.id, CHANGE_EMAIL, Some(email.as_str()), CONFIRM_SECS).await?;
    send_later(
        state,
        email.as_str().to_string(),
        Mail {
            kind: MailKind::ConfirmChange,
            username: user.username.as_str().to_string(),
            link: Some(link(state, "/account/verify", &secret)),
            valid_for: "24 hours".into(),
            detail: String::new(),
        },
    );
    Ok(())
}

/// Disables an account (its sessions, grants and tokens end; it cannot sign in) or enables it.
pub async fn set_disabled(
    state: &AppState,
    user_id: &str,
    disabled: bool,
    by: &str,
) -> Result<bool, AccountError> {
    let found = state.store.set_disabled(user_id, disabled.then(now)).await?;
    if !found {
        return Ok(false);
    }
    if disabled {
        sign_out_everywhere(state, user_id, None, true).await?;
    }
    let kind = if disabled {
        Kind::AccountDisabled
    } else {
        Kind::AccountEnabled
    };
    state
        .audit(
            Event::new(kind, Outcome::Ok)
                .user(Some(user_id))
                .detail(by.to_string()),
        )
        .await;
    Ok(true)
}

/// An operator forces a password reset: the current password stops working at once, every
/// session and token ends, and a reset link goes to the account's address.
pub async fn force_reset(state: &AppState, user_id: &str) -> Result<Option<bool>, AccountError> {
    let Some(user) = state.store.user(user_id).await? else {
        return Ok(None);
    };
    state.store.set_password_hash(&user.id, None).await?;
    sign_out_everywhere(state, &user.id, None, true).await?;
    Ok(Some(send_reset(state, &user, "", Some("operator")).await?))
}

/// Deletes an account: faces, sessions, consents and the account go; grants and tokens are revoked;
/// the audit log keeps its events (no biometric data is in them).
pub async fn delete_account(
    state: &AppState,
    user_id: &str,
    by: &str,
    ip: Option<&str>,
) -> Result<bool, AccountError> {
    let ended = state.store.end_sessions(user_id, None).await?;
    for sid in ended {
        super::backchannel::notify(state, &sid);
    }
    let deleted = state.store.delete_user(user_id, now()).await?;
    if deleted {
        state
            .audit(
                Event::new(Kind::AccountDeleted, Outcome::Ok)
                    .user(Some(user_id))
                    .ip(ip)
                    .detail(by.to_string()),
            )
            .await;
    }
    Ok(deleted)
}

/// Whether the account must confirm its address before it signs in to applications: it was opened
/// on the sign-up page, its address is not confirmed, and the grace (`unconfirmed_grace`) is over.
/// Accounts an operator made are not held back.
pub async fn must_confirm(state: &AppState, user: &User) -> Result<bool, AccountError> {
    if user.email_verified || now() < user.created_at + state.settings.accounts.unconfirmed_grace {
        return Ok(false);
    }
    Ok(state.store.confirmation_pending(&user.id).await?)
}

/// Makes an invitation (sign-up by invitation); with an address, mails it there too. Returns the
/// link (shown once to the operator).
pub async fn invite(state: &AppState, email: Option<&str>) -> Result<String, AccountError> {
    let email = email.map(Email::parse).transpose()?;
    let secret = random_token(32);
    let t = now();
    state
        .store
        .put_invite(
            &storage_hash(&secret),
            email.as_ref().map(|e| e.as_str()),
            t,
            t + INVITE_SECS,
        )
        .await?;
    let url = format!("{}/signup?invite={secret}", state.settings.issuer);
    if let Some(e) = email {
        send_later(
            state,
            e.as_str().to_string(),
            Mail {
                kind: MailKind::Invite,
                username: String::new(),
                link: Some(url.clone()),
                valid_for: "7 days".into(),
                detail: String::new(),
            },
        );
    }
    Ok(url)
}
