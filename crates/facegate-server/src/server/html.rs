//! The provider's own pages: login, consent, errors, form_post, logout. Plain HTML with every value
//! escaped; readable on a phone and a laptop, in light and dark.

/// A page with the face-capture script (camera preview, upload fallback).
pub fn face_page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{} · facegate</title><style>{STYLE}</style><link rel=\"stylesheet\" href=\"/static/face-capture.css\">\
         <script src=\"/static/face-capture.js\" defer></script></head><body><main>{body}</main></body></html>",
        escape(title)
    )
}

/// The capture widget of face-capture.js: posts each picture to `endpoint` with the form's fields.
/// The capture form of the face pages (see static/face-capture.js for its contract).
#[derive(Debug)]
pub struct CaptureForm<'a> {
    /// Where pictures (or the liveness result) are posted.
    pub endpoint: &'a str,
    /// Live guidance endpoint.
    pub check: Option<&'a str>,
    pub shots: u32,
    pub auto: bool,
    pub hidden: &'a [(&'a str, &'a str)],
    /// Extra HTML before the camera (e.g. a username field).
    pub extra: &'a str,
    pub button: &'a str,
    /// Liveness check endpoint: the button runs a check instead of taking a picture.
    pub liveness: Option<&'a str>,
}

impl CaptureForm<'_> {
    pub fn render(&self) -> String {
        let CaptureForm {
            endpoint,
            check,
            shots,
            auto,
            hidden,
            extra,
            button,
            liveness,
        } = *self;
        capture_form(endpoint, check, shots, auto, hidden, extra, button, liveness)
    }
}

#[allow(clippy::too_many_arguments)]
fn capture_form(
    endpoint: &str,
    check: Option<&str>,
    shots: u32,
    auto: bool,
    hidden: &[(&str, &str)],
    extra: &str,
    button: &str,
    liveness: Option<&str>,
) -> String {
    let check_attr = check
        .map(|c| format!(" data-check=\"{}\"", escape(c)))
        .unwrap_or_default();
    // A liveness check runs on the camera's live frames: no photo upload then.
    let (liveness_attr, upload) = match liveness {
        Some(l) => (format!(" data-liveness=\"{}\"", escape(l)), ""),
        None => (
            String::new(),
            "<div id=\"face-upload\"><label for=\"face-file\">Or choose a photo</label><input type=\"file\" id=\"face-file\" accept=\"image/jpeg,image/png,image/webp\"></div>",
        ),
    };
    let inputs: String = hidden
        .iter()
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(k),
                escape(v)
            )
        })
        .collect();
    format!(
        "<form id=\"face-form\" data-endpoint=\"{}\"{check_attr}{liveness_attr} data-shots=\"{shots}\" data-auto=\"{}\">{inputs}{extra}\
         <div class=\"face-camera\"><video id=\"face-video\" playsinline muted></video><canvas id=\"face-overlay\"></canvas></div>\
         <p id=\"face-status\" role=\"status\" aria-live=\"polite\"></p>\
         <button type=\"button\" id=\"face-capture\">{}</button>\
         {upload}</form>",
        escape(endpoint),
        if auto { 1 } else { 0 },
        escape(button)
    )
}

pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// The pages' style sheet, shared with the templates (`templates/style.css`).
const STYLE: &str = include_str!("../../templates/style.css");

pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{} · facegate</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>",
        escape(title)
    )
}

#[derive(askama::Template)]
#[template(path = "login.html")]
struct Login<'a> {
    site: &'a str,
    req: &'a str,
    csrf: &'a str,
    client_name: Option<&'a str>,
    username: &'a str,
    error: Option<&'a str>,
    face: bool,
    signup: bool,
}

/// Renders a template; a template that cannot render (it never should) gives the error page's text.
fn rendered(t: &impl askama::Template) -> String {
    t.render().unwrap_or_else(|e| {
        tracing::error!("template: {e}");
        page(
            "Cannot continue",
            "<h1>Cannot continue</h1><p>Something went wrong. Try again.</p>",
        )
    })
}

/// The name of the site in the titles of these pages.
const SITE: &str = "facegate";

pub fn login(
    req: Option<&str>,
    csrf: &str,
    client_name: Option<&str>,
    username: &str,
    error: Option<&str>,
    face: bool,
    signup: bool,
) -> String {
    rendered(&Login {
        site: SITE,
        req: req.unwrap_or(""),
        csrf,
        client_name,
        username,
        error,
        face,
        signup,
    })
}

pub(crate) fn describe_scope(s: &str) -> Option<&'static str> {
    Some(match s {
        "openid" => "Know who you are (a stable identifier)",
        "profile" => "Your name and username",
        "email" => "Your email address",
        "offline_access" => "Stay signed in when you are away (refresh tokens)",
        "faces:read" => "Read the face collections of the face API",
        "faces:write" => "Add and remove faces in the face API",
        "liveness" => "Run liveness checks through the face API",
        _ => return None,
    })
}

#[derive(askama::Template)]
#[template(path = "consent.html")]
struct Consent<'a> {
    site: &'a str,
    req: &'a str,
    csrf: &'a str,
    client_name: &'a str,
    scopes: Vec<String>,
}

/// Every scope being granted is listed, those without a description by name.
pub fn consent(req: &str, csrf: &str, client_name: &str, scopes: &[&str]) -> String {
    rendered(&Consent {
        site: SITE,
        req,
        csrf,
        client_name,
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
    })
}

/// "Sign out?" with a form that posts the logout parameters back with a CSRF token.
#[derive(askama::Template)]
#[template(path = "logout_confirm.html")]
struct LogoutConfirm<'a> {
    site: &'a str,
    csrf: &'a str,
    client_name: Option<&'a str>,
    carry: &'a [(&'a str, &'a str)],
}

pub fn logout_confirm(csrf: &str, client_name: Option<&str>, carry: &[(&str, &str)]) -> String {
    rendered(&LogoutConfirm {
        site: SITE,
        csrf,
        client_name,
        carry,
    })
}

#[derive(askama::Template)]
#[template(path = "message.html")]
struct Message<'a> {
    site: &'a str,
    title: &'a str,
    message: &'a str,
}

pub fn error(message: &str) -> String {
    rendered(&Message {
        site: SITE,
        title: "Cannot continue",
        message,
    })
}

pub fn message(title: &str, message: &str) -> String {
    rendered(&Message {
        site: SITE,
        title,
        message,
    })
}

/// OAuth 2.0 Form Post Response Mode: an auto-submitting form (with a button for no-script browsers).
/// The CSP source of the one script of a form_post page (`document.forms[0].submit()`).
pub const FORM_POST_SCRIPT_HASH: &str = "sha256-ePniVEkSivX/c7XWBGafqh8tSpiRrKiqYeqbG7N1TOE=";

pub fn form_post(action: &str, fields: &[(String, String)]) -> String {
    let inputs: String = fields
        .iter()
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(k),
                escape(v)
            )
        })
        .collect();
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Continue</title></head>\
         <body><form method=\"post\" action=\"{}\">{inputs}<noscript><button type=\"submit\">Continue</button></noscript></form>\
         <script>document.forms[0].submit()</script></body></html>",
        escape(action)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_post_script_hash_matches_its_script() {
        use base64::Engine as _;
        use sha2::Digest as _;
        let page = form_post("https://a/cb", &[]);
        let script = page
            .split("<script>")
            .nth(1)
            .and_then(|s| s.split("</script>").next())
            .unwrap();
        let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(script.as_bytes()));
        assert_eq!(FORM_POST_SCRIPT_HASH, format!("sha256-{hash}"));
    }

    #[test]
    fn values_are_escaped() {
        let p = login(
            Some("r\"><script>"),
            "c",
            Some("<b>App</b>"),
            "x' onload='y",
            Some("<i>"),
            true,
            true,
        );
        assert!(!p.contains("<script>") && !p.contains("<b>App") && !p.contains("x' onload"));
        assert!(form_post("https://a/\"x", &[("k".into(), "<v>".into())]).contains("&lt;v&gt;"));
    }
}
