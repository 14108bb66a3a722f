//! Cookies: reading from the request, writing with the right attributes. `__Host-` names and
//! `Secure` when the issuer is https; always HttpOnly and SameSite.

use axum::http::HeaderMap;
use axum::http::header::COOKIE;

pub const SESSION: &str = "fg_session";
pub const CSRF: &str = "fg_csrf";

pub fn name(base: &str, secure: bool) -> String {
    if secure {
        format!("__Host-{base}")
    } else {
        base.to_string()
    }
}

pub fn get(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// A Set-Cookie value. `max_age` None makes a session cookie; Some(0) deletes.
pub fn set(name: &str, value: &str, max_age: Option<i64>, secure: bool, same_site: &str) -> String {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite={same_site}");
    if let Some(a) = max_age {
        c.push_str(&format!("; Max-Age={a}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    c
}
