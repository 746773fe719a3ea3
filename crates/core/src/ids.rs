//! Identifiers: every entity is named by a UUID.
//!
//! Input accepts the hyphenated form or 32 hex digits (Keystone's form), in
//! any case; output is always lowercase hyphenated, so stored keys and JSON
//! never disagree on spelling.

use crate::error::{ApiError, ApiResult};
use uuid::Uuid;

/// The canonical (lowercase, hyphenated) form of `s`, if it is a UUID in
/// one of the accepted spellings. Braced and `urn:uuid:` forms are refused:
/// the API documents only the two forms above.
pub fn parse_uuid(s: &str) -> Option<String> {
    if s.len() != 36 && s.len() != 32 {
        return None;
    }
    Uuid::try_parse(s).ok().map(|u| u.hyphenated().to_string())
}

/// Like [`parse_uuid`], but a 400 naming `field` when `s` is not a UUID.
pub fn parse_id(field: &str, s: &str) -> ApiResult<String> {
    parse_uuid(s).ok_or_else(|| {
        ApiError::bad_request(format!(
            "{field} must be a UUID (36-character hyphenated or 32 hex digits), got {s:?}"
        ))
        .field(field)
    })
}

/// A fresh random (v4) id in canonical form.
pub fn new_id() -> String {
    Uuid::new_v4().hyphenated().to_string()
}

/// A uniformly random decimal digit (for hostname patterns), from the
/// same random source as [`new_id`].
pub fn random_digit() -> u8 {
    loop {
        let bytes = Uuid::new_v4().into_bytes();
        // Bytes 6 and 8 carry the version and variant bits; the rest are random.
        // Values >= 250 are skipped so every digit is equally likely.
        for (i, b) in bytes.iter().enumerate() {
            if i != 6 && i != 8 && *b < 250 {
                return b % 10;
            }
        }
    }
}

/// A fresh request id, `req-<uuid>`, for `X-OpenStack-Request-ID`.
///
/// Not a secret and not a key, so not drawn from the random source each
/// time (in a component that is a host call per request, ~1% of a GET):
/// 128 random bits taken once per instance, mixed with a counter through
/// splitmix64, make v4-shaped ids that repeat, within an instance or
/// across instances and hosts, only by the chance of a 122-bit collision.
pub fn new_request_id() -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEED: OnceLock<(u64, u64)> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let (a, b) = *SEED.get_or_init(|| {
        let r = Uuid::new_v4().as_u128();
        ((r >> 64) as u64, r as u64)
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let hi = splitmix64(a.wrapping_add(n));
    let lo = splitmix64(b ^ n.rotate_left(32));
    let id = uuid::Builder::from_random_bytes((((hi as u128) << 64) | lo as u128).to_be_bytes()).into_uuid();
    let mut out = String::with_capacity(40);
    out.push_str("req-");
    out.push_str(id.hyphenated().encode_lower(&mut Uuid::encode_buffer()));
    out
}

/// One step of splitmix64: a bijection of u64 that scatters a counter.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_v4_uuids_that_do_not_repeat() {
        let ids: std::collections::BTreeSet<String> = (0..10_000).map(|_| new_request_id()).collect();
        assert_eq!(ids.len(), 10_000);
        for id in ids.iter().take(50) {
            let uuid = id.strip_prefix("req-").expect("req- prefix");
            assert_eq!(parse_uuid(uuid).as_deref(), Some(uuid), "{id}");
            assert_eq!(Uuid::parse_str(uuid).unwrap().get_version_num(), 4, "{id}");
        }
    }

    #[test]
    fn accepts_hyphenated_and_bare_hex_in_any_case() {
        let canon = "0f1e2d3c-4b5a-6978-8a9b-acbdcedf0011";
        assert_eq!(parse_uuid(canon).as_deref(), Some(canon));
        assert_eq!(parse_uuid(&canon.to_uppercase()).as_deref(), Some(canon));
        assert_eq!(parse_uuid("0F1E2D3C4B5A69788A9BACBDCEDF0011").as_deref(), Some(canon));
    }

    #[test]
    fn refuses_other_spellings_and_garbage() {
        assert_eq!(parse_uuid("{0f1e2d3c-4b5a-6978-8a9b-acbdcedf0011}"), None);
        assert_eq!(parse_uuid("urn:uuid:0f1e2d3c-4b5a-6978-8a9b-acbdcedf0011"), None);
        assert_eq!(parse_uuid("small"), None);
        assert_eq!(parse_uuid("0f1e2d3c-4b5a-6978-8a9b-acbdcedf001z"), None);
    }

    #[test]
    fn parse_id_names_the_field_on_failure() {
        let e = parse_id("type_id", "nope").unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(e.field.as_deref(), Some("type_id"));
    }

    #[test]
    fn new_ids_are_canonical_and_distinct() {
        let (a, b) = (new_id(), new_id());
        assert_ne!(a, b);
        assert_eq!(parse_uuid(&a).as_deref(), Some(a.as_str()));
        assert!(new_request_id().starts_with("req-"));
        assert!((0..100).map(|_| random_digit()).all(|d| d < 10));
    }
}
