//! The shop: ten services, each its own axum server on a loopback port, plus an in-process message queue.
//!
//! ```text
//! frontend ──W3C──▶ auth
//!          ──B3───▶ cart (in-memory cache)
//!          ──W3C──▶ checkout ──Jaeger──▶ inventory ──▶ SQLite
//!                            ──W3C─────▶ payment ──W3C──▶ payment-provider (external)
//!                                                ──W3C──▶ fraud-check (large orders only)
//!                            ──queue───▶ shipping (one message at a time), email (batches, span links)
//! ```

mod backends;
mod checkout;
mod frontend;
mod inventory;
pub mod queue;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;

use crate::propagation::Format;
use crate::scenario::Scenarios;
use crate::telemetry::Transport;
use crate::web::{Inbound, server_span};

/// Every service, with how it exports spans to Clew (all three OTLP transports are in use).
pub const SERVICES: [(&str, Transport); 10] = [
    ("frontend", Transport::Grpc),
    ("auth", Transport::HttpProtobuf),
    ("cart", Transport::HttpJson),
    ("checkout", Transport::Grpc),
    ("inventory", Transport::HttpProtobuf),
    ("payment", Transport::Grpc),
    ("payment-provider", Transport::HttpJson),
    ("fraud-check", Transport::HttpProtobuf),
    ("shipping", Transport::Grpc),
    ("email", Transport::HttpJson),
];

/// Base URLs of the HTTP services.
#[derive(Clone, Debug, Default)]
pub struct Addresses {
    pub auth: String,
    pub cart: String,
    pub checkout: String,
    pub inventory: String,
    pub payment: String,
    pub payment_provider: String,
    pub fraud_check: String,
}

/// What every handler may need: the scenario switches, a pooled HTTP client, where the others listen.
#[derive(Clone)]
pub struct Shop {
    pub scenarios: Scenarios,
    pub client: reqwest::Client,
    pub addresses: Arc<Addresses>,
    pub queue: queue::Queue,
    /// Called when a scenario is switched on at run time (prints an example trace a little later).
    pub announce: Announce,
}

pub type Announce = Arc<dyn Fn(crate::scenario::Scenario) + Send + Sync>;

/// The running shop.
pub struct RunningShop {
    pub frontend: SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningShop {
    pub fn stop(self) {
        for task in self.tasks {
            task.abort();
        }
    }
}

async fn bind(port: u16) -> anyhow::Result<(TcpListener, String, u16)> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let port = listener.local_addr()?.port();
    Ok((listener, format!("http://127.0.0.1:{port}"), port))
}

fn serve(listener: TcpListener, router: Router) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, router).await {
            eprintln!("a shop service stopped: {err}");
        }
    })
}

/// Wraps a service's routes in its server-span middleware.
fn traced(router: Router, service: &'static str, format: Format, port: u16) -> Router {
    let inbound = Inbound { service, format, port, entry: service == "frontend" };
    router.route_layer(axum::middleware::from_fn_with_state(inbound, server_span))
}

/// Binds every service (the frontend on `frontend_port`, 0 for any), then serves them.
pub async fn start(
    scenarios: Scenarios,
    frontend_port: u16,
    data_dir: &Path,
    announce: Announce,
) -> anyhow::Result<RunningShop> {
    let (frontend_l, _, frontend_port) = bind(frontend_port).await?;
    let (auth_l, auth, auth_port) = bind(0).await?;
    let (cart_l, cart, cart_port) = bind(0).await?;
    let (checkout_l, checkout, checkout_port) = bind(0).await?;
    let (inventory_l, inventory, inventory_port) = bind(0).await?;
    let (payment_l, payment, payment_port) = bind(0).await?;
    let (provider_l, payment_provider, provider_port) = bind(0).await?;
    let (fraud_l, fraud_check, fraud_port) = bind(0).await?;
    let addresses = Addresses { auth, cart, checkout, inventory, payment, payment_provider, fraud_check };
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(10)).build()?;
    let (queue, consumers) = queue::Queue::new();
    let shop = Shop { scenarios: scenarios.clone(), client, addresses: Arc::new(addresses), queue, announce };
    let database = inventory::Database::open(&data_dir.join("shop.sqlite"), scenarios)?;

    let mut tasks = vec![
        serve(frontend_l, frontend::router(shop.clone(), frontend_port)),
        serve(auth_l, traced(backends::auth(), "auth", Format::W3c, auth_port)),
        serve(cart_l, traced(backends::cart(), "cart", Format::B3, cart_port)),
        serve(checkout_l, traced(checkout::router(shop.clone()), "checkout", Format::W3c, checkout_port)),
        serve(inventory_l, traced(inventory::router(database), "inventory", Format::Jaeger, inventory_port)),
        serve(payment_l, traced(backends::payment(shop.clone()), "payment", Format::W3c, payment_port)),
        serve(
            provider_l,
            traced(backends::payment_provider(shop.clone()), "payment-provider", Format::W3c, provider_port),
        ),
        serve(fraud_l, traced(backends::fraud_check(), "fraud-check", Format::W3c, fraud_port)),
    ];
    tasks.extend(queue::start_consumers(consumers));
    Ok(RunningShop { frontend: ([127, 0, 0, 1], frontend_port).into(), tasks })
}
