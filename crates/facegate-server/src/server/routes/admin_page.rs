//! The admin web page: sign in with the admin token, then list, create and delete clients — over the
//! same `register_client` and store calls as the CLI and the admin API.

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use facegate_core::secret::{constant_time_eq, random_token, storage_hash};
use facegate_core::throttle::AttemptGuard;
use facegate_oidc::client::{Client, ClientMetadata};

use super::page_form;
use super::pages::{PAGE_CSP, secure_html};
use crate::server::error::AppError;
use crate::server::state::AppState;
use crate::server::{cookies, html, provider};

const ADMIN_COOKIE: &str = "fg_admin";

fn cookie_name(state: &AppState) -> String {
    cookies::name(ADMIN_COOKIE, state.settings.secure_cookies())
}

pub(super) async fn signed_in(state: &AppState, headers: &HeaderMap) -> bool {
    match cookies::get(headers, &cookie_name(state)) {
        Some(v) => state.admin_session_valid(&storage_hash(&v)).await,
        None => false,
    }
}

fn page(body: &str, cookie: Option<String>, status: StatusCode) -> Response {
    secure_html(status, html::page("Admin", body), PAGE_CSP, cookie)
}

/// The admin CSRF token is derived from the admin session, so it needs no cookie of its own.
pub(super) fn csrf_for(headers: &HeaderMap, state: &AppState) -> String {
    cookies::get(headers, &cookie_name(state))
        .map(|v| storage_hash(&format!("csrf:{v}")))
        .unwrap_or_default()
}

fn client_rows(clients: &[Client], csrf: &str) -> String {
    clients
        .iter()
        .map(|c| {
            format!(
                "<tr><td><strong>{}</strong><br><code>{}</code><br><span class=\"muted\">{} · {}</span></td>\
                 <td><form method=\"post\" action=\"/admin/clients/delete\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
                 <input type=\"hidden\" name=\"client_id\" value=\"{}\"><button class=\"secondary\" type=\"submit\">Delete</button></form></td></tr>",
                html::escape(&c.name),
                html::escape(&c.client_id),
                html::escape(c.auth_method.as_str()),
                html::escape(&c.redirect_uris.join(" ")),
                html::escape(csrf),
                html::escape(&c.client_id)
            )
        })
        .collect()
}

async fn dashboard(
    state: &AppState,
    headers: &HeaderMap,
    notice: Option<String>,
    status: StatusCode,
) -> Result<Response, AppError> {
    let clients = state.store.clients().await?;
    let csrf = csrf_for(headers, state);
    let body = format!(
        "<nav><a href=\"/admin\">Clients</a><a href=\"/admin/users\">Users</a><a href=\"/admin/audit\">Audit log</a><a href=\"/admin/collections\">Face collections</a></nav><h1>Clients</h1>{}<table>{}</table><h1>Add a client</h1>\
         <form method=\"post\" action=\"/admin/clients\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <label for=\"name\">Name</label><input type=\"text\" id=\"name\" name=\"name\" required>\
         <label for=\"redirect_uri\">Redirect URI</label><input type=\"text\" id=\"redirect_uri\" name=\"redirect_uri\" required placeholder=\"https://app.example/callback\">\
         <label><input type=\"checkbox\" name=\"public\" value=\"1\"> Public client (single-page or native app, PKCE, no secret)</label>\
         <button type=\"submit\">Add client</button></form>\
         <form method=\"post\" action=\"/admin/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button class=\"secondary\" type=\"submit\">Sign out</button></form>",
        notice.unwrap_or_default(),
        client_rows(&clients, &csrf),
        html::escape(&csrf),
        html::escape(&csrf)
    );
    Ok(page(&body, None, status))
}

fn sign_in_form(error: Option<&str>, status: StatusCode) -> Response {
    let err = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", html::escape(e)))
        .unwrap_or_default();
    page(
        &format!(
            "<h1>facegate admin</h1>{err}<form method=\"post\" action=\"/admin/login\">\
             <label for=\"token\">Admin token</label><input type=\"password\" id=\"token\" name=\"token\" autocomplete=\"off\" required autofocus>\
             <button type=\"submit\">Sign in</button></form>"
        ),
        None,
        status,
    )
}

pub async fn index(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    if state.settings.admin_token.is_none() {
        return Err(AppError::Page(
            StatusCode::NOT_FOUND,
            "The admin page is off: set FACEGATE_ADMIN_TOKEN to turn it on.".into(),
        ));
    }
    if !signed_in(&state, &headers).await {
        return Ok(sign_in_form(None, StatusCode::OK));
    }
    dashboard(&state, &headers, None, StatusCode::OK).await
}

pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let Some(expected) = &state.settings.admin_token else {
        return Err(AppError::Page(
            StatusCode::NOT_FOUND,
            "The admin page is off.".into(),
        ));
    };
    let form = page_form(&pairs)?;
    // The sign-in form is guarded by its Origin (a cross-site post cannot sign anyone in).
    let origin_ok = headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .is_none_or(|o| o == state.settings.issuer_origin());
    // One count for the page, whichever instance and address a guess comes through (the
    // per-address bearer throttle counts too).
    let keys = vec!["admin-page".to_string()];
    if !origin_ok || state.login_guard.begin(&keys).await.is_err() {
        return Ok(sign_in_form(
            Some("Too many attempts; wait a while."),
            StatusCode::TOO_MANY_REQUESTS,
        ));
    }
    let token = form.get("token").map(String::as_str).unwrap_or("");
    if !constant_time_eq(token.as_bytes(), expected.expose().as_bytes()) {
        state.login_guard.end(&keys, false).await;
        return Ok(sign_in_form(
            Some("That is not the admin token."),
            StatusCode::UNAUTHORIZED,
        ));
    }
    state.login_guard.end(&keys, true).await;
    let raw = random_token(32);
    state.add_admin_session(&storage_hash(&raw)).await?;
    let secure = state.settings.secure_cookies();
    let cookie = cookies::set(&cookie_name(&state), &raw, Some(8 * 3600), secure, "Strict");
    let mut r = Redirect::to("/admin").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(r)
}

pub(super) async fn check(
    state: &AppState,
    headers: &HeaderMap,
    form: &std::collections::HashMap<String, String>,
) -> Result<(), AppError> {
    let expected = csrf_for(headers, state);
    let ok = signed_in(state, headers).await
        && form
            .get("csrf")
            .is_some_and(|c| !expected.is_empty() && constant_time_eq(c.as_bytes(), expected.as_bytes()));
    if ok {
        Ok(())
    } else {
        Err(AppError::Page(
            StatusCode::FORBIDDEN,
            "Sign in to the admin page again.".into(),
        ))
    }
}

pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let form = page_form(&pairs)?;
    check(&state, &headers, &form).await?;
    let meta = ClientMetadata {
        name: form.get("name").cloned(),
        redirect_uris: form
            .get("redirect_uri")
            .map(|u| vec![u.trim().to_string()])
            .unwrap_or_default(),
        token_endpoint_auth_method: form.get("public").map(|_| "none".to_string()),
        ..Default::default()
    };
    match provider::register_client(&state.store, meta, None).await {
        Ok((client, secret)) => {
            let notice = format!(
                "<p role=\"status\">Added <strong>{}</strong>: client_id <code>{}</code>{}</p>",
                html::escape(&client.name),
                html::escape(&client.client_id),
                secret
                    .map(|s| format!(
                        ", client_secret <code>{}</code> (shown once: copy it now)",
                        html::escape(&s)
                    ))
                    .unwrap_or_default()
            );
            dashboard(&state, &headers, Some(notice), StatusCode::CREATED).await
        }
        Err(e) => {
            dashboard(
                &state,
                &headers,
                Some(format!(
                    "<p class=\"error\" role=\"alert\">{}</p>",
                    html::escape(&e.description)
                )),
                StatusCode::BAD_REQUEST,
            )
            .await
        }
    }
}

pub async fn remove(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let form = page_form(&pairs)?;
    check(&state, &headers, &form).await?;
    let id = form.get("client_id").cloned().unwrap_or_default();
    let removed = state.store.delete_client(&id).await?;
    let notice = if removed {
        format!(
            "<p role=\"status\">Deleted <code>{}</code>.</p>",
            html::escape(&id)
        )
    } else {
        "<p class=\"error\">No such client.</p>".into()
    };
    dashboard(&state, &headers, Some(notice), StatusCode::OK).await
}

pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let form = page_form(&pairs)?;
    check(&state, &headers, &form).await?;
    if let Some(v) = cookies::get(&headers, &cookie_name(&state)) {
        state.remove_admin_session(&storage_hash(&v)).await;
    }
    let secure = state.settings.secure_cookies();
    let clear = cookies::set(&cookie_name(&state), "", Some(0), secure, "Strict");
    let mut r = Redirect::to("/admin").into_response();
    if let Ok(v) = HeaderValue::from_str(&clear) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(r)
}
