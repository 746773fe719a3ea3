//! Who is calling: [`Identity`], and the [`Verifier`] that turns an
//! `X-Auth-Token` into one.
//!
//! Routes depend only on the trait, so a Keystone verifier (which needs
//! HTTP and a cache, hence lives in the guest crate) can be added later
//! without touching them. [`DevTokenVerifier`] is the development form,
//! like Nova's noauth2: `<user-uuid>:<project-uuid>` or
//! `<user-uuid>:<project-uuid>:admin`.

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

impl Verifier for DevTokenVerifier {
    async fn verify(&self, token: Option<&str>) -> ApiResult<Identity> {
        Self::parse(token)
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
