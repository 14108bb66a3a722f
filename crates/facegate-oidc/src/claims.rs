//! The `claims` request parameter (OpenID Connect Core 5.5): individual claims asked for in the ID
//! token and at the UserInfo endpoint, each possibly `essential` or with wanted values.

use std::collections::BTreeMap;

use facegate_core::User;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::OAuthError;

/// One requested claim: `null` in the request (no preferences) or an object with these members.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClaimRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub essential: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<Value>>,
}

/// The parsed `claims` parameter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClaimsRequest {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub userinfo: BTreeMap<String, ClaimRequest>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub id_token: BTreeMap<String, ClaimRequest>,
}

/// The claims about a person facegate can release, by name.
pub const PERSON_CLAIMS: &[&str] = &["name", "preferred_username", "email", "email_verified"];

impl ClaimsRequest {
    /// Parses the parameter: a JSON object whose `userinfo` and `id_token` members (others are
    /// ignored, as OIDC Core 5.5 says) map claim names to `null` or an object.
    pub fn parse(s: &str) -> Result<ClaimsRequest, OAuthError> {
        let bad = |d: &str| OAuthError::invalid_request(format!("claims: {d}"));
        let v: Value = serde_json::from_str(s).map_err(|_| bad("not valid JSON"))?;
        let obj = v.as_object().ok_or_else(|| bad("must be a JSON object"))?;
        let member = |name: &str| -> Result<BTreeMap<String, ClaimRequest>, OAuthError> {
            let Some(m) = obj.get(name) else {
                return Ok(BTreeMap::new());
            };
            let m = m
                .as_object()
                .ok_or_else(|| bad(&format!("{name} must be an object")))?;
            m.iter()
                .map(|(k, v)| {
                    let r = match v {
                        Value::Null => ClaimRequest::default(),
                        Value::Object(_) => serde_json::from_value(v.clone())
                            .map_err(|_| bad(&format!("{name}.{k} is not a claim request")))?,
                        _ => return Err(bad(&format!("{name}.{k} must be null or an object"))),
                    };
                    Ok((k.clone(), r))
                })
                .collect()
        };
        Ok(ClaimsRequest {
            userinfo: member("userinfo")?,
            id_token: member("id_token")?,
        })
    }

    /// The `acr` values asked for as essential in the ID token (`value` or `values`); `None` when
    /// acr is not requested as essential. `Some(empty)` means essential but with no value named.
    pub fn essential_acr(&self) -> Option<Vec<String>> {
        let acr = self.id_token.get("acr")?;
        if acr.essential != Some(true) {
            return None;
        }
        let mut out: Vec<String> = acr
            .value
            .iter()
            .chain(acr.values.iter().flatten())
            .filter_map(|v| v.as_str().map(String::from))
            .collect();
        out.dedup();
        Some(out)
    }
}

/// The person's claims among `names` (those facegate has: see [`PERSON_CLAIMS`]).
pub fn person_claims<'a>(user: &User, names: impl IntoIterator<Item = &'a String>) -> Map<String, Value> {
    let all = crate::id_token::user_claims(user, &crate::scope::Scopes::parse("profile email"));
    names
        .into_iter()
        .filter_map(|n| all.get(n).map(|v| (n.clone(), v.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_members_and_refuses_malformed_requests() {
        let c = ClaimsRequest::parse(
            r#"{"id_token":{"email":null,"acr":{"essential":true,"values":["urn:a","urn:b"]}},"userinfo":{"name":{"essential":true}},"other":1}"#,
        )
        .unwrap();
        assert!(c.id_token.contains_key("email"));
        assert_eq!(c.userinfo["name"].essential, Some(true));
        assert_eq!(
            c.essential_acr(),
            Some(vec!["urn:a".to_string(), "urn:b".to_string()])
        );
        let voluntary = ClaimsRequest::parse(r#"{"id_token":{"acr":{"values":["urn:a"]}}}"#).unwrap();
        assert_eq!(voluntary.essential_acr(), None, "not essential");
        let one = ClaimsRequest::parse(r#"{"id_token":{"acr":{"essential":true,"value":"urn:x"}}}"#).unwrap();
        assert_eq!(one.essential_acr(), Some(vec!["urn:x".to_string()]));
        for bad in [
            "",
            "[]",
            "{\"id_token\":[]}",
            "{\"userinfo\":{\"email\":true}}",
            "{\"id_token\":{\"acr\":{\"essential\":\"yes\"}}}",
        ] {
            assert!(ClaimsRequest::parse(bad).is_err(), "{bad}");
        }
    }
}
