//! `inventory`: items and stock in SQLite. Reserving reads the items and decrements their stock.
//!
//! db-timeout: a background "report job" (not traced, as such jobs often are not) holds the write lock half of the
//! time; the UPDATE waits out its busy timeout and fails with `database is locked`.
//! n-plus-one: the items are read one SELECT per item instead of one SELECT for all.

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use rusqlite::{Connection, params_from_iter};
use serde::Deserialize;
use serde_json::json;
use tracing::field::Empty;

use crate::scenario::{Scenario, Scenarios};

const BUSY_TIMEOUT: Duration = Duration::from_millis(150);
const ITEMS: i64 = 50;

#[derive(Clone)]
pub struct Database {
    path: PathBuf,
    scenarios: Scenarios,
}

impl Database {
    /// Creates and seeds the database, and starts the report job that the db-timeout scenario turns on.
    pub fn open(path: &Path, scenarios: Scenarios) -> anyhow::Result<Database> {
        let conn = Connection::open(path)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price_cents INTEGER NOT NULL,
                 stock INTEGER NOT NULL);",
        )?;
        for id in 1..=ITEMS {
            conn.execute(
                "INSERT OR IGNORE INTO items (id, name, price_cents, stock) VALUES (?1, ?2, ?3, 1000)",
                (id, format!("item-{id}"), 500 + (id * 397) % 4_500),
            )?;
        }
        let database = Database { path: path.to_path_buf(), scenarios };
        let job = database.clone();
        std::thread::Builder::new().name("report-job".into()).spawn(move || job.report_job())?;
        Ok(database)
    }

    fn connect(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open(&self.path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        Ok(conn)
    }

    /// Holds the write lock for a second, then lets go for a second, while db-timeout is on.
    fn report_job(self) {
        loop {
            if !self.scenarios.is_on(Scenario::DbTimeout) {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            let Ok(conn) = Connection::open(&self.path) else { return };
            if conn.execute_batch("BEGIN IMMEDIATE").is_ok() {
                std::thread::sleep(Duration::from_secs(1));
                let _ = conn.execute_batch("ROLLBACK");
            }
            drop(conn);
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

pub fn router(database: Database) -> Router {
    Router::new().route("/reserve", post(reserve)).with_state(database)
}

#[derive(Deserialize)]
struct Reservation {
    items: Vec<i64>,
}

async fn reserve(State(db): State<Database>, Json(reservation): Json<Reservation>) -> Response {
    if reservation.items.is_empty() || reservation.items.len() > 100 {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "between 1 and 100 items, please"}))).into_response();
    }
    let parent = tracing::Span::current();
    let result = tokio::task::spawn_blocking(move || parent.in_scope(|| reserve_items(&db, &reservation.items))).await;
    match result {
        Ok(Ok(total_cents)) => Json(json!({"reserved": true, "total_cents": total_cents})).into_response(),
        Ok(Err(err)) => {
            tracing::error!("reservation failed: {err}");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"error": err.to_string()}))).into_response()
        }
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": err.to_string()}))).into_response(),
    }
}

fn reserve_items(db: &Database, items: &[i64]) -> rusqlite::Result<i64> {
    let conn = db.connect()?;
    let mut total = 0;
    if db.scenarios.is_on(Scenario::NPlusOne) {
        for id in items {
            total += query(
                &conn,
                "SELECT",
                "SELECT id, price_cents, stock FROM items WHERE id = ?",
                std::slice::from_ref(id),
            )?;
        }
    } else {
        let marks = vec!["?"; items.len()].join(", ");
        total =
            query(&conn, "SELECT", &format!("SELECT id, price_cents, stock FROM items WHERE id IN ({marks})"), items)?;
    }
    let marks = vec!["?"; items.len()].join(", ");
    let update =
        format!("UPDATE items SET stock = CASE WHEN stock > 0 THEN stock - 1 ELSE 1000 END WHERE id IN ({marks})");
    query(&conn, "UPDATE", &update, items)?;
    Ok(total)
}

/// Runs one statement inside a database client span; SELECTs return the sum of the prices they read.
fn query(conn: &Connection, operation: &str, sql: &str, args: &[i64]) -> rusqlite::Result<i64> {
    let span = tracing::info_span!(
        "db",
        otel.name = %format!("{operation} items"),
        otel.kind = "client",
        otel.status_code = Empty,
        shop.service = "inventory",
        db.system.name = "sqlite",
        db.system = "sqlite",
        db.namespace = "shop",
        db.collection.name = "items",
        db.operation.name = operation,
        db.query.text = sql,
        db.response.returned_rows = Empty,
        error.type = Empty,
    );
    let _guard = span.enter();
    let result = if operation == "SELECT" {
        let mut statement = conn.prepare_cached(sql)?;
        let mut rows = statement.query(params_from_iter(args))?;
        let (mut count, mut total) = (0i64, 0i64);
        while let Some(row) = rows.next()? {
            count += 1;
            total += row.get::<_, i64>(1)?;
        }
        span.record("db.response.returned_rows", count);
        Ok(total)
    } else {
        conn.execute(sql, params_from_iter(args)).map(|n| n as i64)
    };
    if let Err(err) = &result {
        span.record("otel.status_code", "error");
        let kind = match err.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy) => "SQLITE_BUSY",
            _ => "sqlite_error",
        };
        span.record("error.type", kind);
        tracing::error!(error.message = %err, "query failed");
    }
    result
}
