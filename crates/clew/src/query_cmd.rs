//! `clew query '<TraceQL>'`: runs a TraceQL query on a Clew server and prints the matching traces as a table.

use crate::api_client::ServerArgs;
use crate::search_cmd::{SearchResult, render};

#[derive(clap::Args, Debug)]
pub struct QueryArgs {
    /// The TraceQL query, e.g. '{ resource.service.name = "api" && status = error }'.
    pub query: String,
    /// Earliest trace start: unix seconds or RFC 3339.
    #[arg(long)]
    pub start: Option<String>,
    /// Latest trace start: unix seconds or RFC 3339.
    #[arg(long)]
    pub end: Option<String>,
    /// Traces to show (1 to 1000).
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    #[command(flatten)]
    pub target: ServerArgs,
}

pub async fn run(args: QueryArgs) -> anyhow::Result<()> {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("q", &args.query);
    for (key, value) in [("start", &args.start), ("end", &args.end)] {
        if let Some(value) = value {
            q.append_pair(key, value);
        }
    }
    q.append_pair("limit", &args.limit.to_string());
    let path = format!("/api/v1/traceql?{}", q.finish());
    let result: SearchResult = args.target.get_json(&path).await?;
    print!("{}", render(&result));
    Ok(())
}
