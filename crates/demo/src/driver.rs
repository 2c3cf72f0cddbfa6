//! The traffic driver: steady orders to the frontend, like shoppers would send. Not instrumented: the shop's
//! traces start at its entry. Half the requests bring their own `x-request-id` (a gateway set it), the other half
//! let the frontend make one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::json;
use tokio::sync::Semaphore;

use crate::web::{REQUEST_ID_HEADER, USER_ID_HEADER};

/// Counts of what the driver saw.
#[derive(Default, Debug)]
pub struct DriverStats {
    pub sent: AtomicU64,
    pub ok: AtomicU64,
    pub failed: AtomicU64,
}

/// Sends `rate` orders per second until the task is aborted.
pub async fn drive(frontend: String, rate: f64, stats: Arc<DriverStats>) {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(15)).build().expect("an HTTP client");
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(0.01)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let in_flight = Arc::new(Semaphore::new(64));
    for n in 0u64.. {
        ticker.tick().await;
        let Ok(permit) = in_flight.clone().acquire_owned().await else { return };
        let (client, url, stats) = (client.clone(), format!("{frontend}/api/orders"), stats.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let user = format!("user-{}", 1 + n % 17);
            let items: Vec<u64> = (0..4 + n % 4).map(|i| 1 + (n * 7 + i * 13) % 50).collect();
            let mut request =
                client.post(url).header(USER_ID_HEADER, &user).json(&json!({"user": user, "items": items}));
            if n % 2 == 0 {
                request = request.header(REQUEST_ID_HEADER, format!("drv-{n:08}"));
            }
            stats.sent.fetch_add(1, Ordering::Relaxed);
            match request.send().await {
                Ok(response) if response.status().is_success() => stats.ok.fetch_add(1, Ordering::Relaxed),
                _ => stats.failed.fetch_add(1, Ordering::Relaxed),
            };
        });
    }
}
