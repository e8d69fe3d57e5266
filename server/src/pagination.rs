//! Seek pagination: opaque cursors over `(created_at, id)`, never offsets.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use crate::error::AppError;

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 100;

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
pub struct PageParams {
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to 100 (default 50).
    pub limit: Option<i64>,
}

impl PageParams {
    pub fn limit(&self) -> Result<i64, AppError> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(_) => Err(AppError::bad_request(format!(
                "`limit` must be from 1 to {MAX_LIMIT}"
            ))),
        }
    }

    pub fn after(&self) -> Result<Option<(DateTime<Utc>, Uuid)>, AppError> {
        self.cursor
            .as_deref()
            .filter(|c| !c.is_empty())
            .map(decode)
            .transpose()
    }
}

pub fn encode(created_at: DateTime<Utc>, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{id}", created_at.timestamp_micros()))
}

fn decode(cursor: &str) -> Result<(DateTime<Utc>, Uuid), AppError> {
    let bad = || AppError::bad_request("`cursor` is not a cursor this server issued");
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let (micros, id) = raw.split_once(':').ok_or_else(bad)?;
    let micros: i64 = micros.parse().map_err(|_| bad())?;
    Ok((
        DateTime::from_timestamp_micros(micros).ok_or_else(bad)?,
        id.parse().map_err(|_| bad())?,
    ))
}

/// Keeps the rows of a boxed query that come after `after` in `(time, id)` order,
/// newest first (`desc`) or oldest first (`asc`).
#[macro_export]
macro_rules! seek {
    ($query:expr, desc, $time:expr, $id:expr, $after:expr) => {{
        use diesel::{BoolExpressionMethods as _, ExpressionMethods as _, QueryDsl as _};
        match $after {
            Some((at, id)) => $query.filter($time.lt(at).or($time.eq(at).and($id.lt(id)))),
            None => $query,
        }
    }};
    ($query:expr, asc, $time:expr, $id:expr, $after:expr) => {{
        use diesel::{BoolExpressionMethods as _, ExpressionMethods as _, QueryDsl as _};
        match $after {
            Some((at, id)) => $query.filter($time.gt(at).or($time.eq(at).and($id.gt(id)))),
            None => $query,
        }
    }};
}

/// A page request, checked: rows after `after`, at most `limit`.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub after: Option<(DateTime<Utc>, Uuid)>,
    pub limit: i64,
}

impl PageParams {
    /// The checked page (400 for a bad cursor or limit).
    pub fn page(&self) -> Result<Page, AppError> {
        Ok(Page {
            after: self.after()?,
            limit: self.limit()?,
        })
    }
}

/// A cursor over `(name, id)`, for lists in name order (services).
pub fn encode_name(name: &str, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("n:{id}:{name}"))
}

impl PageParams {
    /// The `(name, id)` a name-ordered page continues after.
    pub fn after_name(&self) -> Result<Option<(String, Uuid)>, AppError> {
        let Some(cursor) = self.cursor.as_deref().filter(|c| !c.is_empty()) else {
            return Ok(None);
        };
        let bad = || AppError::bad_request("`cursor` is not a cursor this server issued");
        let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
        let raw = String::from_utf8(raw).map_err(|_| bad())?;
        let rest = raw.strip_prefix("n:").ok_or_else(bad)?;
        let (id, name) = rest.split_once(':').ok_or_else(bad)?;
        Ok(Some((name.to_owned(), id.parse().map_err(|_| bad())?)))
    }
}

/// The cursor for the page after `items`, when the page was full.
pub fn next<T>(items: &[T], limit: i64, key: impl Fn(&T) -> (DateTime<Utc>, Uuid)) -> Option<String> {
    if items.len() as i64 == limit {
        items.last().map(|last| {
            let (t, id) = key(last);
            encode(t, id)
        })
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let t = DateTime::from_timestamp_micros(1_763_700_000_123_456).unwrap();
        let id = Uuid::from_u128(42);
        let params = PageParams {
            cursor: Some(encode(t, id)),
            limit: None,
        };
        assert_eq!(params.after().unwrap(), Some((t, id)));
        for bad in ["x", "!!!", &URL_SAFE_NO_PAD.encode("1:notauuid")] {
            let params = PageParams {
                cursor: Some(bad.to_owned()),
                limit: None,
            };
            assert!(params.after().is_err(), "{bad}");
        }
        assert!(
            PageParams {
                cursor: None,
                limit: Some(0)
            }
            .limit()
            .is_err()
        );
        assert!(
            PageParams {
                cursor: None,
                limit: Some(101)
            }
            .limit()
            .is_err()
        );
        assert_eq!(PageParams::default().limit().unwrap(), DEFAULT_LIMIT);
    }
}
