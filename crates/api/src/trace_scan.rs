//! Reads every stored trace with activity in a time range, page by page (search for candidates, then many
//! whole traces at once), for analyses over a range: the dependency graph and TraceQL metrics.

use clew_model::otlp::ResourceSpans;
use clew_model::{Tenant, TraceId};
use clew_query::Query;
use clew_query::search::{SearchRequest, SpanFilter};

use crate::ApiError;

/// A trace's spans may start this long after the trace itself: traces that started this much before the range
/// are read too, so their late spans count.
const LEAD_NANOS: u64 = 15 * 60 * 1_000_000_000;
/// Traces found per search (each search ranks every match again, so pages are large) and read per step.
const PAGE: usize = 5000;
const READ: usize = 1000;

/// Calls `visit` with every trace that has a span matching `filter` and started in
/// `[start - 15 min, end]` (Unix nanoseconds). The caller judges the spans' own times.
pub(crate) async fn for_each_trace(
    query: &Query,
    tenant: &Tenant,
    filter: SpanFilter,
    start: u64,
    end: u64,
    mut visit: impl FnMut(&[ResourceSpans]),
) -> Result<(), ApiError> {
    let window = (start.saturating_sub(LEAD_NANOS), end);
    let mut request = SearchRequest {
        filter,
        start_min_unix_nano: Some(window.0),
        start_max_unix_nano: Some(window.1),
        limit: PAGE,
        after: None,
    };
    loop {
        let page = query.search(tenant, &request).await.map_err(ApiError::internal)?;
        let ids: Vec<TraceId> = page.traces.iter().map(|t| t.trace_id).collect();
        for chunk in ids.chunks(READ) {
            let traces = query.traces_within(tenant, chunk, None).await.map_err(ApiError::internal)?;
            for id in chunk {
                if let Some(trace) = traces.get(id) {
                    visit(&trace.resource_spans);
                }
            }
        }
        match page.next {
            Some(next) => request.after = Some(next),
            None => return Ok(()),
        }
    }
}

/// Now, Unix milliseconds.
pub(crate) fn now_millis() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Unix nanoseconds as RFC 3339 UTC with milliseconds (`2024-05-01T12:00:00.000Z`).
pub(crate) fn rfc3339(unix_nanos: u64) -> String {
    let millis = unix_nanos / 1_000_000;
    let (days, ms_of_day) = ((millis / 86_400_000) as i64, millis % 86_400_000);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s, ms) = (ms_of_day / 3_600_000, ms_of_day / 60_000 % 60, ms_of_day / 1000 % 60, ms_of_day % 1000);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_700_000_000_123_000_000), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339(951_782_400_000_000_000), "2000-02-29T00:00:00.000Z");
    }
}
