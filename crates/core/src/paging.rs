//! Collection pages: `limit` and `marker` query parameters and the
//! `{"<collection>": [...], "_links": {"self", "next"}}` body.
//!
//! `limit` defaults to 20, at most 1000 (anything else is 400); `marker`
//! is the id of the last item of the previous page and must name an item
//! of the collection (else 400). `next` is present only when another page
//! exists. Unknown query parameters are 400 too, so a misspelled filter is
//! never silently ignored.

use crate::error::{ApiError, ApiResult};
use serde_json::{Value, json};

pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageQuery {
    pub limit: usize,
    pub marker: Option<String>,
}

/// Reads `limit`/`marker`, refusing parameters other than those and `filters`.
pub fn page_query(query: &[(String, String)], filters: &[&str]) -> ApiResult<PageQuery> {
    let mut q = PageQuery { limit: DEFAULT_LIMIT, marker: None };
    for (k, v) in query {
        match k.as_str() {
            "limit" => {
                q.limit = v.parse().ok().filter(|n| (1..=MAX_LIMIT).contains(n)).ok_or_else(|| {
                    ApiError::bad_request(format!("limit must be an integer from 1 to {MAX_LIMIT}, got {v:?}")).field("limit")
                })?;
            }
            "marker" => q.marker = Some(v.clone()),
            f if filters.contains(&f) => {}
            other => {
                let mut known = vec!["limit", "marker"];
                known.extend_from_slice(filters);
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {other:?}; this collection takes {}",
                    known.join(", ")
                ))
                .field(other));
            }
        }
    }
    Ok(q)
}

/// The values of a multi-valued enum filter (`?state=A&state=B`, OR
/// semantics); an unknown value is 400 naming the accepted ones.
pub fn enum_filter<T>(query: &[(String, String)], name: &str, parse: fn(&str) -> Option<T>, names: &[&str]) -> ApiResult<Vec<T>> {
    query
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| {
            parse(v).ok_or_else(|| {
                ApiError::bad_request(format!("unknown {name} {v:?}; use one of {}", names.join(", "))).field(name)
            })
        })
        .collect()
}

/// The value of a state filter (`virt_state`, `power_state`) that matches
/// every state: `?virt_state=ANY` lists servers in any state, which the
/// server lists' default filters would otherwise hide.
pub const ANY_STATE: &str = "ANY";

/// The time filters every list with timestamps takes. `since` is the
/// proposal's: what *began* at or after the time (a server's launch, a
/// task's creation, an item's start); `changes_since` is ours: what
/// changed in any way at or after it (for polling).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimeFilters {
    pub since: Option<String>,
    pub changes_since: Option<String>,
}

impl TimeFilters {
    /// Whether an item that began at `began` (`None`: not yet, such as a
    /// WAITING item) and last changed at `changed` passes both filters.
    pub fn keep(&self, began: Option<&str>, changed: &str) -> bool {
        self.since.as_deref().is_none_or(|t| began.is_some_and(|b| b >= t))
            && self.changes_since.as_deref().is_none_or(|t| changed >= t)
    }
}

/// Both time filters in canonical form (they compare as strings with
/// stored timestamps), or 400 naming the bad one.
pub fn time_filters(query: &[(String, String)]) -> ApiResult<TimeFilters> {
    let parse = |name: &str| {
        query
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| {
                crate::time::normalize(v).ok_or_else(|| {
                    ApiError::bad_request(format!("{name} {v:?} is not an RFC 3339 date-time, e.g. 2026-01-01T00:00:00Z"))
                        .field(name)
                })
            })
            .transpose()
    };
    Ok(TimeFilters { since: parse("since")?, changes_since: parse("changes_since")? })
}

/// The page of `items` (already filtered and ordered) after the marker,
/// and the marker of the next page if there is one.
pub fn page<T>(items: Vec<T>, id: impl Fn(&T) -> &str, q: &PageQuery) -> ApiResult<(Vec<T>, Option<String>)> {
    let start = match &q.marker {
        None => 0,
        Some(m) => {
            items.iter().position(|it| id(it) == m).map(|p| p + 1).ok_or_else(|| {
                ApiError::bad_request(format!("marker {m:?} is not an item of this collection; use the id of the last item of the previous page")).field("marker")
            })?
        }
    };
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(start).take(q.limit).collect();
    let next = if start + page.len() < total { page.last().map(|it| id(it).to_string()) } else { None };
    Ok((page, next))
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn href(base: &str, query: &[(String, String)]) -> String {
    if query.is_empty() {
        return base.to_string();
    }
    let q: Vec<String> = query.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
    format!("{base}?{}", q.join("&"))
}

/// The collection body. `query` is the request's; `next` keeps its filters
/// and limit and replaces the marker.
pub fn collection<T: serde::Serialize>(name: &str, items: Vec<T>, base: &str, query: &[(String, String)], next: Option<String>) -> Value {
    let mut links = json!({ "self": { "href": href(base, query) } });
    if let Some(marker) = next {
        let mut q: Vec<(String, String)> = query.iter().filter(|(k, _)| k != "marker").cloned().collect();
        q.push(("marker".into(), marker));
        links["next"] = json!({ "href": href(base, &q) });
    }
    json!({ name: items, "_links": links })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn limit_defaults_and_is_bounded() {
        assert_eq!(page_query(&[], &[]).unwrap().limit, 20);
        assert_eq!(page_query(&q(&[("limit", "1000")]), &[]).unwrap().limit, 1000);
        for bad in ["0", "1001", "-1", "x", ""] {
            assert_eq!(page_query(&q(&[("limit", bad)]), &[]).unwrap_err().field.as_deref(), Some("limit"));
        }
    }

    #[test]
    fn unknown_parameters_are_refused_and_filters_accepted() {
        assert!(page_query(&q(&[("state", "RUNNING")]), &["state"]).is_ok());
        assert_eq!(page_query(&q(&[("sate", "RUNNING")]), &["state"]).unwrap_err().field.as_deref(), Some("sate"));
    }

    #[test]
    fn filters_parse_every_value_or_name_the_bad_one() {
        use crate::model::TaskState;
        let names = TaskState::names();
        let got = enum_filter(&q(&[("state", "RUNNING"), ("limit", "2"), ("state", "ABORTED")]), "state", TaskState::parse, &names).unwrap();
        assert_eq!(got, [TaskState::Running, TaskState::Aborted]);
        assert_eq!(enum_filter(&q(&[("state", "running")]), "state", TaskState::parse, &names).unwrap_err().field.as_deref(), Some("state"));
        let t = time_filters(&q(&[("since", "2026-01-01T01:00:00+01:00")])).unwrap();
        assert_eq!(t.since.as_deref(), Some("2026-01-01T00:00:00.000000Z"));
        assert_eq!(t.changes_since, None);
        assert_eq!(time_filters(&q(&[("since", "today")])).unwrap_err().field.as_deref(), Some("since"));
        assert_eq!(time_filters(&q(&[("changes_since", "x")])).unwrap_err().field.as_deref(), Some("changes_since"));
        assert_eq!(time_filters(&[]).unwrap(), TimeFilters::default());
    }

    #[test]
    fn since_asks_when_a_thing_began_and_changes_since_when_it_last_changed() {
        let t = |since: Option<&str>, changes: Option<&str>| TimeFilters {
            since: since.map(str::to_string),
            changes_since: changes.map(str::to_string),
        };
        let (early, late) = ("2026-01-01T00:00:00.000000Z", "2026-06-01T00:00:00.000000Z");
        // Began early, changed late.
        assert!(!t(Some(late), None).keep(Some(early), late));
        assert!(t(None, Some(late)).keep(Some(early), late));
        assert!(t(Some(early), None).keep(Some(early), early), "at the time counts");
        // Not begun yet (a WAITING item): never "since" anything.
        assert!(!t(Some(early), None).keep(None, late));
        assert!(t(None, None).keep(None, early));
    }

    #[test]
    fn pages_follow_the_marker_and_stop_at_the_end() {
        let items: Vec<String> = (1..=5).map(|i| i.to_string()).collect();
        let first = PageQuery { limit: 2, marker: None };
        let (p, next) = page(items.clone(), |s| s, &first).unwrap();
        assert_eq!((p, next.as_deref()), (vec!["1".to_string(), "2".into()], Some("2")));
        let last = PageQuery { limit: 2, marker: Some("4".into()) };
        let (p, next) = page(items.clone(), |s| s, &last).unwrap();
        assert_eq!((p, next), (vec!["5".to_string()], None));
        let exact = PageQuery { limit: 5, marker: None };
        assert_eq!(page(items.clone(), |s| s, &exact).unwrap().1, None);
        let bad = PageQuery { limit: 2, marker: Some("9".into()) };
        assert_eq!(page(items, |s| s, &bad).unwrap_err().field.as_deref(), Some("marker"));
    }

    #[test]
    fn next_link_keeps_filters_and_replaces_the_marker() {
        let body = collection("things", vec![json!(1)], "/things", &q(&[("limit", "1"), ("marker", "a"), ("tag", "x y")]), Some("b".into()));
        assert_eq!(body["_links"]["self"]["href"], "/things?limit=1&marker=a&tag=x%20y");
        assert_eq!(body["_links"]["next"]["href"], "/things?limit=1&tag=x%20y&marker=b");
        let body = collection::<Value>("things", vec![], "/things", &[], None);
        assert!(body["_links"].get("next").is_none());
        assert_eq!(body["things"], json!([]));
    }
}
