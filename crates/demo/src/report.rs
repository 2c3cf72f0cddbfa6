//! Finds an example trace for the normal flow and for each active scenario, through Clew's TraceQL API, the way
//! a user would search for them.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::scenario::Scenario;

/// A complete order: it reached the queue and shipping.
pub const COMPLETE_ORDER: &str = r#"{ resource.service.name = "shipping" && kind = consumer }"#;

pub struct Example {
    pub label: &'static str,
    pub query: &'static str,
    pub trace_id: Option<String>,
}

async fn first_trace(client: &reqwest::Client, query_url: &str, traceql: &str) -> Option<String> {
    let q: String = form_urlencoded::byte_serialize(traceql.as_bytes()).collect();
    let response = client.get(format!("{query_url}/api/v1/traceql?q={q}&limit=1")).send().await.ok()?;
    let body: Value = response.json().await.ok()?;
    body["traces"].get(0)?["traceId"].as_str().map(String::from)
}

/// Looks for each example until one is found or `patience` is over.
pub async fn find_examples(
    query_url: &str,
    complete_order: bool,
    scenarios: &[Scenario],
    patience: Duration,
) -> Vec<Example> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("an HTTP client");
    let mut examples = Vec::new();
    if complete_order {
        examples.push(Example { label: "complete order", query: COMPLETE_ORDER, trace_id: None });
    }
    examples.extend(scenarios.iter().map(|s| Example { label: s.name(), query: s.traceql(), trace_id: None }));
    let deadline = Instant::now() + patience;
    loop {
        for example in examples.iter_mut().filter(|e| e.trace_id.is_none()) {
            example.trace_id = first_trace(&client, query_url, example.query).await;
        }
        if examples.iter().all(|e| e.trace_id.is_some()) || Instant::now() >= deadline {
            return examples;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

pub fn print_examples(ui_url: &str, examples: &[Example]) {
    println!("Example traces (in the UI, or `clew trace ID --server {ui_url}`):");
    for example in examples {
        let search: String = form_urlencoded::byte_serialize(example.query.as_bytes()).collect();
        match &example.trace_id {
            Some(id) => println!("  {:<24} trace {id}  {ui_url}/trace/{id}", example.label),
            None => println!("  {:<24} no trace found yet; search again later", example.label),
        }
        println!("  {:<24} search {}  {ui_url}/?mode=traceql&q={search}", "", example.query);
    }
}
