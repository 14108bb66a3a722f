//! The admin page's people: users (search, view, disable, force a password reset, remove faces,
//! delete), invitations, the audit log (filters, CSV export) and the face API's collections. Behind
//! the admin page's sign-in (`admin_page.rs`); every action is the same `server::accounts` call as
//! `facegate admin`.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use facegate_core::audit::Kind;
use facegate_store::AuditFilter;
use serde::Deserialize;

use super::admin_page::{check, csrf_for, signed_in};
use super::face::date;
use super::page_form;
use super::pages::{PAGE_CSP, secure_html};
use crate::server::accounts;
use crate::server::error::AppError;
use crate::server::now;
use crate::server::state::AppState;

fn render(t: &impl Template) -> Result<String, AppError> {
    t.render()
        .map_err(|e| AppError::Internal(format!("template: {e}")))
}

async fn guard(state: &AppState, headers: &HeaderMap) -> Result<Option<Response>, AppError> {
    if state.settings.admin_token.is_none() {
        return Err(AppError::Page(
            StatusCode::NOT_FOUND,
            "The admin page is off: set FACEGATE_ADMIN_TOKEN to turn it on.".into(),
        ));
    }
    Ok((!signed_in(state, headers).await).then(|| Redirect::to("/admin").into_response()))
}

struct UserLine {
    id: String,
    username: String,
    name: String,
    email: String,
    verified: bool,
    faces: i64,
    has_password: bool,
    disabled: bool,
    created: String,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct Users<'a> {
    site: &'a str,
    csrf: &'a str,
    q: &'a str,
    notice: &'a str,
    users: Vec<UserLine>,
    more: bool,
    next_page: i64,
}

#[derive(Debug, Deserialize)]
pub struct UsersQuery {
    q: Option<String>,
    page: Option<i64>,
}

const PAGE: i64 = 50;

pub async fn users(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<UsersQuery>,
) -> Result<Response, AppError> {
    if let Some(r) = guard(&state, &headers).await? {
        return Ok(r);
    }
    users_page(
        &state,
        &headers,
        q.q.as_deref().unwrap_or(""),
        q.page.unwrap_or(0),
        "",
        StatusCode::OK,
    )
    .await
}

async fn users_page(
    state: &AppState,
    headers: &HeaderMap,
    q: &str,
    page: i64,
    notice: &str,
    status: StatusCode,
) -> Result<Response, AppError> {
    let page = page.clamp(0, 100_000);
    let mut rows = state.store.users_page(q, PAGE + 1, page * PAGE).await?;
    let more = rows.len() as i64 > PAGE;
    rows.truncate(PAGE as usize);
    let users = rows
        .into_iter()
        .map(|r| UserLine {
            id: r.user.id.clone(),
            username: r.user.username.as_str().to_string(),
            name: r.user.name.clone().unwrap_or_default(),
            email: r
                .user
                .email
                .as_ref()
                .map(|e| e.as_str().to_string())
                .unwrap_or_default(),
            verified: r.user.email_verified,
            faces: r.faces,
            has_password: r.has_password,
            disabled: r.disabled_at.is_some(),
            created: date(r.user.created_at),
        })
        .collect();
    let csrf = csrf_for(headers, state);
    let body = render(&Users {
        site: &state.settings.accounts.site_name,
        csrf: &csrf,
        q,
        notice,
        users,
        more,
        next_page: page + 1,
    })?;
    Ok(secure_html(status, body, PAGE_CSP, None))
}

struct EventLine {
    at: String,
    kind: String,
    result: String,
    user_id: String,
    username: String,
    client: String,
    ip: String,
    detail: String,
}

fn lines(rows: Vec<facegate_store::AuditRow>) -> Vec<EventLine> {
    rows.into_iter()
        .map(|r| EventLine {
            at: date(r.at),
            kind: r.kind,
            result: r.result,
            username: r
                .username
                .clone()
                .or_else(|| r.user_id.clone())
                .unwrap_or_default(),
            user_id: r.user_id.unwrap_or_default(),
            client: r.client_id.unwrap_or_default(),
            ip: r.ip.unwrap_or_default(),
            detail: r.detail.unwrap_or_default(),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "admin/user.html")]
struct UserPage<'a> {
    site: &'a str,
    csrf: &'a str,
    notice: &'a str,
    id: &'a str,
    username: &'a str,
    name: &'a str,
    email: &'a str,
    verified: bool,
    created: String,
    has_password: bool,
    faces: i64,
    disabled: String,
    sessions: usize,
    events: Vec<EventLine>,
}

#[derive(Debug, Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
}

pub async fn user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> Result<Response, AppError> {
    if let Some(r) = guard(&state, &headers).await? {
        return Ok(r);
    }
    let Some(row) = state.store.user_row(&id).await? else {
        return Err(AppError::Page(StatusCode::NOT_FOUND, "No such user.".into()));
    };
    let events = state
        .store
        .audit_search(&AuditFilter {
            user: Some(id.clone()),
            limit: 20,
            ..Default::default()
        })
        .await?;
    let sessions = state.store.sessions_of(&id, now()).await?.len();
    let csrf = csrf_for(&headers, &state);
    let notice = match q.notice.as_deref() {
        Some("disabled") => "The account is disabled; its sessions and tokens have ended.",
        Some("enabled") => "The account is enabled again.",
        Some("reset") => "The password no longer works; a reset link went to their address.",
        Some("reset_no_email") => {
            "The password no longer works. The account has no email address, so no link was sent: make them a new password with `facegate user add` or delete the account."
        }
        Some("faces") => "Their faces are removed.",
        _ => "",
    };
    let body = render(&UserPage {
        site: &state.settings.accounts.site_name,
        csrf: &csrf,
        notice,
        id: &row.user.id,
        username: row.user.username.as_str(),
        name: row.user.name.as_deref().unwrap_or(""),
        email: row.user.email.as_ref().map(|e| e.as_str()).unwrap_or(""),
        verified: row.user.email_verified,
        created: date(row.user.created_at),
        has_password: row.has_password,
        faces: row.faces,
        disabled: row.disabled_at.map(date).unwrap_or_default(),
        sessions,
        events: lines(events),
    })?;
    Ok(secure_html(StatusCode::OK, body, PAGE_CSP, None))
}

fn internal(e: accounts::AccountError) -> AppError {
    AppError::Internal(e.to_string())
}

/// POST /admin/users/{id}/{action}: disable, enable, reset, delete (faces: see `remove_faces`).
pub async fn action(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let form = page_form(&pairs)?;
    check(&state, &headers, &form).await?;
    let Some(user) = state.store.user(&id).await? else {
        return Err(AppError::Page(StatusCode::NOT_FOUND, "No such user.".into()));
    };
    let back = |n: &str| Ok(Redirect::to(&format!("/admin/users/{}?notice={n}", user.id)).into_response());
    match action.as_str() {
        "disable" => {
            accounts::set_disabled(&state, &user.id, true, "admin page")
                .await
                .map_err(internal)?;
            back("disabled")
        }
        "enable" => {
            accounts::set_disabled(&state, &user.id, false, "admin page")
                .await
                .map_err(internal)?;
            back("enabled")
        }
        "reset" => match accounts::force_reset(&state, &user.id).await.map_err(internal)? {
            Some(true) => back("reset"),
            _ => back("reset_no_email"),
        },
        "delete" => {
            let typed = form
                .get("confirm")
                .map(|c| c.trim().to_lowercase())
                .unwrap_or_default();
            if typed != user.username.as_str() {
                return Err(AppError::Page(
                    StatusCode::BAD_REQUEST,
                    "Type the username exactly to delete the account.".into(),
                ));
            }
            accounts::delete_account(&state, &user.id, "admin page", None)
                .await
                .map_err(internal)?;
            users_page(&state, &headers, "", 0, "The account is deleted.", StatusCode::OK).await
        }
        _ => Err(AppError::Page(StatusCode::NOT_FOUND, "No such action.".into())),
    }
}

pub async fn remove_faces(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let form = page_form(&pairs)?;
    check(&state, &headers, &form).await?;
    facegate_core::face::delete_all_faces(&state.store, &id)
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(Redirect::to(&format!("/admin/users/{id}?notice=faces")).into_response())
}

pub async fn invite(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let form = page_form(&pairs)?;
    check(&state, &headers, &form).await?;
    let email = form
        .get("email")
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty());
    let link = accounts::invite(&state, email.as_deref())
        .await
        .map_err(internal)?;
    let notice = format!(
        "Invitation made{}: {link} (shown once).",
        if email.is_some() { " and mailed" } else { "" }
    );
    users_page(&state, &headers, "", 0, &notice, StatusCode::CREATED).await
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct Audit<'a> {
    site: &'a str,
    kinds: Vec<&'static str>,
    outcomes: [&'static str; 3],
    f_user: &'a str,
    f_client: &'a str,
    f_kind: &'a str,
    f_outcome: &'a str,
    f_from: &'a str,
    f_to: &'a str,
    error: Option<String>,
    events: Vec<EventLine>,
    limit: i64,
}

#[derive(Debug, Deserialize, Default)]
pub struct AuditQuery {
    user: Option<String>,
    client: Option<String>,
    kind: Option<String>,
    outcome: Option<String>,
    from: Option<String>,
    to: Option<String>,
    format: Option<String>,
}

/// `YYYY-MM-DD` as the Unix time of that day's start (UTC).
pub(crate) fn day(s: &str) -> Option<i64> {
    let mut it = s.trim().splitn(3, '-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: i64 = it.next()?.parse().ok()?;
    let d: i64 = it.next()?.parse().ok()?;
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some((era * 146_097 + doe - 719_468) * 86_400)
}

/// The filter of an audit query; an unreadable date is an error naming it.
pub(crate) fn filter(
    user: Option<&str>,
    client: Option<&str>,
    kind: Option<&str>,
    outcome: Option<&str>,
    from: Option<&str>,
    to: Option<&str>,
    limit: i64,
) -> Result<AuditFilter, String> {
    let date = |v: Option<&str>, name: &str| -> Result<Option<i64>, String> {
        match v.map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => day(v)
                .map(Some)
                .ok_or_else(|| format!("{name} must be a date like 2026-12-01")),
        }
    };
    Ok(AuditFilter {
        user: user.map(String::from),
        client: client.map(String::from),
        kind: kind.map(String::from),
        outcome: outcome.map(String::from),
        from: date(from, "From")?,
        to: date(to, "To")?.map(|t| t + 86_399),
        limit,
    })
}

/// One CSV field: quoted, quotes doubled, and a leading `= + - @` defused so that a spreadsheet
/// does not run it as a formula.
pub(crate) fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The audit rows as CSV (RFC 4180), with a header line.
pub(crate) fn audit_csv(rows: &[facegate_store::AuditRow]) -> String {
    let mut out = String::from("time_utc,unix_time,event,outcome,user_id,username,client_id,ip,detail\r\n");
    for r in rows {
        let fields = [
            date(r.at),
            r.at.to_string(),
            r.kind.clone(),
            r.result.clone(),
            r.user_id.clone().unwrap_or_default(),
            r.username.clone().unwrap_or_default(),
            r.client_id.clone().unwrap_or_default(),
            r.ip.clone().unwrap_or_default(),
            r.detail.clone().unwrap_or_default(),
        ];
        out.push_str(&fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    out
}

pub async fn audit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<AuditQuery>,
) -> Result<Response, AppError> {
    if let Some(r) = guard(&state, &headers).await? {
        return Ok(r);
    }
    let csv = q.format.as_deref() == Some("csv");
    let limit = if csv { 100_000 } else { 200 };
    let f = filter(
        q.user.as_deref(),
        q.client.as_deref(),
        q.kind.as_deref(),
        q.outcome.as_deref(),
        q.from.as_deref(),
        q.to.as_deref(),
        limit,
    );
    let (rows, error) = match &f {
        Ok(f) => (state.store.audit_search(f).await?, None),
        Err(e) => (Vec::new(), Some(e.clone())),
    };
    if csv && error.is_none() {
        let mut r = audit_csv(&rows).into_response();
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        );
        h.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment; filename=\"facegate-audit.csv\""),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return Ok(r);
    }
    let body = render(&Audit {
        site: &state.settings.accounts.site_name,
        kinds: Kind::ALL.iter().map(|k| k.as_str()).collect(),
        outcomes: ["ok", "failed", "refused"],
        f_user: q.user.as_deref().unwrap_or(""),
        f_client: q.client.as_deref().unwrap_or(""),
        f_kind: q.kind.as_deref().unwrap_or(""),
        f_outcome: q.outcome.as_deref().unwrap_or(""),
        f_from: q.from.as_deref().unwrap_or(""),
        f_to: q.to.as_deref().unwrap_or(""),
        error,
        events: lines(rows),
        limit,
    })?;
    Ok(secure_html(StatusCode::OK, body, PAGE_CSP, None))
}

struct CollectionLine {
    id: String,
    faces: i64,
    pack: String,
    created: String,
}

#[derive(Template)]
#[template(path = "admin/collections.html")]
struct Collections<'a> {
    site: &'a str,
    collections: Vec<CollectionLine>,
}

pub async fn collections(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    if let Some(r) = guard(&state, &headers).await? {
        return Ok(r);
    }
    let collections = state
        .store
        .collections()
        .await?
        .into_iter()
        .map(|c| CollectionLine {
            id: c.id,
            faces: c.face_count,
            pack: c.pack,
            created: date(c.created_at),
        })
        .collect();
    let body = render(&Collections {
        site: &state.settings.accounts.site_name,
        collections,
    })?;
    Ok(secure_html(StatusCode::OK, body, PAGE_CSP, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_csv() {
        assert_eq!(day("1970-01-01"), Some(0));
        assert_eq!(day("2026-12-01"), Some(1_796_083_200));
        assert_eq!(day("2026-13-01"), None);
        assert_eq!(day("yesterday"), None);
        assert_eq!(csv_field("a \"b\", c"), "\"a \"\"b\"\", c\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
    }
}
