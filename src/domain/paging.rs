//! Bounded numeric inputs: how many rows a page holds, which page, how many
//! hours a summary covers. Each is parsed here once, so both transports
//! refuse the same bad value with the same `type`, `msg` and `ctx`; each
//! transport only says where the value was (`["query", "limit"]`, `["first"]`).

use serde_json::json;

use super::error::InvalidInput;

/// An integer in `min..=max`, `default` when absent. The error is unlocated:
/// the caller puts it under the input's name.
fn within(given: Option<i64>, min: i64, max: i64, default: i64) -> Result<i64, InvalidInput> {
    match given {
        None => Ok(default),
        Some(n) if n < min => Err(InvalidInput::new(
            &[],
            "greater_than_equal",
            format!("Input should be greater than or equal to {min}"),
            n,
        )
        .with_ctx(json!({ "ge": min }))),
        Some(n) if n > max => Err(InvalidInput::new(
            &[],
            "less_than_equal",
            format!("Input should be less than or equal to {max}"),
            n,
        )
        .with_ctx(json!({ "le": max }))),
        Some(n) => Ok(n),
    }
}

/// Rows in one page of a feed or a list of children: 1 to 200, default 50.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSize(u64);

impl PageSize {
    pub const DEFAULT: u64 = 50;
    pub const MAX: u64 = 200;

    pub fn parse(given: Option<i64>) -> Result<Self, InvalidInput> {
        within(given, 1, Self::MAX as i64, Self::DEFAULT as i64).map(|n| Self(n as u64))
    }

    pub fn get(self) -> u64 {
        self.0
    }
}

impl Default for PageSize {
    fn default() -> Self {
        Self(Self::DEFAULT)
    }
}

/// The hours a summary covers, ending now: 1 to 168 (a week), default 24.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hours(i64);

impl Hours {
    pub const DEFAULT: i64 = 24;
    pub const MAX: i64 = 168;

    pub fn parse(given: Option<i64>) -> Result<Self, InvalidInput> {
        within(given, 1, Self::MAX, Self::DEFAULT).map(Self)
    }

    /// The window `[end - hours, end]` in microseconds.
    pub fn ending_at(self, end_micros: i64) -> (i64, i64) {
        (
            end_micros - self.0 * super::time::MICROS_PER_HOUR,
            end_micros,
        )
    }
}

impl Default for Hours {
    fn default() -> Self {
        Self(Self::DEFAULT)
    }
}

/// Offset paging of sessions: which page (1 to 1,000,000: a million pages
/// of 200 is far past any org's sessions, and the offset fits every
/// backend) and how many per page (1 to 200, default 20).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPaging {
    pub page: u64,
    pub page_size: u64,
}

impl SessionPaging {
    pub const DEFAULT_PAGE_SIZE: u64 = 20;
    pub const MAX_PAGE_SIZE: u64 = 200;
    pub const MAX_PAGE: i64 = 1_000_000;

    /// Both fields checked; each bad one is returned under its own name.
    pub fn parse(
        page: Option<i64>,
        page_size: Option<i64>,
        names: (&str, &str),
    ) -> Result<Self, Vec<InvalidInput>> {
        let page = within(page, 1, Self::MAX_PAGE, 1).map_err(|e| e.under(vec![names.0.into()]));
        let page_size = within(
            page_size,
            1,
            Self::MAX_PAGE_SIZE as i64,
            Self::DEFAULT_PAGE_SIZE as i64,
        )
        .map_err(|e| e.under(vec![names.1.into()]));
        match (page, page_size) {
            (Ok(page), Ok(page_size)) => Ok(Self {
                page: page as u64,
                page_size: page_size as u64,
            }),
            (page, page_size) => Err([page.err(), page_size.err()]
                .into_iter()
                .flatten()
                .collect()),
        }
    }

    /// Rows before the page; at most 999,999 x 200, far inside `i64`.
    pub fn offset(self) -> u64 {
        (self.page - 1) * self.page_size
    }
}

impl Default for SessionPaging {
    fn default() -> Self {
        Self {
            page: 1,
            page_size: Self::DEFAULT_PAGE_SIZE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(e: InvalidInput) -> (String, String, serde_json::Value) {
        (e.kind, e.msg, e.ctx.unwrap_or_default())
    }

    #[test]
    fn page_size_accepts_its_edges_and_defaults_when_absent() {
        assert_eq!(PageSize::parse(None).unwrap().get(), 50);
        assert_eq!(PageSize::parse(Some(1)).unwrap().get(), 1);
        assert_eq!(PageSize::parse(Some(200)).unwrap().get(), 200);
    }

    #[test]
    fn page_size_refuses_zero_and_201_with_pydantic_types() {
        assert_eq!(
            refusal(PageSize::parse(Some(0)).unwrap_err()),
            (
                "greater_than_equal".into(),
                "Input should be greater than or equal to 1".into(),
                json!({"ge": 1})
            )
        );
        assert_eq!(
            refusal(PageSize::parse(Some(201)).unwrap_err()),
            (
                "less_than_equal".into(),
                "Input should be less than or equal to 200".into(),
                json!({"le": 200})
            )
        );
        assert_eq!(PageSize::parse(Some(201)).unwrap_err().input, json!(201));
    }

    #[test]
    fn hours_accept_1_and_168_and_refuse_0_and_169() {
        let hours_of = |given| {
            let (start, end) = Hours::parse(given).unwrap().ending_at(0);
            (end - start) / crate::domain::time::MICROS_PER_HOUR
        };
        assert_eq!(hours_of(None), 24);
        assert_eq!(hours_of(Some(1)), 1);
        assert_eq!(hours_of(Some(168)), 168);
        assert_eq!(
            Hours::parse(Some(0)).unwrap_err().kind,
            "greater_than_equal"
        );
        assert_eq!(
            Hours::parse(Some(169)).unwrap_err().ctx,
            Some(json!({"le": 168}))
        );
        assert_eq!(
            Hours::parse(Some(2)).unwrap().ending_at(10_000_000_000),
            (10_000_000_000 - 7_200_000_000, 10_000_000_000)
        );
    }

    #[test]
    fn session_paging_reports_each_bad_field_under_its_name() {
        let ok = SessionPaging::parse(Some(1_000_000), Some(200), ("page", "page_size")).unwrap();
        assert_eq!(
            (ok.page, ok.page_size, ok.offset()),
            (1_000_000, 200, 199_999_800)
        );
        assert_eq!(
            SessionPaging::parse(None, None, ("page", "pageSize")).unwrap(),
            SessionPaging {
                page: 1,
                page_size: 20
            }
        );
        let refused = SessionPaging::parse(Some(0), Some(201), ("page", "pageSize")).unwrap_err();
        let at: Vec<_> = refused
            .iter()
            .map(|e| (e.loc.clone(), e.kind.as_str()))
            .collect();
        assert_eq!(
            at,
            [
                (vec![json!("page")], "greater_than_equal"),
                (vec![json!("pageSize")], "less_than_equal")
            ]
        );
        assert_eq!(
            SessionPaging::parse(Some(1_000_001), None, ("page", "page_size")).unwrap_err()[0].ctx,
            Some(json!({"le": 1_000_000}))
        );
    }
}
