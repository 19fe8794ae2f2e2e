//! The bounded load on `serve`: concurrent HTTP clients, each placing orders
//! and moving every order to delivery, every command sent with an
//! `Idempotency-Key` and repeated once. Shared by the test (small) and the
//! bench (full size).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::http::{request, Answer};

/// Status changes of an order after it is placed.
pub const STATUSES: [&str; 4] = ["PREPARING", "READY_FOR_PICKUP", "PICKED_UP", "DELIVERED"];

/// What a load run did.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// Orders placed and delivered.
    pub orders: usize,
    /// Requests answered.
    pub requests: usize,
    /// Answers with a 5xx status.
    pub server_errors: usize,
    /// Answers with a 4xx status (none is expected: every request is well formed).
    pub client_errors: usize,
    /// Repeats answered from the first request's record.
    pub replayed: usize,
    /// Every request's latency.
    pub latencies: Vec<Duration>,
    /// Each command's first answer: the order, its version after the command, and when.
    pub answered: Vec<(String, u64, time::OffsetDateTime)>,
    /// The whole run.
    pub elapsed: Duration,
}

impl LoadReport {
    /// The latency at quantile `q` (0 to 1).
    pub fn quantile(&self, q: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let index = ((sorted.len().saturating_sub(1)) as f64 * q).round() as usize;
        sorted.get(index).copied().unwrap_or_default()
    }

    fn absorb(&mut self, other: LoadReport) {
        self.orders += other.orders;
        self.requests += other.requests;
        self.server_errors += other.server_errors;
        self.client_errors += other.client_errors;
        self.replayed += other.replayed;
        self.latencies.extend(other.latencies);
        self.answered.extend(other.answered);
    }

    /// Sends one command and its repeat with the same key; the first answer.
    async fn twice(
        &mut self,
        address: SocketAddr,
        path: &str,
        body: &Value,
        key: &str,
    ) -> Option<Answer> {
        let mut first = None;
        for _ in 0..2 {
            let started = Instant::now();
            let answer = request(
                address,
                "POST",
                path,
                Some(body),
                &[("idempotency-key", key)],
            )
            .await;
            self.latencies.push(started.elapsed());
            self.requests += 1;
            let Ok(answer) = answer else {
                self.server_errors += 1;
                continue;
            };
            match answer.status {
                500..=599 => self.server_errors += 1,
                400..=499 => self.client_errors += 1,
                _ => {}
            }
            if answer.header("idempotent-replayed") == Some("true") {
                self.replayed += 1;
            }
            if first.is_none() {
                if let (Some(order), Some(version)) = (
                    answer.body["orderId"].as_str(),
                    answer.body["version"].as_u64(),
                ) {
                    self.answered.push((
                        order.to_owned(),
                        version,
                        time::OffsetDateTime::now_utc(),
                    ));
                }
            }
            first.get_or_insert(answer);
        }
        first
    }
}

/// Runs `clients` concurrent clients against `address`, sharing `orders` orders between them.
pub async fn run(address: SocketAddr, clients: usize, orders: usize) -> LoadReport {
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            tokio::spawn(async move {
                let mut report = LoadReport::default();
                for n in (client..orders).step_by(clients.max(1)) {
                    let body = json!({"customer": format!("c{client}"), "items": [{"sku": "SOUP", "quantity": 1, "unitPriceCents": 450}]});
                    let placed = report
                        .twice(address, "/orders", &body, &format!("place-{client}-{n}"))
                        .await;
                    let Some(order) = placed.and_then(|a| a.body["orderId"].as_str().map(str::to_owned)) else {
                        continue;
                    };
                    for to in STATUSES {
                        let path = format!("/orders/{order}/status");
                        let key = format!("{order}-{to}");
                        report.twice(address, &path, &json!({"status": to}), &key).await;
                    }
                    report.orders += 1;
                }
                report
            })
        })
        .collect();
    let mut total = LoadReport::default();
    for task in tasks {
        if let Ok(report) = task.await {
            total.absorb(report);
        }
    }
    total.elapsed = started.elapsed();
    total
}
