//! The pages. Every value from outside (claims, notes, messages) goes through `escape`.

use crate::db::{Note, Session};

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// `YYYY-MM-DD HH:MM UTC` for seconds since the epoch (days-to-civil, proleptic Gregorian).
pub fn utc(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60
    )
}

fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><link rel=\"stylesheet\" href=\"/style.css\"></head>\
         <body><header><a class=\"brand\" href=\"/\">Secret notes</a><span class=\"tag\">an example app that signs in with facegate</span></header>\
         <main>{body}</main></body></html>",
        escape(title)
    )
}

pub fn message(title: &str, text: &str) -> String {
    layout(
        title,
        &format!(
            "<h1>{}</h1><p id=\"message\">{}</p><p><a class=\"button\" href=\"/\">Back</a></p>",
            escape(title),
            escape(text)
        ),
    )
}

pub fn signed_out() -> String {
    layout(
        "Secret notes",
        "<h1>Your secret notes</h1>\
         <p>Notes only you can read. Sign in with your face (or your password) at facegate to see them.</p>\
         <p><a id=\"sign-in\" class=\"button\" href=\"/login\">Sign in with facegate</a></p>",
    )
}

/// What `amr` values mean, in words.
fn method(amr: &str) -> &str {
    match amr {
        "face" => "your face",
        "pwd" => "a password",
        "mfa" => "more than one factor",
        "otp" => "a one-time code",
        "hwk" => "a security key",
        other => other,
    }
}

pub fn notes_page(s: &Session, notes: &[Note]) -> String {
    let who = &s.who;
    let display = who
        .name
        .as_deref()
        .or(who.username.as_deref())
        .unwrap_or(&who.sub);
    let how = if who.amr.is_empty() {
        "an unstated method".to_string()
    } else {
        who.amr.iter().map(|a| method(a)).collect::<Vec<_>>().join(" + ")
    };
    let csrf = escape(&s.csrf);
    let mut list = String::new();
    for n in notes {
        list.push_str(&format!(
            "<li class=\"note\"><p class=\"text\">{}</p><div class=\"meta\"><time>{}</time>\
             <form method=\"post\" action=\"/notes/delete\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <input type=\"hidden\" name=\"id\" value=\"{}\"><button class=\"link\" type=\"submit\">delete</button></form></div></li>",
            escape(&n.text),
            utc(n.created_at),
            n.id
        ));
    }
    if notes.is_empty() {
        list.push_str("<li class=\"empty\" id=\"no-notes\">No notes yet. Write the first one.</li>");
    }
    let amr_json = serde_json::to_string(&who.amr).unwrap_or_default();
    let body = format!(
        "<section class=\"who\"><p>Signed in as <strong id=\"who\">{}</strong>{} with {}.</p>\
         <table class=\"claims\"><tr><th>sub</th><td id=\"sub\"><code>{}</code></td></tr>\
         <tr><th>amr</th><td id=\"amr\"><code>{}</code></td></tr>\
         <tr><th>acr</th><td id=\"acr\"><code>{}</code></td></tr>\
         <tr><th>auth_time</th><td id=\"auth-time\">{}</td></tr></table>\
         <form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <button id=\"sign-out\" class=\"secondary\" type=\"submit\">Sign out</button></form></section>\
         <h1>Your secret notes</h1>\
         <form class=\"add\" method=\"post\" action=\"/notes\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <textarea id=\"note-text\" name=\"text\" rows=\"3\" maxlength=\"2000\" required placeholder=\"Something only you should read\"></textarea>\
         <button id=\"add-note\" type=\"submit\">Save note</button></form>\
         <ul class=\"notes\">{list}</ul>",
        escape(display),
        who.email
            .as_deref()
            .map(|e| format!(" <span class=\"email\">({})</span>", escape(e)))
            .unwrap_or_default(),
        escape(&how),
        escape(&who.sub),
        escape(&amr_json),
        escape(who.acr.as_deref().unwrap_or("(none)")),
        escape(who.auth_time.as_deref().unwrap_or("(not sent)")),
    );
    layout("Secret notes", &body)
}

pub const STYLE: &str = r#"
:root { --accent: #0f766e; --ink: #1f2937; --muted: #6b7280; --line: #e5e7eb; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); background: #f8fafc; }
header { display: flex; gap: 1rem; align-items: baseline; padding: .9rem 1.5rem; background: #fff; border-bottom: 1px solid var(--line); }
.brand { font-weight: 700; font-size: 1.15rem; color: var(--accent); text-decoration: none; }
.tag { color: var(--muted); font-size: .9rem; }
main { max-width: 44rem; margin: 1.5rem auto; padding: 0 1.5rem; }
h1 { font-size: 1.5rem; margin: 1.5rem 0 .75rem; }
.who { background: #fff; border: 1px solid var(--line); border-radius: .6rem; padding: 1rem 1.25rem; }
.who p { margin: 0 0 .5rem; }
.email { color: var(--muted); }
table.claims { border-collapse: collapse; margin: .25rem 0 .75rem; font-size: .9rem; }
table.claims th { text-align: left; padding: .15rem 1rem .15rem 0; color: var(--muted); font-weight: 500; }
table.claims code { font-size: .85rem; word-break: break-all; }
button, .button { display: inline-block; font: inherit; padding: .5rem 1rem; border-radius: .4rem; border: 1px solid var(--accent);
  background: var(--accent); color: #fff; cursor: pointer; text-decoration: none; }
button.secondary { background: #fff; color: var(--accent); }
button.link { background: none; border: none; color: var(--muted); padding: 0; text-decoration: underline; font-size: .85rem; }
form.add { display: flex; flex-direction: column; gap: .5rem; align-items: flex-start; }
textarea { width: 100%; font: inherit; padding: .6rem; border: 1px solid var(--line); border-radius: .4rem; }
ul.notes { list-style: none; padding: 0; }
li.note { background: #fffbeb; border: 1px solid #fde68a; border-radius: .5rem; padding: .75rem 1rem; margin: .6rem 0; }
li.note .text { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; }
li.note .meta { display: flex; gap: 1rem; align-items: center; color: var(--muted); font-size: .8rem; margin-top: .35rem; }
li.note form { margin: 0; }
li.empty { color: var(--muted); }
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
    }

    #[test]
    fn formats_utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_795_000_000), "2026-11-18 11:06 UTC");
    }
}
