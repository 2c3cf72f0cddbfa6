//! `clew blocks`: the blocks a Clew server holds for a tenant, as a table.

use crate::api_client::ServerArgs;
use serde::Deserialize;

#[derive(clap::Args, Debug)]
pub struct BlocksArgs {
    #[command(flatten)]
    pub target: ServerArgs,
}

#[derive(Deserialize)]
struct BlockList {
    blocks: Vec<Block>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Block {
    block_id: String,
    min_start_unix_nano: String,
    max_end_unix_nano: String,
    traces: u64,
    spans: u64,
    bytes: u64,
}

pub async fn run(args: BlocksArgs) -> anyhow::Result<()> {
    let list: BlockList = args.target.get_json("/api/v1/blocks").await?;
    print!("{}", render(&list.blocks));
    Ok(())
}

fn render(blocks: &[Block]) -> String {
    let mut out = format!(
        "{:<26}  {:<20}  {:<20}  {:>10}  {:>12}  {:>12}  {:>10}\n",
        "block", "from (UTC)", "to (UTC)", "traces", "spans", "bytes", "bytes/span"
    );
    for b in blocks {
        let time = |ns: &str| ns.parse::<u64>().map(format_time).unwrap_or_else(|_| ns.to_string());
        out.push_str(&format!(
            "{:<26}  {:<20}  {:<20}  {:>10}  {:>12}  {:>12}  {:>10.1}\n",
            b.block_id,
            time(&b.min_start_unix_nano),
            time(&b.max_end_unix_nano),
            b.traces,
            b.spans,
            b.bytes,
            b.bytes as f64 / b.spans.max(1) as f64
        ));
    }
    let (traces, spans, bytes) = blocks.iter().fold((0, 0, 0), |(t, s, b), x| (t + x.traces, s + x.spans, b + x.bytes));
    out.push_str(&format!("{} blocks, {traces} traces, {spans} spans, {bytes} bytes\n", blocks.len()));
    out
}

/// `YYYY-MM-DD hh:mm:ss` in UTC, from Unix nanoseconds (civil-from-days, no time zone crate needed).
fn format_time(unix_nano: u64) -> String {
    let secs = unix_nano / 1_000_000_000;
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_times() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00");
        assert_eq!(format_time(1_700_000_000_000_000_000), "2023-11-14 22:13:20");
        assert_eq!(format_time(951_782_400_000_000_000), "2000-02-29 00:00:00");
    }

    #[test]
    fn renders_a_row_per_block_and_a_total() {
        let block = |id: &str, spans| Block {
            block_id: id.into(),
            min_start_unix_nano: "0".into(),
            max_end_unix_nano: "1700000000000000000".into(),
            traces: 2,
            spans,
            bytes: 100,
        };
        let text = render(&[block("A", 10), block("B", 40)]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[1].starts_with("A ") && lines[1].contains("2023-11-14 22:13:20") && lines[1].ends_with("10.0"));
        assert_eq!(lines[3], "2 blocks, 4 traces, 50 spans, 200 bytes");
    }
}
