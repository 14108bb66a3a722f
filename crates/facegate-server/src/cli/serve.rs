//! `facegate serve`, `facegate user ...`, `facegate client ...`, `facegate keys ...`: the server and
//! the operator's commands, over the same functions as the HTTP API.

use std::io::Read;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use facegate_core::{Email, User, Username};
use facegate_oidc::client::ClientMetadata;
use facegate_oidc::keys::SigningAlg;

use crate::server::{self, Settings, now, provider};

#[derive(Debug, Args)]
pub struct ServeArgs {}

pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

pub fn serve(_args: ServeArgs) -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    runtime()?.block_on(async move {
        let listen = settings.listen;
        let issuer = settings.issuer.clone();
        let state = server::open(settings).await?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        eprintln!("facegate listening on http://{listen}  issuer {issuer}");
        match state.mailer.outbox() {
            Some(dir) => eprintln!(
                "mail: no SMTP server is set (FACEGATE_SMTP_URL), so every mail is written to {}",
                dir.display()
            ),
            None => eprintln!("mail: {}", state.mailer.describe()),
        }
        server::serve(state, listener).await
    })
}

async fn store() -> anyhow::Result<facegate_store::Store> {
    let settings = Settings::from_env()?;
    std::fs::create_dir_all(&settings.data_dir)?;
    crate::server::data_key::open_store(&settings).await
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Enrol face photos for an account (each must show exactly one clear, frontal face).
    Enroll {
        #[arg(long)]
        username: String,
        #[arg(required = true)]
        images: Vec<std::path::PathBuf>,
    },
    /// Create a password account.
    Add {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        name: Option<String>,
        /// Read the password from standard input (one line).
        #[arg(long)]
        password_stdin: bool,
        /// Mark the email address as verified.
        #[arg(long)]
        email_verified: bool,
    },
}

pub fn user(cmd: UserCommand) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Enroll { username, images } => runtime()?.block_on(async move {
            let settings = Settings::from_env()?;
            let store = store().await?;
            let username = Username::parse(&username)?;
            let (user, _) = store
                .user_with_password(username.as_str())
                .await?
                .with_context(|| format!("no account {}", username.as_str()))?;
            let face_settings = settings.face.clone();
            let face = tokio::task::spawn_blocking(move || crate::server::face::Faces::load(face_settings))
                .await??;
            let mut enrolled = 0;
            for path in &images {
                let bytes = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
                match face.enrol(&store, &user.id, bytes).await {
                    Ok(_) => {
                        enrolled += 1;
                        println!("{}: enrolled", path.display());
                    }
                    Err(e) => println!("{}: not enrolled: {e}", path.display()),
                }
            }
            // Each template added is an audit event of its own (face_added, by the operator).
            if enrolled == 0 {
                bail!("no image could be enrolled");
            }
            println!(
                "{enrolled} of {} images enrolled for {}",
                images.len(),
                username.as_str()
            );
            Ok(())
        }),
        UserCommand::Add {
            username,
            email,
            name,
            password_stdin,
            email_verified,
        } => {
            let username = Username::parse(&username)?;
            let email = email.map(|e| Email::parse(&e)).transpose()?;
            let hash = if password_stdin {
                let mut pw = String::new();
                std::io::stdin().read_to_string(&mut pw)?;
                let pw = pw.trim_end_matches(['\n', '\r']);
                Some(facegate_core::password::hash(pw)?)
            } else {
                None
            };
            let user = User {
                id: facegate_core::secret::random_token(16),
                username,
                email,
                email_verified,
                name,
                created_at: now(),
            };
            runtime()?.block_on(async {
                store()
                    .await?
                    .create_user(&user, hash.as_deref())
                    .await
                    .map_err(anyhow::Error::from)
            })?;
            println!("{}", user.id);
            Ok(())
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client; prints its id and secret (the secret is shown only now).
    Add {
        #[arg(long)]
        name: String,
        /// May be given several times.
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// A public client (single-page or native app): no secret, PKCE required.
        #[arg(long)]
        public: bool,
        /// Allowed grant types, comma-separated (default authorization_code,refresh_token).
        #[arg(long, value_delimiter = ',')]
        grant_types: Option<Vec<String>>,
        #[arg(long)]
        auth_method: Option<String>,
        #[arg(long)]
        scope: Option<String>,
        /// Skip the consent screen (first-party applications).
        #[arg(long)]
        skip_consent: bool,
        /// ID token signing algorithm: RS256 (default), ES256 or EdDSA.
        #[arg(long)]
        id_token_alg: Option<String>,
        /// Give this client pairwise subject identifiers (its own `sub` for each person).
        #[arg(long)]
        pairwise: bool,
        /// A resource server: may introspect tokens issued to other clients.
        #[arg(long)]
        resource_server: bool,
        /// Accept this client's authorization requests only through the PAR endpoint (RFC 9126).
        #[arg(long)]
        require_par: bool,
        /// Issue this client's access tokens as JWTs (RFC 9068) instead of opaque strings.
        #[arg(long)]
        jwt_access_tokens: bool,
        /// Back-Channel Logout: where to POST logout tokens when a session of this client ends.
        #[arg(long)]
        backchannel_logout_uri: Option<String>,
        /// The client needs `sid` in its logout tokens (always sent).
        #[arg(long)]
        backchannel_logout_session_required: bool,
        #[arg(long)]
        json: bool,
    },
    /// List clients.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Delete a client and everything issued to it.
    Remove { client_id: String },
    /// The sign-in this client requires of everyone, as an acr (urn:facegate:pwd, urn:facegate:face,
    /// urn:facegate:face:live, urn:facegate:mfa:face, urn:facegate:mfa:face:live); a person who signed in
    /// with less is asked for the missing factor before the client gets a code.
    Policy {
        client_id: String,
        #[arg(long, conflicts_with = "clear")]
        acr: Option<String>,
        /// Remove the client's requirement (the site's policy alone applies).
        #[arg(long)]
        clear: bool,
    },
}

pub fn client(cmd: ClientCommand) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let store = store().await?;
        match cmd {
            ClientCommand::Add { name, redirect_uris, post_logout_redirect_uris, public, grant_types, auth_method, scope, skip_consent, id_token_alg, pairwise, resource_server, require_par, jwt_access_tokens, backchannel_logout_uri, backchannel_logout_session_required, json } => {
                let meta = ClientMetadata {
                    name: Some(name),
                    redirect_uris,
                    post_logout_redirect_uris,
                    grant_types,
                    token_endpoint_auth_method: if public { Some("none".into()) } else { auth_method },
                    scope,
                    jwks: None,
                    skip_consent,
                    id_token_signed_response_alg: id_token_alg,
                    subject_type: pairwise.then(|| "pairwise".to_string()),
                    resource_server,
                    require_pushed_authorization_requests: require_par,
                    jwt_access_tokens,
                    backchannel_logout_uri,
                    backchannel_logout_session_required,
                };
                let (client, secret) = provider::register_client(&store, meta, None).await.map_err(|e| anyhow::anyhow!("{}: {}", e.error.as_str(), e.description))?;
                if json {
                    println!("{}", serde_json::json!({"client_id": client.client_id, "client_secret": secret, "name": client.name, "redirect_uris": client.redirect_uris, "token_endpoint_auth_method": client.auth_method.as_str()}));
                } else {
                    println!("client_id:     {}", client.client_id);
                    if let Some(s) = secret {
                        println!("client_secret: {s}   (shown once; store it now)");
                    }
                }
            }
            ClientCommand::List { json } => {
                let clients = store.clients().await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&clients)?);
                } else {
                    for c in clients {
                        println!("{}  {:<24} {:<20} {}", c.client_id, c.name, c.auth_method.as_str(), c.redirect_uris.join(" "));
                    }
                }
            }
            ClientCommand::Remove { client_id } => {
                if !store.delete_client(&client_id).await? {
                    bail!("no client {client_id}");
                }
                println!("removed {client_id}");
            }
            ClientCommand::Policy { client_id, acr, clear } => {
                if store.client(&client_id).await?.is_none() {
                    bail!("no client {client_id}");
                }
                match (acr, clear) {
                    (Some(a), _) => {
                        if facegate_core::login::Acr::parse(&a).is_none() {
                            bail!("unknown acr {a:?}: one of {}", facegate_core::login::Acr::supported().join(", "));
                        }
                        store.set_client_acr(&client_id, Some(&a)).await?;
                        println!("{client_id} requires {a}");
                    }
                    (None, true) => {
                        store.set_client_acr(&client_id, None).await?;
                        println!("{client_id}: no requirement of its own");
                    }
                    (None, false) => match store.client_acr(&client_id).await? {
                        Some(a) => println!("{client_id} requires {a}"),
                        None => println!("{client_id}: no requirement of its own"),
                    },
                }
            }
        }
        Ok(())
    })
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Publish a new signing key and sign with it; the old one stays in the JWKS until what it signed expires.
    Rotate {
        #[arg(long, default_value = "RS256")]
        alg: String,
    },
    /// List signing keys.
    List,
    /// Re-encrypt the embeddings, signing keys and pairwise salt stored at rest under a new data key
    /// (key file: a new one is made as FILE.next and replaces FILE at the end; FACEGATE_DATA_KEY:
    /// the new key is FACEGATE_DATA_KEY_NEW). Interrupted, it resumes where it stopped when run again.
    RotateDataKey,
}

pub fn keys(cmd: KeysCommand) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let settings = Settings::from_env()?;
        if let KeysCommand::RotateDataKey = cmd {
            std::fs::create_dir_all(&settings.data_dir)?;
            let r = server::data_key::rotate(&settings).await?;
            println!(
                "data key rotated: {} -> {}, {} values re-encrypted",
                r.from, r.to, r.resealed
            );
            if let Some(step) = r.next_step {
                println!("next: {step}");
            }
            return Ok(());
        }
        let store = store().await?;
        match cmd {
            KeysCommand::Rotate { alg } => {
                let alg = SigningAlg::parse(&alg)
                    .with_context(|| format!("unknown algorithm {alg} (RS256, ES256, EdDSA)"))?;
                server::keys::ensure_keys(&store).await?;
                let key = server::keys::rotate(&store, alg, server::state::key_grace(&settings)).await?;
                println!(
                    "new {} key {} (a running server picks it up within 30 s)",
                    alg.as_str(),
                    key.kid
                );
            }
            KeysCommand::List => {
                for k in store.keys().await? {
                    let status = match k.retired_at {
                        None => "active".to_string(),
                        Some(r) => format!("retired {}s ago", now() - r),
                    };
                    println!("{}  {:<6} {}", k.kid, k.alg, status);
                }
            }
            KeysCommand::RotateDataKey => {}
        }
        Ok(())
    })
}
