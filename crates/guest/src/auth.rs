//! Which verifier checks `X-Auth-Token`, chosen by configuration (Spin
//! variables, read once per instance):
//!
//! | variable | values |
//! |---|---|
//! | `auth_verifier` | `dev` (default): the development form of [`DevTokenVerifier`]; `keystone`: OpenStack Identity v3 tokens |
//! | `keystone_url` | Keystone's base URL, e.g. `http://127.0.0.1:5000` (the component must be allowed to reach it) |
//!
//! [`KeystoneVerifier`] asks Keystone to validate the token with the token
//! itself (`GET /v3/auth/tokens`, `X-Auth-Token` = `X-Subject-Token`, which
//! Keystone's default policy allows a token's own subject), so no service
//! credentials are needed. A check costs ~40 ms, so its result is cached in
//! the key-value store, shared by every component and host, keyed by the
//! token's SHA-256 and trusted for [`keystone::CACHE_FOR`] or until the
//! token expires, whichever is sooner. Records of expired tokens are
//! deleted by later cache writes (see [`keystone::expiry_bucket`]), so the
//! cache does not grow with every token ever seen.
//!
//! Tokens Keystone refuses are remembered too, for [`keystone::REFUSED_FOR`]
//! in one of [`keystone::REFUSED_SLOTS`] records (a bounded negative cache,
//! shared like the other), so a client sending garbage tokens over and over
//! costs Keystone one check per distinct token, not one per request. A
//! token longer than any Keystone issues is refused without a check.

use crate::kv::Kv;
use bytes::Bytes;
use http_body_util::Empty;
use sha2::{Digest, Sha256};
use spin_sdk::http::body::IncomingBodyExt;
use std::collections::BTreeSet;
use std::sync::OnceLock;
use std::time::SystemTime;
use vnext_core::auth::keystone::{self, CheckedToken, RefusedToken};
use vnext_core::auth::{DevTokenVerifier, Identity, Verifier};
use vnext_core::error::{ApiError, ApiResult};
use vnext_core::keys;

/// The verifier this deployment configured.
pub enum Configured {
    Dev(DevTokenVerifier),
    Keystone(KeystoneVerifier),
}

impl Verifier for Configured {
    async fn verify(&self, token: Option<&str>) -> ApiResult<Identity> {
        match self {
            Configured::Dev(v) => v.verify(token).await,
            Configured::Keystone(v) => v.verify(token).await,
        }
    }
}

/// What the variables say; the same for every request of an instance.
#[derive(Clone)]
enum Choice {
    Dev,
    Keystone { url: String },
}

static CHOICE: OnceLock<Choice> = OnceLock::new();

/// The configured verifier. A missing or unknown `auth_verifier` is a
/// deployment error (500 naming the variable), never a silent fallback to
/// the development form.
pub async fn configured() -> ApiResult<Configured> {
    let choice = match CHOICE.get() {
        Some(c) => c.clone(),
        None => {
            let c = read_choice().await?;
            CHOICE.get_or_init(|| c).clone()
        }
    };
    Ok(match choice {
        Choice::Dev => Configured::Dev(DevTokenVerifier),
        Choice::Keystone { url } => Configured::Keystone(KeystoneVerifier { url }),
    })
}

async fn read_choice() -> ApiResult<Choice> {
    let variable = |name: &'static str| async move {
        spin_sdk::variables::get(name).await.map_err(|e| {
            ApiError::internal(format!(
                "Spin variable {name} is not available to this component ({e}); declare it in spin.toml"
            ))
        })
    };
    match variable("auth_verifier").await?.trim() {
        "" | "dev" => Ok(Choice::Dev),
        "keystone" => {
            let url = variable("keystone_url").await?.trim().trim_end_matches('/').to_string();
            if url.is_empty() {
                return Err(ApiError::internal("auth_verifier is keystone but the Spin variable keystone_url is empty"));
            }
            Ok(Choice::Keystone { url })
        }
        other => Err(ApiError::internal(format!(
            "Spin variable auth_verifier is {other:?}; expected \"dev\" or \"keystone\""
        ))),
    }
}

/// OpenStack Identity v3 tokens, checked with Keystone and cached.
pub struct KeystoneVerifier {
    url: String,
}

impl Verifier for KeystoneVerifier {
    async fn verify(&self, token: Option<&str>) -> ApiResult<Identity> {
        let token = token
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::unauthorized("missing X-Auth-Token header: send a Keystone (v3) token"))?;
        if token.len() > keystone::MAX_TOKEN_BYTES {
            return Err(refused());
        }
        let now = SystemTime::now();
        let kv = Kv::open()?;
        let hash = hex_sha256(token);
        let key = keys::keystone_token(&hash);
        // An unreadable cache entry is only a cache miss.
        let cached: Option<CheckedToken> = kv.get_json(&key).ok().flatten();
        if let Some(c) = &cached {
            if let Some(identity) = c.identity_at(now) {
                return Ok(identity);
            }
            if c.expired_at(now) {
                return Err(ApiError::unauthorized("the Keystone token has expired; ask Keystone for a new one"));
            }
        }
        // Only tokens not known good pay this read; an unreadable record is a miss.
        let refused_key = keys::keystone_refused(keystone::refused_slot(&hash));
        if let Ok(Some(r)) = kv.get_json::<RefusedToken>(&refused_key)
            && r.refuses(&hash, now)
        {
            return Err(refused());
        }
        let checked = self.ask_keystone(token, now).await;
        match &checked {
            // Failing to write the cache costs the next request a check, nothing more.
            Ok(c) => {
                if kv.put_json(&key, c).is_ok() && cached.as_ref().is_none_or(|old| old.expires_at != c.expires_at) {
                    let _ = remember_expiry(&kv, &hash, &c.expires_at);
                }
                let _ = sweep_expired(&kv, now);
            }
            // Keystone's refusal is final for this token: remember it
            // (failing to is harmless: the next request asks again).
            Err(e) if e.status == 401 => {
                let _ = kv.put_json(&refused_key, &RefusedToken::new(&hash, now));
                if cached.is_some() {
                    let _ = kv.delete(&key);
                }
            }
            Err(_) => {}
        }
        checked.map(|c| c.identity())
    }
}

/// Buckets deleted per cache write at most (the rest wait for the next).
const SWEEP_AT_MOST: usize = 4;

/// Lists a cached token in the bucket of the hour it expires in.
fn remember_expiry(kv: &Kv, hash: &str, expires_at: &str) -> ApiResult<()> {
    let Some(hour) = keystone::expiry_bucket(expires_at) else { return Ok(()) };
    kv.update_json(&keys::keystone_tokens_expiring(&hour), |hashes: Option<BTreeSet<String>>| {
        let mut hashes = hashes.unwrap_or_default();
        hashes.insert(hash.to_string());
        Ok(hashes)
    })?;
    kv.update_json(keys::KEYSTONE_EXPIRY_BUCKETS, |hours: Option<BTreeSet<String>>| {
        let mut hours = hours.unwrap_or_default();
        hours.insert(hour.clone());
        Ok(hours)
    })?;
    Ok(())
}

/// Deletes the cache records of tokens that expired in hours now over, and
/// their buckets. Deleting twice is harmless, so racing sweepers are fine.
fn sweep_expired(kv: &Kv, now: SystemTime) -> ApiResult<()> {
    let hours: BTreeSet<String> = kv.get_json(keys::KEYSTONE_EXPIRY_BUCKETS)?.unwrap_or_default();
    let due = keystone::due_buckets(&hours, now, SWEEP_AT_MOST);
    if due.is_empty() {
        return Ok(());
    }
    for hour in &due {
        let bucket = keys::keystone_tokens_expiring(hour);
        let hashes: BTreeSet<String> = kv.get_json(&bucket)?.unwrap_or_default();
        for h in &hashes {
            kv.delete(&keys::keystone_token(h))?;
        }
        kv.delete(&bucket)?;
    }
    kv.update_json(keys::KEYSTONE_EXPIRY_BUCKETS, |hours: Option<BTreeSet<String>>| {
        let mut hours = hours.unwrap_or_default();
        for hour in &due {
            hours.remove(hour);
        }
        Ok(hours)
    })?;
    Ok(())
}

impl KeystoneVerifier {
    async fn ask_keystone(&self, token: &str, now: SystemTime) -> ApiResult<CheckedToken> {
        let url = format!("{}/v3/auth/tokens?nocatalog", self.url);
        let unreachable = |e: &dyn std::fmt::Display| {
            // Keystone's address is the deployment's business, not the client's.
            ApiError::unavailable(format!("the identity service (Keystone) could not check the token: {e}"))
        };
        let request = http::Request::get(&url)
            .header("x-auth-token", token)
            .header("x-subject-token", token)
            .body(Empty::<Bytes>::new())
            // Only a token that is not a valid header value gets here.
            .map_err(|_| ApiError::unauthorized("the X-Auth-Token is not a valid Keystone token"))?;
        let response = spin_sdk::http::send(request).await.map_err(|e| unreachable(&e))?;
        let status = response.status().as_u16();
        let body = response.into_body().bytes().await.map_err(|e| unreachable(&e))?;
        match status {
            200 => CheckedToken::from_validation(&body, now),
            401 | 404 => Err(refused()),
            _ => Err(unreachable(&format!("it answered {status}"))),
        }
    }
}

/// Keystone's refusal, the same whether Keystone was asked just now or
/// refused the token a moment ago.
fn refused() -> ApiError {
    ApiError::unauthorized("Keystone does not accept this token: it is unknown, expired or revoked")
}

fn hex_sha256(s: &str) -> String {
    Sha256::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}
