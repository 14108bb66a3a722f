//! Signing keys: generation (RS256, ES256, EdDSA), PKCS#8 storage form, the public JWK Set, and
//! signing. Key ids are RFC 7638 thumbprints.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use std::sync::Arc;

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize, Serialize)]
pub enum SigningAlg {
    RS256,
    ES256,
    EdDSA,
}

impl SigningAlg {
    pub const ALL: [SigningAlg; 3] = [SigningAlg::RS256, SigningAlg::ES256, SigningAlg::EdDSA];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    fn jwt_alg(self) -> Algorithm {
        match self {
            Self::RS256 => Algorithm::RS256,
            Self::ES256 => Algorithm::ES256,
            Self::EdDSA => Algorithm::EdDSA,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key generation failed")]
    Generate,
    #[error("stored key {kid} is unusable: {reason}")]
    Load { kid: String, reason: String },
    #[error("no active signing key for {0}")]
    NoKey(&'static str),
    #[error("signing failed: {0}")]
    Sign(String),
}

/// Generates a new private key, returned as PKCS#8 DER (v1 for Ed25519, as jsonwebtoken expects).
pub fn generate(alg: SigningAlg) -> Result<Vec<u8>, KeyError> {
    let der = match alg {
        SigningAlg::RS256 => {
            let k = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| KeyError::Generate)?;
            k.as_der().map_err(|_| KeyError::Generate)?.as_ref().to_vec()
        }
        SigningAlg::ES256 => {
            let k =
                EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(|_| KeyError::Generate)?;
            k.to_pkcs8v1().map_err(|_| KeyError::Generate)?.as_ref().to_vec()
        }
        SigningAlg::EdDSA => Ed25519KeyPair::generate_pkcs8v1(&SystemRandom::new())
            .map_err(|_| KeyError::Generate)?
            .as_ref()
            .to_vec(),
    };
    Ok(der)
}

/// A private key ready to sign, with its public JWK. The key is parsed (and, for RSA, checked)
/// once at load; signing reuses it.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    pub alg: SigningAlg,
    pair: Pair,
    jwk: Jwk,
}

#[derive(Clone)]
enum Pair {
    Rsa(Arc<RsaKeyPair>),
    Ec(Arc<EcdsaKeyPair>),
    Ed(Arc<Ed25519KeyPair>),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({} {})", self.alg.as_str(), self.kid)
    }
}

impl SigningKey {
    /// Loads a PKCS#8 DER private key; the kid is the RFC 7638 thumbprint of its public JWK.
    pub fn from_pkcs8(alg: SigningAlg, der: &[u8]) -> Result<SigningKey, KeyError> {
        let load = |reason: String| KeyError::Load {
            kid: "?".into(),
            reason,
        };
        let encoding = match alg {
            SigningAlg::RS256 => EncodingKey::from_rsa_pem(pem("PRIVATE KEY", der).as_bytes()),
            SigningAlg::ES256 => EncodingKey::from_ec_pem(pem("PRIVATE KEY", der).as_bytes()),
            SigningAlg::EdDSA => Ok(EncodingKey::from_ed_der(der)),
        }
        .map_err(|e| load(e.to_string()))?;
        let mut jwk = Jwk::from_encoding_key(&encoding, alg.jwt_alg()).map_err(|e| load(e.to_string()))?;
        let kid = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|e| load(e.to_string()))?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        let unusable = |_| load("the private key does not parse".into());
        let pair = match alg {
            SigningAlg::RS256 => Pair::Rsa(Arc::new(RsaKeyPair::from_pkcs8(der).map_err(unusable)?)),
            SigningAlg::ES256 => Pair::Ec(Arc::new(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der).map_err(unusable)?,
            )),
            SigningAlg::EdDSA => Pair::Ed(Arc::new(Ed25519KeyPair::from_pkcs8(der).map_err(unusable)?)),
        };
        Ok(SigningKey { kid, alg, pair, jwk })
    }

    pub fn public_jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// Signs `claims` as a compact JWS with this key's `kid` (and `typ` when given, else `JWT`).
    pub fn sign<T: Serialize>(&self, claims: &T, typ: Option<&str>) -> Result<String, KeyError> {
        #[derive(Serialize)]
        struct JwsHeader<'a> {
            typ: &'a str,
            alg: &'a str,
            kid: &'a str,
        }
        let header = serde_json::to_vec(&JwsHeader {
            typ: typ.unwrap_or("JWT"),
            alg: self.alg.as_str(),
            kid: &self.kid,
        })
        .map_err(|e| KeyError::Sign(e.to_string()))?;
        let payload = serde_json::to_vec(claims).map_err(|e| KeyError::Sign(e.to_string()))?;
        let mut out = URL_SAFE_NO_PAD.encode(header);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(payload, &mut out);
        let failed = |_| KeyError::Sign("the signature could not be made".into());
        let signature = match &self.pair {
            Pair::Rsa(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), out.as_bytes(), &mut sig)
                    .map_err(failed)?;
                sig
            }
            Pair::Ec(k) => k
                .sign(&SystemRandom::new(), out.as_bytes())
                .map_err(failed)?
                .as_ref()
                .to_vec(),
            Pair::Ed(k) => k.sign(out.as_bytes()).as_ref().to_vec(),
        };
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut out);
        Ok(out)
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The keys in use: for each algorithm the newest active key signs; every published key (active or
/// retired but still within the lifetime of what it signed) appears in the JWK Set.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    signing: Vec<SigningKey>,
    published: Vec<SigningKey>,
}

impl KeySet {
    /// `signing` newest first per algorithm; `published` every key to list in the JWKS.
    pub fn new(signing: Vec<SigningKey>, published: Vec<SigningKey>) -> Self {
        Self { signing, published }
    }

    pub fn signer(&self, alg: SigningAlg) -> Result<&SigningKey, KeyError> {
        self.signing
            .iter()
            .find(|k| k.alg == alg)
            .ok_or(KeyError::NoKey(alg.as_str()))
    }

    pub fn algorithms(&self) -> Vec<SigningAlg> {
        SigningAlg::ALL
            .into_iter()
            .filter(|a| self.signing.iter().any(|k| k.alg == *a))
            .collect()
    }

    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: self.published.iter().map(|k| k.jwk.clone()).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    #[test]
    fn every_algorithm_signs_and_verifies_through_its_jwk() {
        for alg in SigningAlg::ALL {
            let key = SigningKey::from_pkcs8(alg, &generate(alg).unwrap()).unwrap();
            let token = key
                .sign(
                    &serde_json::json!({"sub": "alice", "aud": "c", "exp": 4_000_000_000u64}),
                    None,
                )
                .unwrap();
            let header = jsonwebtoken::decode_header(&token).unwrap();
            assert_eq!(header.kid.as_deref(), Some(key.kid.as_str()));
            let dk = DecodingKey::from_jwk(key.public_jwk()).unwrap();
            let mut v = Validation::new(alg.jwt_alg());
            v.set_audience(&["c"]);
            let data = jsonwebtoken::decode::<serde_json::Value>(&token, &dk, &v).unwrap();
            assert_eq!(data.claims["sub"], "alice");
            // The JWK Set shows public parts only.
            let json = serde_json::to_string(key.public_jwk()).unwrap();
            assert!(!json.contains("\"d\""), "{json}");
        }
    }

    #[test]
    fn reloading_gives_the_same_kid() {
        let der = generate(SigningAlg::ES256).unwrap();
        let a = SigningKey::from_pkcs8(SigningAlg::ES256, &der).unwrap();
        let b = SigningKey::from_pkcs8(SigningAlg::ES256, &der).unwrap();
        assert_eq!(a.kid, b.kid);
        assert!(SigningKey::from_pkcs8(SigningAlg::RS256, b"garbage").is_err());
    }
}
