//! `facegate admin`: what the admin page does, from the command line, through the same
//! `server::accounts` functions (so a forced reset mails the same link, a disabled account loses its
//! sessions the same way). Face login is not loaded: none of these needs a model.

use clap::Subcommand;

use crate::server::routes::admin_accounts::{audit_csv, filter};
use crate::server::{self, Settings, accounts};

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// List users (username, email, faces, state), optionally those matching a search.
    Users {
        #[arg(long, default_value = "")]
        search: String,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Show one user (by username or id).
    Show { user: String },
    /// Disable an account: it cannot sign in; its sessions, grants and tokens end.
    Disable { user: String },
    /// Enable a disabled account.
    Enable { user: String },
    /// Force a password reset: the password stops working and a reset link goes to the address.
    ResetPassword { user: String },
    /// Remove every face of a user.
    RemoveFaces { user: String },
    /// Delete an account (faces, sessions, grants); the audit log keeps its events.
    Delete {
        user: String,
        /// Confirm: deleting cannot be undone.
        #[arg(long)]
        yes: bool,
    },
    /// Make an invitation link for sign-up by invitation (FACEGATE_SIGNUP=invite); with --email,
    /// also mail it.
    Invite {
        #[arg(long)]
        email: Option<String>,
    },
    /// The audit log, newest first, filtered; --csv writes CSV to standard output.
    Audit {
        /// A username or user id.
        #[arg(long)]
        user: Option<String>,
        /// A client_id.
        #[arg(long)]
        client: Option<String>,
        /// An event kind (login, signup, password_reset, account_disabled, ...).
        #[arg(long)]
        event: Option<String>,
        /// ok, failed or refused.
        #[arg(long)]
        outcome: Option<String>,
        /// First day (YYYY-MM-DD, UTC).
        #[arg(long)]
        from: Option<String>,
        /// Last day, included (YYYY-MM-DD, UTC).
        #[arg(long)]
        to: Option<String>,
        #[arg(long, default_value_t = 200)]
        limit: i64,
        #[arg(long)]
        csv: bool,
    },
    /// The face API's collections and their sizes.
    Collections,
}

async fn state() -> anyhow::Result<server::AppState> {
    let mut settings = Settings::from_env()?;
    settings.face.enabled = false;
    settings.face.second_factor = false;
    server::open(settings).await
}

async fn user_id(state: &server::AppState, who: &str) -> anyhow::Result<String> {
    state
        .store
        .find_user(who)
        .await?
        .map(|u| u.id)
        .ok_or_else(|| anyhow::anyhow!("no user {who:?}"))
}

pub fn run(cmd: AdminCommand) -> anyhow::Result<()> {
    super::serve::runtime()?.block_on(async move {
        let state = state().await?;
        let out = run_on(&state, cmd).await;
        // Mails go out before the process ends.
        state.mailer.flush(std::time::Duration::from_secs(30)).await;
        out
    })
}

fn day(t: i64) -> String {
    crate::server::routes::face::date(t)
}

async fn run_on(state: &server::AppState, cmd: AdminCommand) -> anyhow::Result<()> {
    match cmd {
        AdminCommand::Users { search, limit } => {
            for r in state.store.users_page(&search, limit, 0).await? {
                println!(
                    "{}\t{}\t{}\tfaces={}\t{}\t{}",
                    r.user.username.as_str(),
                    r.user.id,
                    r.user.email.as_ref().map(|e| e.as_str()).unwrap_or("-"),
                    r.faces,
                    if r.disabled_at.is_some() {
                        "disabled"
                    } else {
                        "active"
                    },
                    day(r.user.created_at)
                );
            }
        }
        AdminCommand::Show { user } => {
            let id = user_id(state, &user).await?;
            let Some(r) = state.store.user_row(&id).await? else {
                anyhow::bail!("no user {user:?}");
            };
            println!("username  {}", r.user.username.as_str());
            println!("id (sub)  {}", r.user.id);
            println!("name      {}", r.user.name.as_deref().unwrap_or("-"));
            println!(
                "email     {} {}",
                r.user.email.as_ref().map(|e| e.as_str()).unwrap_or("-"),
                if r.user.email_verified {
                    "(confirmed)"
                } else {
                    "(not confirmed)"
                }
            );
            println!("since     {}", day(r.user.created_at));
            println!("password  {}", if r.has_password { "set" } else { "none" });
            println!("faces     {}", r.faces);
            println!(
                "state     {}",
                r.disabled_at
                    .map_or("active".to_string(), |t| format!("disabled since {}", day(t)))
            );
            println!(
                "sessions  {}",
                state.store.sessions_of(&id, server::now()).await?.len()
            );
        }
        AdminCommand::Disable { user } => {
            let id = user_id(state, &user).await?;
            accounts::set_disabled(state, &id, true, "facegate admin").await?;
            println!("disabled {user}: its sessions, grants and tokens have ended");
        }
        AdminCommand::Enable { user } => {
            let id = user_id(state, &user).await?;
            accounts::set_disabled(state, &id, false, "facegate admin").await?;
            println!("enabled {user}");
        }
        AdminCommand::ResetPassword { user } => {
            let id = user_id(state, &user).await?;
            match accounts::force_reset(state, &id).await? {
                Some(true) => {
                    println!("the password of {user} no longer works; a reset link was sent to its address")
                }
                _ => println!(
                    "the password of {user} no longer works; it has no email address, so no link was sent"
                ),
            }
        }
        AdminCommand::RemoveFaces { user } => {
            let id = user_id(state, &user).await?;
            let n = facegate_core::face::delete_all_faces(&state.store, &id).await?;
            println!("removed the faces of {user} ({n:?})");
        }
        AdminCommand::Delete { user, yes } => {
            if !yes {
                anyhow::bail!("deleting {user} cannot be undone: run again with --yes");
            }
            let id = user_id(state, &user).await?;
            accounts::delete_account(state, &id, "facegate admin", None).await?;
            println!("deleted {user}");
        }
        AdminCommand::Invite { email } => {
            let link = accounts::invite(state, email.as_deref()).await?;
            println!("{link}");
        }
        AdminCommand::Audit {
            user,
            client,
            event,
            outcome,
            from,
            to,
            limit,
            csv,
        } => {
            let f = filter(
                user.as_deref(),
                client.as_deref(),
                event.as_deref(),
                outcome.as_deref(),
                from.as_deref(),
                to.as_deref(),
                limit,
            )
            .map_err(|e| anyhow::anyhow!(e))?;
            let rows = state.store.audit_search(&f).await?;
            if csv {
                print!("{}", audit_csv(&rows));
            } else {
                for r in rows {
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                        day(r.at),
                        r.kind,
                        r.result,
                        r.username.or(r.user_id).unwrap_or_else(|| "-".into()),
                        r.client_id.unwrap_or_else(|| "-".into()),
                        r.ip.unwrap_or_else(|| "-".into()),
                        r.detail.unwrap_or_default()
                    );
                }
            }
        }
        AdminCommand::Collections => {
            for c in state.store.collections().await? {
                println!(
                    "{}\t{} faces\t{}\t{}",
                    c.id,
                    c.face_count,
                    c.pack,
                    day(c.created_at)
                );
            }
        }
    }
    Ok(())
}
