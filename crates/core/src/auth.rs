//! Who is calling: [`Identity`], and the [`Verifier`] that turns an
//! `X-Auth-Token` into one.
//!
//! Routes depend only on the trait. [`DevTokenVerifier`] is the development
//! form, like Nova's noauth2: `<user-uuid>:<project-uuid>` or
//! `<user-uuid>:<project-uuid>:admin`. The Keystone verifier needs HTTP and
//! the key-value store, so it lives in the guest crate; what it decides
//! without I/O is here, in [`keystone`]: reading Keystone's answer into an
//! [`Identity`], and how long a checked token stays trusted.

use crate::error::{ApiError, ApiResult};
use crate::ids::parse_uuid;

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user_id: String,
    /// The project the token is scoped to.
    pub project_id: String,
    /// Elevated caller: sees and may do everything.
    pub admin: bool,
}

impl Identity {
    /// Whether the caller may act inside `project_id`.
    pub fn can_act_in(&self, project_id: &str) -> bool {
        self.admin || self.project_id == project_id
    }
}

/// Turns the raw `X-Auth-Token` value (None when the header is absent) into
/// an identity, or 401.
///
/// `async` because real verifiers ask an identity service. Components run
/// single-threaded, so the future need not be `Send`.
#[allow(async_fn_in_trait)]
pub trait Verifier {
    async fn verify(&self, token: Option<&str>) -> ApiResult<Identity>;
}

/// The development verifier (no secrets: anyone may claim any identity, so
/// it must only be used on trusted setups).
#[derive(Debug, Clone, Copy, Default)]
pub struct DevTokenVerifier;

impl DevTokenVerifier {
    /// The parsing itself, synchronous, for tests and callers that need no trait.
    pub fn parse(token: Option<&str>) -> ApiResult<Identity> {
        const FORM: &str = "expected X-Auth-Token: <user-uuid>:<project-uuid> or <user-uuid>:<project-uuid>:admin";
        let token = token
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::unauthorized(format!("missing X-Auth-Token header; {FORM}")))?;
        let parts: Vec<&str> = token.split(':').collect();
        let admin = match parts.as_slice() {
            [_, _] => false,
            [_, _, "admin"] => true,
            _ => return Err(ApiError::unauthorized(format!("malformed X-Auth-Token; {FORM}"))),
        };
        let user_id = parse_uuid(parts[0])
            .ok_or_else(|| ApiError::unauthorized(format!("the token's user id is not a UUID; {FORM}")))?;
        let project_id = parse_uuid(parts[1])
            .ok_or_else(|| ApiError::unauthorized(format!("the token's project id is not a UUID; {FORM}")))?;
        Ok(Identity { user_id, project_id, admin })
    }
}

#[cfg(test)]
mod secret_tests {
    use super::same_secret;

    #[test]
    fn only_the_same_secret_matches() {
        assert!(same_secret(b"s3cret", b"s3cret"));
        for wrong in [&b""[..], b"s", b"s3cre", b"s3cret!", b"S3cret", b"s3creT", b"\0\0\0\0\0\0"] {
            assert!(!same_secret(wrong, b"s3cret"), "{wrong:?}");
        }
        assert!(same_secret(b"", b""));
    }
}

impl Verifier for DevTokenVerifier {
    async fn verify(&self, token: Option<&str>) -> ApiResult<Identity> {
        Self::parse(token)
    }
}

/// Compares a secret sent by a caller with the expected one in time that
/// depends only on the expected secret's length, not on where the first
/// difference is, so response times cannot be used to guess it byte by
/// byte. (An early return on a length mismatch would only tell the
/// length, but there is none: the loop always runs over `expected`.)
pub fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    let mut diff = u8::from(given.len() != expected.len());
    for (i, e) in expected.iter().enumerate() {
        diff |= e ^ given.get(i).copied().unwrap_or(0);
    }
    // Keeps the optimiser from turning the fold into an early exit.
    std::hint::black_box(diff) == 0
}

/// The target-independent half of the Keystone (OpenStack Identity v3)
/// verifier: the answer of `GET /v3/auth/tokens` read into an identity, and
/// the cache record that spares a Keystone round trip (~40 ms) per request.
pub mod keystone {
    use super::Identity;
    use crate::error::{ApiError, ApiResult};
    use crate::ids::parse_uuid;
    use serde::{Deserialize, Serialize};
    use std::time::{Duration, SystemTime};

    /// The Keystone role that makes a caller elevated (admin).
    pub const ADMIN_ROLE: &str = "admin";

    /// How long a token checked with Keystone is trusted without asking
    /// again (bounded by the token's own expiry): a revoked token keeps
    /// working at most this long, as with keystonemiddleware's default
    /// `token_cache_time`.
    pub const CACHE_FOR: Duration = Duration::from_secs(300);

    /// How long a token Keystone refused (unknown, expired, revoked) is
    /// refused again without asking: a flood of garbage tokens costs
    /// Keystone at most one check per distinct token per this long. Short,
    /// because a refusal is cheap to repeat and a token Keystone did not
    /// know yet (fernet keys still propagating) should not stay refused.
    pub const REFUSED_FOR: Duration = Duration::from_secs(60);
    /// Slots of the negative cache (the first 3 hex digits of the token's
    /// SHA-256): it holds at most this many records, whatever is sent. A
    /// token refused later evicts the one in its slot; the bound holds
    /// while the distinct garbage tokens of one [`REFUSED_FOR`] fit.
    pub const REFUSED_SLOTS: usize = 4096;
    /// Longer than any token Keystone issues (fernet tokens are at most
    /// 255 bytes, JWS tokens ~800): refused without asking Keystone.
    pub const MAX_TOKEN_BYTES: usize = 4096;

    /// The negative-cache slot of a token (see [`REFUSED_SLOTS`]).
    pub fn refused_slot(token_sha256_hex: &str) -> &str {
        token_sha256_hex.get(..3).unwrap_or(token_sha256_hex)
    }

    /// A token Keystone refused, as cached under
    /// [`crate::keys::keystone_refused`].
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct RefusedToken {
        /// SHA-256 (hex) of the token: the slot holds one token among many.
        pub token_sha256: String,
        pub refused_at: String,
    }

    impl RefusedToken {
        pub fn new(token_sha256_hex: &str, now: SystemTime) -> Self {
            RefusedToken { token_sha256: token_sha256_hex.to_string(), refused_at: crate::time::format(now) }
        }

        /// Whether this record still refuses the token of this hash at `now`.
        pub fn refuses(&self, token_sha256_hex: &str, now: SystemTime) -> bool {
            self.token_sha256 == token_sha256_hex
                && crate::time::parse(&self.refused_at).is_some_and(|at| now < at + REFUSED_FOR && at <= now + REFUSED_FOR)
        }
    }

    #[derive(Deserialize)]
    struct Body {
        token: Token,
    }

    #[derive(Deserialize)]
    struct Token {
        expires_at: String,
        user: Named,
        project: Option<Named>,
        #[serde(default)]
        roles: Vec<Role>,
    }

    #[derive(Deserialize)]
    struct Named {
        id: String,
    }

    #[derive(Deserialize)]
    struct Role {
        name: String,
    }

    /// A token Keystone vouched for, as cached under
    /// [`crate::keys::keystone_token`].
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct CheckedToken {
        pub user_id: String,
        pub project_id: String,
        pub admin: bool,
        /// The token's expiry, from Keystone.
        pub expires_at: String,
        /// When Keystone last confirmed it.
        pub checked_at: String,
    }

    impl CheckedToken {
        /// Reads Keystone's 200 answer to a token validation (checked at
        /// `now`). A token scoped to no project, or naming ids that are not
        /// UUIDs (Keystone's are 32 hex digits), is refused with 401.
        pub fn from_validation(body: &[u8], now: SystemTime) -> ApiResult<CheckedToken> {
            let body: Body = serde_json::from_slice(body)
                .map_err(|e| ApiError::unavailable(format!("Keystone answered a token check with unexpected JSON: {e}")))?;
            let t = body.token;
            let project = t.project.ok_or_else(|| {
                ApiError::unauthorized("the Keystone token is not scoped to a project; ask Keystone for a project-scoped token")
            })?;
            let user_id = parse_uuid(&t.user.id)
                .ok_or_else(|| ApiError::unauthorized(format!("the token's user id {:?} is not a UUID", t.user.id)))?;
            let project_id = parse_uuid(&project.id)
                .ok_or_else(|| ApiError::unauthorized(format!("the token's project id {:?} is not a UUID", project.id)))?;
            crate::time::parse(&t.expires_at)
                .ok_or_else(|| ApiError::unavailable(format!("Keystone gave an unreadable expires_at {:?}", t.expires_at)))?;
            Ok(CheckedToken {
                user_id,
                project_id,
                admin: t.roles.iter().any(|r| r.name == ADMIN_ROLE),
                expires_at: t.expires_at,
                checked_at: crate::time::format(now),
            })
        }

        /// The identity, while the record may be trusted at `now`: before
        /// the token expires and within [`CACHE_FOR`] of the last check.
        pub fn identity_at(&self, now: SystemTime) -> Option<Identity> {
            let expires = crate::time::parse(&self.expires_at)?;
            let checked = crate::time::parse(&self.checked_at)?;
            (now < expires && now < checked + CACHE_FOR).then(|| self.identity())
        }

        pub fn identity(&self) -> Identity {
            Identity { user_id: self.user_id.clone(), project_id: self.project_id.clone(), admin: self.admin }
        }

        /// Whether the token itself has expired at `now` (an expired token
        /// is 401 without asking Keystone).
        pub fn expired_at(&self, now: SystemTime) -> bool {
            crate::time::parse(&self.expires_at).is_none_or(|e| now >= e)
        }
    }

    /// Cache records are deleted once their tokens have expired: each is
    /// listed in the bucket of the hour its token expires in
    /// (`YYYY-MM-DDTHH`, UTC), and the names of non-empty buckets are kept in
    /// one record, so whoever writes a cache record also deletes the buckets
    /// of past hours without scanning keys. This is that hour.
    pub fn expiry_bucket(expires_at: &str) -> Option<String> {
        let t = crate::time::parse(expires_at)?;
        Some(crate::time::format(t)[..13].to_string())
    }

    /// The buckets among `buckets` whose hour is over at `now`, oldest
    /// first, at most `max` (the rest wait for the next write).
    pub fn due_buckets<'a>(buckets: impl IntoIterator<Item = &'a String>, now: SystemTime, max: usize) -> Vec<String> {
        let current = crate::time::format(now)[..13].to_string();
        let mut due: Vec<String> = buckets.into_iter().filter(|b| **b < current).cloned().collect();
        due.sort();
        due.truncate(max);
        due
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn refused_tokens_are_refused_for_a_while_in_a_bounded_number_of_slots() {
            let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
            let hash = "abcdef0123";
            let r = RefusedToken::new(hash, now);
            assert!(r.refuses(hash, now));
            assert!(r.refuses(hash, now + REFUSED_FOR - Duration::from_secs(1)));
            assert!(!r.refuses(hash, now + REFUSED_FOR), "expired");
            assert!(!r.refuses("abcdef9999", now), "another token of the same slot");
            assert_eq!(refused_slot(hash), "abc");
            assert_eq!(16usize.pow(3), REFUSED_SLOTS, "3 hex digits make the slots");
        }

        #[test]
        fn tokens_are_bucketed_by_the_hour_they_expire_and_past_hours_are_due() {
            assert_eq!(expiry_bucket("2030-01-01T05:59:59.999999Z").as_deref(), Some("2030-01-01T05"));
            assert_eq!(expiry_bucket("2030-01-01T06:00:00Z").as_deref(), Some("2030-01-01T06"));
            assert_eq!(expiry_bucket("soon"), None);
            let buckets: Vec<String> =
                ["2030-01-01T06", "2030-01-01T04", "2029-12-31T23", "2030-01-01T05"].map(String::from).into();
            let now = crate::time::parse("2030-01-01T05:30:00Z").unwrap();
            assert_eq!(due_buckets(&buckets, now, 8), ["2029-12-31T23", "2030-01-01T04"], "the current hour is not over");
            assert_eq!(due_buckets(&buckets, now, 1), ["2029-12-31T23"], "oldest first, at most max");
        }

        const USER: &str = "0123456789abcdef0123456789abcdef";
        const PROJECT: &str = "fedcba9876543210fedcba9876543210";

        fn answer(roles: &[&str], project: bool) -> Vec<u8> {
            let roles: Vec<_> = roles.iter().map(|r| serde_json::json!({"id": "r", "name": r})).collect();
            let mut token = serde_json::json!({
                "expires_at": "2030-01-01T00:00:00.000000Z",
                "user": {"id": USER, "name": "alice", "domain": {"id": "default"}},
                "roles": roles,
                "methods": ["password"],
            });
            if project {
                token["project"] = serde_json::json!({"id": PROJECT, "name": "demo"});
            }
            serde_json::to_vec(&serde_json::json!({ "token": token })).unwrap()
        }

        fn at(s: &str) -> SystemTime {
            crate::time::parse(s).unwrap()
        }

        #[test]
        fn keystone_ids_become_canonical_uuids_and_the_admin_role_elevates() {
            let now = at("2029-01-01T00:00:00Z");
            let member = CheckedToken::from_validation(&answer(&["member", "reader"], true), now).unwrap();
            assert_eq!(member.user_id, "01234567-89ab-cdef-0123-456789abcdef");
            assert_eq!(member.project_id, "fedcba98-7654-3210-fedc-ba9876543210");
            assert!(!member.admin);
            assert!(CheckedToken::from_validation(&answer(&["member", "admin"], true), now).unwrap().admin);
        }

        #[test]
        fn an_unscoped_token_is_401() {
            let e = CheckedToken::from_validation(&answer(&[], false), SystemTime::now()).unwrap_err();
            assert_eq!(e.status, 401);
        }

        #[test]
        fn a_cached_check_is_trusted_until_the_cache_time_or_the_expiry() {
            let checked = at("2029-01-01T00:00:00Z");
            let t = CheckedToken::from_validation(&answer(&["member"], true), checked).unwrap();
            assert!(t.identity_at(at("2029-01-01T00:04:59Z")).is_some());
            assert!(t.identity_at(at("2029-01-01T00:05:01Z")).is_none(), "older than CACHE_FOR: ask again");
            let mut soon = t.clone();
            soon.expires_at = "2029-01-01T00:01:00Z".into();
            assert!(soon.identity_at(at("2029-01-01T00:01:00Z")).is_none(), "expired");
            assert!(soon.expired_at(at("2029-01-01T00:01:00Z")));
            assert!(!t.expired_at(at("2029-01-01T00:01:00Z")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const U: &str = "11111111-1111-4111-8111-111111111111";
    const P: &str = "22222222222242228222222222222222";

    #[test]
    fn member_token_gives_a_non_admin_identity_in_canonical_form() {
        let id = DevTokenVerifier::parse(Some(&format!("{U}:{P}"))).unwrap();
        assert_eq!(id.user_id, U);
        assert_eq!(id.project_id, "22222222-2222-4222-8222-222222222222");
        assert!(!id.admin);
        assert!(id.can_act_in("22222222-2222-4222-8222-222222222222"));
        assert!(!id.can_act_in("other"));
    }

    #[test]
    fn admin_suffix_elevates() {
        let id = DevTokenVerifier::parse(Some(&format!("{U}:{P}:admin"))).unwrap();
        assert!(id.admin && id.can_act_in("anything"));
    }

    #[test]
    fn missing_or_malformed_tokens_are_401() {
        for bad in [None, Some(""), Some("x:y"), Some(U), Some(&format!("{U}:{P}:root")[..]),
                    Some(&format!("{U}:{P}:admin:x")[..])] {
            assert_eq!(DevTokenVerifier::parse(bad).unwrap_err().status, 401, "{bad:?}");
        }
    }
}
