//! The device verification page (RFC 8628 3.3): the person types the code their device shows (or
//! opens `verification_uri_complete`), signs in as the device's client requires (by default face
//! with liveness, through the login core), sees which application asks for what, and approves or
//! denies. Entering codes is throttled per address; the approval form is CSRF-checked and
//! re-checks the session, so an old page cannot approve for a session that has since lapsed.
//! Approval is always asked for, even for first-party clients: a code can be sent to a person by
//! an attacker who started the request on their own device (RFC 8628 5.4).

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use facegate_core::login::{Decision, Refusal, Step};
use facegate_core::throttle::AttemptGuard;
use facegate_oidc::client::Client;
use facegate_oidc::engine::device::{DeviceAuthorization, normalize_user_code};
use serde::Deserialize;

use super::extract::{ClientAddr, CsrfForm};
use super::pages::{csrf_token, current_session, html_page};
use crate::server::error::AppError;
use crate::server::html::{self, escape};
use crate::server::login::{self, Pending};
use crate::server::provider::{self, Session};
use crate::server::state::AppState;

#[derive(Debug, Deserialize)]
pub struct DeviceQuery {
    user_code: Option<String>,
}

fn entry_page(csrf_cookie: Option<String>, typed: &str, error: Option<&str>, status: StatusCode) -> Response {
    let error = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    html_page(
        status,
        html::page(
            "Connect a device",
            &format!(
                "<h1>Connect a device</h1>{error}<p>Enter the code your device shows.</p>\
                 <form method=\"get\" action=\"/device\"><label>Code \
                 <input name=\"user_code\" value=\"{}\" autocomplete=\"off\" autocapitalize=\"characters\" \
                 spellcheck=\"false\" placeholder=\"BCDF-GHJK\" required autofocus></label>\
                 <button type=\"submit\">Continue</button></form>",
                escape(typed)
            ),
        ),
        csrf_cookie,
    )
}

fn approve_page(
    csrf: &str,
    cookie: Option<String>,
    code: &str,
    client: &Client,
    d: &DeviceAuthorization,
) -> Response {
    let items: String = facegate_oidc::scope::Scopes::parse(&d.scope)
        .iter()
        .map(|s| {
            let text = html::describe_scope(s)
                .map(String::from)
                .unwrap_or_else(|| s.to_string());
            format!("<li>{}</li>", escape(&text))
        })
        .collect();
    let shown = format!("{}-{}", &code[..4], &code[4..]);
    html_page(
        StatusCode::OK,
        html::page(
            "Connect a device",
            &format!(
                "<h1>{} on another device wants to</h1><ul>{items}</ul>\
                 <p>Only approve if you started this on your own device and it shows the code \
                 <strong id=\"user-code\" style=\"white-space:nowrap\">{}</strong>.</p>\
                 <form method=\"post\" action=\"/device\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"user_code\" value=\"{}\">\
                 <button type=\"submit\" name=\"decision\" value=\"approve\">Approve</button>\
                 <button type=\"submit\" name=\"decision\" value=\"deny\" class=\"secondary\">Deny</button></form>",
                escape(&client.name),
                escape(&shown),
                escape(csrf),
                escape(code)
            ),
        ),
        cookie,
    )
}

/// Looks a typed code up under the per-address throttle: the request and its client, or the page
/// to answer with.
async fn lookup(
    state: &AppState,
    ip: &str,
    typed: &str,
    cookie: Option<String>,
) -> Result<Result<(String, DeviceAuthorization, Client), Response>, AppError> {
    let keys = vec![format!("devcode-ip:{ip}")];
    if let Err(wait) = state.login_guard.begin(&keys).await {
        let secs = wait.as_secs().max(1);
        let mut r = entry_page(
            cookie,
            typed,
            Some(&format!("Too many wrong codes. Try again in {secs} seconds.")),
            StatusCode::TOO_MANY_REQUESTS,
        );
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Ok(Err(r));
    }
    let found = match normalize_user_code(typed) {
        Some(code) => provider::device_for_user_code(state, &code)
            .await?
            .map(|(d, c)| (code, d, c)),
        None => None,
    };
    state.login_guard.end(&keys, found.is_some()).await;
    Ok(found.ok_or_else(|| {
        entry_page(
            cookie,
            typed,
            Some("That code is not right, or it has expired. Check your device."),
            StatusCode::BAD_REQUEST,
        )
    }))
}

/// What the login policy says about this browser's session for a device request of `client`.
async fn decide(
    state: &AppState,
    headers: &HeaderMap,
    client: &Client,
    code: &str,
) -> Result<(Pending, Option<Session>, Decision), AppError> {
    let pending = Pending::for_device(&client.client_id, &format!("/device?user_code={code}"));
    let session = current_session(state, headers).await.map(|(s, _)| s);
    let decision = login::evaluate(state, &pending, session.as_ref()).await?;
    Ok((pending, session, decision))
}

/// Sends the person to the login step the policy says they owe, back to the device page after.
async fn to_login(
    state: &AppState,
    mut pending: Pending,
    session: Option<&Session>,
    step: Step,
) -> Result<Response, AppError> {
    // A signed-in person who owes more (step-up) continues as themselves.
    if step != Step::FirstFactor
        && let Some(s) = session
    {
        pending
            .txn
            .bind_user(&s.user_id)
            .map_err(|e| AppError::Internal(e.to_string()))?;
    }
    let id = login::create(state, &pending).await?;
    Ok(Redirect::to(&login::step_url(step, &id)).into_response())
}

fn refused(why: &str) -> AppError {
    AppError::Page(
        StatusCode::FORBIDDEN,
        format!("This device cannot be connected: {why}."),
    )
}

/// `GET /device`: the code entry form, or with `user_code` the sign-in it needs and the approval.
pub async fn page(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    Query(q): Query<DeviceQuery>,
) -> Result<Response, AppError> {
    let (csrf, cookie) = csrf_token(&state, &headers);
    let Some(typed) = q.user_code.filter(|c| !c.trim().is_empty()) else {
        return Ok(entry_page(cookie, "", None, StatusCode::OK));
    };
    let (code, d, client) = match lookup(&state, &ip, &typed, cookie.clone()).await? {
        Ok(found) => found,
        Err(page) => return Ok(page),
    };
    match decide(&state, &headers, &client, &code).await? {
        (pending, session, Decision::Owed(step)) => to_login(&state, pending, session.as_ref(), step).await,
        (_, _, Decision::Refused(Refusal::Unmet(why))) => Err(refused(&why)),
        (_, _, Decision::Refused(Refusal::LoginRequired)) => Err(refused("a sign-in is needed")),
        (_, _, Decision::Satisfied(_)) => Ok(approve_page(&csrf, cookie, &code, &client, &d)),
    }
}

/// `POST /device`: the person's answer (CSRF-checked), under a session that still meets the policy.
pub async fn submit(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm,
) -> Result<Response, AppError> {
    let typed = form.get("user_code").cloned().unwrap_or_default();
    let (code, d, client) = match lookup(&state, &ip, &typed, None).await? {
        Ok(found) => found,
        Err(page) => return Ok(page),
    };
    let (pending, session, decision) = decide(&state, &headers, &client, &code).await?;
    let (session, outcome) = match (session, decision) {
        (Some(s), Decision::Satisfied(outcome)) => (s, outcome),
        (s, Decision::Owed(step)) => return to_login(&state, pending, s.as_ref(), step).await,
        (_, Decision::Refused(Refusal::Unmet(why))) => return Err(refused(&why)),
        _ => return Err(refused("a sign-in is needed")),
    };
    let approve = form.get("decision").map(String::as_str) == Some("approve");
    // An account whose address is not confirmed yet approves no device, as it signs in to no client.
    if approve
        && let Some(user) = state.store.user(&session.user_id).await?
        && crate::server::accounts::must_confirm(&state, &user)
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?
    {
        return Err(refused("the account's email address is not confirmed yet"));
    }
    let done = provider::device_decide(&state, &d, approve.then_some((&session, &outcome))).await?;
    if !done {
        return Ok(entry_page(
            None,
            "",
            Some("This code was already answered, or it has expired."),
            StatusCode::BAD_REQUEST,
        ));
    }
    state
        .audit(
            facegate_core::audit::Event::new(
                facegate_core::audit::Kind::Device,
                if approve {
                    facegate_core::audit::Outcome::Ok
                } else {
                    facegate_core::audit::Outcome::Refused
                },
            )
            .user(Some(&session.user_id))
            .client(Some(&client.client_id))
            .ip(Some(&ip))
            .detail(format!(
                "{} {}",
                if approve { "approved" } else { "denied" },
                client.client_id
            )),
        )
        .await;
    let (title, text) = if approve {
        (
            "Device connected",
            format!(
                "{} is now signed in as you. You can go back to your device.",
                client.name
            ),
        )
    } else {
        (
            "Request denied",
            format!("{} was not given access. You can close this page.", client.name),
        )
    };
    Ok(html_page(StatusCode::OK, html::message(title, &text), None))
}
