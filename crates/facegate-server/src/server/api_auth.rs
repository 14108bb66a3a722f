//! Who may call the `/v1` APIs, and how often: OAuth access tokens (from the client_credentials grant,
//! or any access token carrying the scope), a per-client token-bucket rate limit (in memory, per
//! instance) and a monthly quota (persisted). [`authorize`] does all three for a handler; every
//! refusal is a [`Problem`] (401, 403, or 429 with `Retry-After`).

use axum::http::{HeaderMap, StatusCode};
use facegate_oidc::scope::Scopes;

use super::problem::Problem;
use super::state::AppState;

pub use super::settings::ApiSettings;

/// One client's overrides of the default limits (`facegate faces limits CLIENT ...`), kept in the
/// store's settings under `api_limits:<client_id>`.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientLimits {
    pub rate_per_sec: Option<f64>,
    pub burst: Option<u32>,
    pub monthly_quota: Option<i64>,
}

fn limits_key(client_id: &str) -> String {
    format!("api_limits:{client_id}")
}

/// A client's overrides (none set: all `None`).
pub async fn client_limits(
    store: &facegate_store::Store,
    client_id: &str,
) -> Result<ClientLimits, facegate_store::StoreError> {
    Ok(store
        .setting(&limits_key(client_id))
        .await?
        .and_then(|v| serde_json::from_str(&v).ok())
        .unwrap_or_default())
}

pub async fn set_client_limits(
    store: &facegate_store::Store,
    client_id: &str,
    limits: &ClientLimits,
) -> Result<(), facegate_store::StoreError> {
    let json = serde_json::to_string(limits).unwrap_or_else(|_| "{}".into());
    store.set_setting(&limits_key(client_id), &json).await
}

/// An authenticated API caller: the OAuth client and the scopes its token carries.
#[derive(Debug, Clone)]
pub struct ApiCaller {
    pub client_id: String,
    pub scopes: Scopes,
}

impl ApiCaller {
    /// 403 unless the token carries `scope`.
    pub fn require(&self, scope: &str) -> Result<(), Problem> {
        if self.scopes.contains(scope) {
            Ok(())
        } else {
            Err(Problem::insufficient_scope(scope))
        }
    }
}

/// The scope a `/v1` route needs, as a type (so the route's signature says it).
pub trait RouteScope: Send + Sync + 'static {
    const SCOPE: &'static str;
}

/// `faces:read`: detect, compare, search, list.
#[derive(Debug)]
pub struct FacesRead;
impl RouteScope for FacesRead {
    const SCOPE: &'static str = "faces:read";
}

/// `faces:write`: collections and indexing.
#[derive(Debug)]
pub struct FacesWrite;
impl RouteScope for FacesWrite {
    const SCOPE: &'static str = "faces:write";
}

/// `liveness`: liveness sessions.
#[derive(Debug)]
pub struct LivenessScope;
impl RouteScope for LivenessScope {
    const SCOPE: &'static str = "liveness";
}

/// The extractor of a `/v1` route: a valid bearer token with scope `S`, within its client's rate
/// limit and monthly quota; otherwise the request is refused as problem+json before its body is read.
#[derive(Debug)]
pub struct Bearer<S>(pub ApiCaller, pub std::marker::PhantomData<S>);

impl<S: RouteScope> axum::extract::FromRequestParts<AppState> for Bearer<S> {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Problem> {
        Ok(Bearer(
            authorize(state, &parts.headers, S::SCOPE).await?,
            std::marker::PhantomData,
        ))
    }
}

/// A valid bearer token with scope `S`, without counting the request against the client's rate limit
/// or quota (what belongs to a request already counted, such as the frames of a liveness session).
#[derive(Debug)]
pub struct Scoped<S>(pub ApiCaller, pub std::marker::PhantomData<S>);

impl<S: RouteScope> axum::extract::FromRequestParts<AppState> for Scoped<S> {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Problem> {
        let c = caller(state, &parts.headers).await?;
        c.require(S::SCOPE)?;
        Ok(Scoped(c, std::marker::PhantomData))
    }
}

/// The bearer token's caller, without scope or limit checks.
pub async fn caller(state: &AppState, headers: &HeaderMap) -> Result<ApiCaller, Problem> {
    let Some(token) = super::routes::bearer(headers) else {
        return Err(Problem::invalid_token(
            "send an access token: Authorization: Bearer <token> (client_credentials grant at /token)",
        ));
    };
    let t = super::provider::active_access_token(state, token)
        .await
        .ok_or_else(|| Problem::invalid_token("the access token is unknown, expired or revoked"))?;
    Ok(ApiCaller {
        client_id: t.client_id,
        scopes: Scopes::parse(&t.scope),
    })
}

/// Authenticates the bearer token, checks `scope`, then the client's rate limit and monthly quota.
pub async fn authorize(state: &AppState, headers: &HeaderMap, scope: &str) -> Result<ApiCaller, Problem> {
    admit(state, caller(state, headers).await?, scope).await
}

/// Checks `scope`, then the client's rate limit and monthly quota, for a caller authenticated
/// either way (a bearer token here, an AWS signature in the Rekognition-compatible API).
pub async fn admit(state: &AppState, c: ApiCaller, scope: &str) -> Result<ApiCaller, Problem> {
    c.require(scope)?;
    let d = &state.settings.api;
    let o = client_limits(&state.store, &c.client_id).await?;
    let s = ApiSettings {
        rate_per_sec: o.rate_per_sec.filter(|r| *r > 0.0).unwrap_or(d.rate_per_sec),
        burst: o.burst.filter(|b| *b > 0).unwrap_or(d.burst),
        monthly_quota: o.monthly_quota.filter(|q| *q >= 0).unwrap_or(d.monthly_quota),
        ..d.clone()
    };
    if let Err(wait) = state.take_api_token(&c.client_id, s.rate_per_sec, s.burst).await {
        return Err(Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "Too many requests",
            format!(
                "this client may make {} requests a second (bursts of {}); retry in {wait} s",
                s.rate_per_sec, s.burst
            ),
        )
        .with_retry_after(wait));
    }
    let now = super::now();
    let (month, next) = month_of(now);
    match state
        .store
        .count_request(&c.client_id, &month, s.monthly_quota)
        .await?
    {
        Some(_) => Ok(c),
        None => Err(Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "quota-exceeded",
            "Monthly quota exhausted",
            format!(
                "this client has used its {} requests for {month}; the quota renews at the start of next month (UTC)",
                s.monthly_quota
            ),
        )
        .with_retry_after((next - now).max(1) as u64)),
    }
}

/// The UTC calendar month of a Unix time as "YYYY-MM", and the Unix time the next month starts.
pub fn month_of(unix: i64) -> (String, i64) {
    let days = unix.div_euclid(86_400);
    let (y, m, _) = civil_from_days(days);
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    (format!("{y:04}-{m:02}"), days_from_civil(ny, nm, 1) * 86_400)
}

// Howard Hinnant's algorithms for the proleptic Gregorian calendar.
/// (year, month, day) of a count of days since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_and_their_ends() {
        assert_eq!(month_of(0), ("1970-01".into(), 31 * 86_400));
        // 2026-11-21T09:00:00Z -> December starts 2026-12-01T00:00:00Z (1796083200).
        assert_eq!(
            month_of(1_763_715_600 + 365 * 86_400),
            ("2026-11".into(), 1_796_083_200)
        );
        assert_eq!(month_of(1_796_083_199).0, "2026-11");
        assert_eq!(month_of(1_796_083_200).0, "2026-12");
        let (m, next) = month_of(1_798_761_599); // 2026-12-31T23:59:59Z
        assert_eq!((m.as_str(), next), ("2026-12", 1_798_761_600));
        assert_eq!(month_of(951_782_400).0, "2000-02"); // 2000-02-29
    }
}
