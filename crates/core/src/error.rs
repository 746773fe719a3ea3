//! The one error type of the API and its JSON body.
//!
//! Every failure a route can produce is an [`ApiError`]; the guest glue turns
//! it into a response with [`ApiError::to_json`] as the body, so clients see
//! one shape everywhere:
//! `{"error": {"code": 400, "title": "Bad Request", "message": "...", "field": "spec.memory_mb"}}`.
//! Messages say what to fix, not only what went wrong.

use serde_json::{Value, json};
use std::fmt;

/// An API failure: an HTTP status, a message for the client and, for
/// validation failures, the JSON path of the offending field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub title: &'static str,
    pub message: String,
    pub field: Option<String>,
    /// Methods the route accepts; set only on 405, sent as the `Allow` header.
    pub allow: Option<String>,
    /// Seconds after which a retry may succeed, sent as `Retry-After`; set
    /// on every 503 (see [`RETRY_AFTER_SECS`]).
    pub retry_after: Option<u32>,
}

/// `Retry-After` of a 503. A dependency that is down (key-value store,
/// hypervisor, Keystone) fails each call within a second or two, and comes
/// back without a restart: a client retrying after this long neither
/// hammers it nor waits long once it is back.
pub const RETRY_AFTER_SECS: u32 = 2;

pub type ApiResult<T> = Result<T, ApiError>;

/// The reason phrase used as `title` for the statuses the API produces.
pub fn title_for(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        let retry_after = (status == 503).then_some(RETRY_AFTER_SECS);
        Self { status, title: title_for(status), message: message.into(), field: None, allow: None, retry_after }
    }

    /// 400: the request is malformed, names something missing, or duplicates.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    /// 401: no token, or a token the verifier does not accept.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, message)
    }

    /// 403: a known caller asking for something its role does not allow.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, message)
    }

    /// 404: also used for entities that exist but are not visible to the caller.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, message)
    }

    /// 405 with the methods the route does accept (for the `Allow` header).
    pub fn method_not_allowed(allow: &[&str]) -> Self {
        let allow = allow.join(", ");
        let mut e = Self::new(405, format!("this route accepts only: {allow}"));
        e.allow = Some(allow);
        e
    }

    /// 409: valid request, but not in the resource's current state.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(409, message)
    }

    /// 503: a dependency (key-value store, hypervisor) is busy or down; retry.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, message)
    }

    /// 500: a bug or corrupt stored data. The message is still shown, so it
    /// must not leak secrets; it names what to report.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, message)
    }

    /// Names the offending field (JSON path such as `spec.memory_mb`).
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// The error body; `field` is left out when there is none.
    pub fn to_json(&self) -> Value {
        let mut inner = json!({
            "code": self.status,
            "title": self.title,
            "message": self.message,
        });
        if let Some(field) = &self.field {
            inner["field"] = Value::String(field.clone());
        }
        json!({ "error": inner })
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status, self.title, self.message)?;
        if let Some(field) = &self.field {
            write!(f, " (field {field})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_names_the_field_when_there_is_one() {
        let e = ApiError::bad_request("memory_mb must be >= 0").field("spec.memory_mb");
        assert_eq!(
            e.to_json(),
            json!({"error": {"code": 400, "title": "Bad Request",
                   "message": "memory_mb must be >= 0", "field": "spec.memory_mb"}})
        );
    }

    #[test]
    fn error_body_omits_field_when_none() {
        let body = ApiError::not_found("no server abc").to_json();
        assert!(body["error"].get("field").is_none());
        assert_eq!(body["error"]["title"], "Not Found");
        assert_eq!(body["error"]["code"], 404);
    }

    #[test]
    fn every_503_says_when_to_retry() {
        assert_eq!(ApiError::unavailable("down").retry_after, Some(RETRY_AFTER_SECS));
        assert_eq!(ApiError::new(503, "down").retry_after, Some(RETRY_AFTER_SECS));
        assert_eq!(ApiError::internal("bug").retry_after, None);
        assert_eq!(ApiError::bad_request("no").retry_after, None);
    }

    #[test]
    fn method_not_allowed_carries_the_allow_list() {
        let e = ApiError::method_not_allowed(&["GET", "HEAD"]);
        assert_eq!(e.status, 405);
        assert_eq!(e.allow.as_deref(), Some("GET, HEAD"));
        assert!(e.message.contains("GET, HEAD"));
    }
}
