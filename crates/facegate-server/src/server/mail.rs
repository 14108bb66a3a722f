//! Email: SMTP through lettre (TLS, authentication) when `FACEGATE_SMTP_URL` is set; otherwise every
//! message is written as one `.eml` file to `<data dir>/outbox/` (owner-only), which the start-up
//! log names. Messages are plain text and HTML from the templates in `templates/mail/`; all their
//! sentences live there.

use std::path::PathBuf;

use askama::Template;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::settings::Settings;

/// What a mail is about; the templates hold its words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    /// Confirm the address of a new account.
    Confirm,
    /// Confirm a new address for an existing account.
    ConfirmChange,
    /// To the old address: the account's address was changed.
    EmailChanged,
    /// A link to set a new password.
    Reset,
    /// The password was changed or reset; every session was ended.
    PasswordChanged,
    /// An invitation to open an account.
    Invite,
}

impl MailKind {
    fn as_str(self) -> &'static str {
        match self {
            MailKind::Confirm => "confirm",
            MailKind::ConfirmChange => "confirm_change",
            MailKind::EmailChanged => "email_changed",
            MailKind::Reset => "reset",
            MailKind::PasswordChanged => "password_changed",
            MailKind::Invite => "invite",
        }
    }
}

/// One mail's facts.
#[derive(Debug, Clone)]
pub struct Mail {
    pub kind: MailKind,
    pub username: String,
    /// The link the mail carries, if any.
    pub link: Option<String>,
    /// How long the link works, in words ("24 hours").
    pub valid_for: String,
    /// A kind's extra fact (the new address, partly hidden, for `EmailChanged`).
    pub detail: String,
}

#[derive(Template)]
#[template(path = "mail/subject.txt")]
struct Subject<'a> {
    kind: &'a str,
    site: &'a str,
}

#[derive(Template)]
#[template(path = "mail/body.txt")]
struct TextBody<'a> {
    kind: &'a str,
    site: &'a str,
    username: &'a str,
    link: &'a str,
    valid_for: &'a str,
    detail: &'a str,
}

#[derive(Template)]
#[template(path = "mail/body.html")]
struct HtmlBody<'a> {
    kind: &'a str,
    site: &'a str,
    username: &'a str,
    link: &'a str,
    valid_for: &'a str,
    detail: &'a str,
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(PathBuf),
}

pub struct Mailer {
    transport: Transport,
    from: Mailbox,
    site: String,
    /// Where mail goes, for the start-up log (no credentials).
    describe: String,
    /// Mails handed to background tasks and not yet sent (see [`Mailer::flush`]).
    in_flight: std::sync::atomic::AtomicUsize,
    idle: tokio::sync::Notify,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mailer({})", self.describe)
    }
}

impl Mailer {
    /// The mailer the settings ask for. A bad SMTP URL or sender stops start-up.
    pub fn new(settings: &Settings) -> anyhow::Result<Mailer> {
        let a = &settings.accounts;
        let from: Mailbox = a
            .mail_from
            .parse()
            .map_err(|e| anyhow::anyhow!("FACEGATE_MAIL_FROM: {e}"))?;
        let (transport, describe) = match &a.smtp_url {
            Some(url) => {
                let t = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
                    .map_err(|e| anyhow::anyhow!("FACEGATE_SMTP_URL: {e}"))?
                    .timeout(Some(std::time::Duration::from_secs(20)))
                    .build();
                let u = url::Url::parse(url.expose()).ok();
                let host = u
                    .as_ref()
                    .map(|u| {
                        format!(
                            "{}://{}:{}",
                            u.scheme(),
                            u.host_str().unwrap_or(""),
                            u.port().unwrap_or(0)
                        )
                    })
                    .unwrap_or_default();
                (Transport::Smtp(t), format!("SMTP {host}"))
            }
            None => {
                let dir = settings.data_dir.join("outbox");
                (
                    Transport::Outbox(dir.clone()),
                    format!("outbox {}", dir.display()),
                )
            }
        };
        Ok(Mailer {
            transport,
            from,
            site: a.site_name.clone(),
            describe,
            in_flight: Default::default(),
            idle: tokio::sync::Notify::new(),
        })
    }

    /// Where mail goes: "SMTP smtps://host:465" or "outbox DIR".
    pub fn describe(&self) -> &str {
        &self.describe
    }

    /// The outbox folder, when mail is written there.
    pub fn outbox(&self) -> Option<&std::path::Path> {
        match &self.transport {
            Transport::Outbox(d) => Some(d),
            Transport::Smtp(_) => None,
        }
    }

    /// Sends in a background task: the caller does not wait (its answer takes the same time
    /// whether or not a mail goes out). A failure is logged with the mail's kind, not its address.
    pub fn send_later(self: &std::sync::Arc<Self>, to: String, mail: Mail) {
        use std::sync::atomic::Ordering;
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let me = self.clone();
        tokio::spawn(async move {
            if let Err(e) = me.send(&to, &mail).await {
                tracing::warn!(kind = ?mail.kind, "mail not sent: {e}");
            }
            me.in_flight.fetch_sub(1, Ordering::SeqCst);
            me.idle.notify_waiters();
        });
    }

    /// Waits (at most `limit`) until every mail handed to [`Mailer::send_later`] is sent: what the
    /// CLI does before it exits.
    pub async fn flush(&self, limit: std::time::Duration) {
        use std::sync::atomic::Ordering;
        let _ = tokio::time::timeout(limit, async {
            while self.in_flight.load(Ordering::SeqCst) > 0 {
                let n = self.idle.notified();
                if self.in_flight.load(Ordering::SeqCst) == 0 {
                    break;
                }
                let _ = tokio::time::timeout(std::time::Duration::from_millis(50), n).await;
            }
        })
        .await;
    }

    /// Renders a mail to `to` (subject, plain text and HTML).
    pub fn render(&self, to: &str, mail: &Mail) -> anyhow::Result<Message> {
        let kind = mail.kind.as_str();
        let link = mail.link.as_deref().unwrap_or("");
        let subject = Subject {
            kind,
            site: &self.site,
        }
        .render()?;
        let text = TextBody {
            kind,
            site: &self.site,
            username: &mail.username,
            link,
            valid_for: &mail.valid_for,
            detail: &mail.detail,
        }
        .render()?;
        let html = HtmlBody {
            kind,
            site: &self.site,
            username: &mail.username,
            link,
            valid_for: &mail.valid_for,
            detail: &mail.detail,
        }
        .render()?;
        let to: Mailbox = to.parse().map_err(|e| anyhow::anyhow!("recipient: {e}"))?;
        Ok(Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject.trim())
            .multipart(MultiPart::alternative_plain_html(text, html))?)
    }

    /// Sends (or writes to the outbox) one mail.
    pub async fn send(&self, to: &str, mail: &Mail) -> anyhow::Result<()> {
        let message = self.render(to, mail)?;
        match &self.transport {
            Transport::Smtp(t) => {
                t.send(message).await?;
            }
            Transport::Outbox(dir) => {
                let dir = dir.clone();
                let bytes = message.formatted();
                tokio::task::spawn_blocking(move || write_eml(&dir, &bytes)).await??;
            }
        }
        Ok(())
    }
}

/// Writes one message into the outbox: a temporary file renamed into place, so a reader never sees
/// half a message; owner-only, since it may hold a password-reset link.
fn write_eml(dir: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let ms = facegate_store::now_ms();
    let name = format!("{ms:014}-{}", facegate_core::secret::random_token(6));
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(format!("{name}.eml")))?;
    Ok(())
}

/// An address with most of its local part hidden (`a***@example.com`), for mails to the old
/// address of an account.
pub fn masked(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}
