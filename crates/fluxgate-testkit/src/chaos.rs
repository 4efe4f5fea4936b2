//! Seeded fault injection for soak tests: [`Chaos`] draws a fault for a share of the requests
//! the fake answers, and [`RefusingFront`] is a TCP front that resets a share of the
//! connections made to the fake before a byte is read (what a client sees when a provider's
//! edge refuses it).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::net::{TcpListener, TcpStream};

use crate::Fault;

/// Every kind of fault the soak injects, in the order [`Chaos::draw`] numbers them.
pub const KINDS: &[&str] = &[
    "429_retry_after_seconds",
    "429_retry_after_http_date",
    "429_retry_after_ms",
    "500",
    "502",
    "503",
    "529",
    "reset_before_first_event",
    "reset_after_3_events",
    "stall_before_headers",
    "stall_after_3_events",
    "in_band_error_first_event",
    "in_band_error_after_3_events",
    "truncated_after_3_events",
    "empty_200",
    "html_200",
];

/// Draws faults from a seeded generator.
pub struct Chaos {
    rng: StdRng,
    /// Share of requests that get a fault, 0..=1.
    rate: f64,
    /// How long stalls last (longer than the router's first-byte and idle timeouts).
    stall_ms: u64,
    /// How many of each kind were drawn.
    pub drawn: HashMap<&'static str, u64>,
}

impl Chaos {
    pub fn new(seed: u64, rate: f64, stall_ms: u64) -> Chaos {
        Chaos {
            rng: StdRng::seed_from_u64(seed),
            rate,
            stall_ms,
            drawn: HashMap::new(),
        }
    }

    /// `None`: answer normally.
    pub fn draw(&mut self) -> Option<Fault> {
        if !self.rng.random_bool(self.rate) {
            *self.drawn.entry("none").or_default() += 1;
            return None;
        }
        let i = self.rng.random_range(0..KINDS.len());
        *self.drawn.entry(KINDS[i]).or_default() += 1;
        let stall = self.stall_ms;
        Some(match i {
            0 => Fault::status_with(429, &[("retry-after", "1")], RATE_LIMIT_BODY),
            1 => {
                let at = SystemTime::now() + Duration::from_secs(2);
                let date = httpdate::fmt_http_date(at);
                Fault::status_with(429, &[("retry-after", date.as_str())], RATE_LIMIT_BODY)
            }
            2 => Fault::status_with(429, &[("retry-after-ms", "400")], RATE_LIMIT_BODY),
            3 => Fault::status(500),
            4 => Fault::status(502),
            5 => Fault::status(503),
            6 => Fault::status_with(529, &[], OVERLOADED_BODY),
            7 => Fault::ResetAfter { events: 0 },
            8 => Fault::ResetAfter { events: 3 },
            9 => Fault::StallBeforeHeaders { ms: stall },
            10 => Fault::StallAfter {
                events: 3,
                ms: stall,
            },
            11 => Fault::InBandError,
            12 => Fault::InBandErrorAfter { events: 3 },
            13 => Fault::TruncateAfter { events: 3 },
            14 => Fault::Empty200,
            _ => Fault::Html200,
        })
    }
}

const RATE_LIMIT_BODY: &str =
    r#"{"error":{"message":"Rate limit reached","type":"rate_limit_error"}}"#;
const OVERLOADED_BODY: &str =
    r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;

/// A TCP front on its own loopback port that passes connections through to `target`, except
/// a seeded share of them, which it resets (RST, no bytes) as soon as they are accepted.
pub struct RefusingFront {
    pub addr: SocketAddr,
    /// Connections reset so far.
    pub refused: Arc<AtomicU64>,
    /// Connections passed through so far.
    pub passed: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RefusingFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RefusingFront {
    pub async fn start(target: SocketAddr, seed: u64, rate: f64) -> RefusingFront {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the refusing front");
        let addr = listener.local_addr().expect("local addr");
        let refused = Arc::new(AtomicU64::new(0));
        let passed = Arc::new(AtomicU64::new(0));
        let rng = Arc::new(Mutex::new(StdRng::seed_from_u64(seed)));
        let (r, p) = (refused.clone(), passed.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    continue;
                };
                if rng.lock().random_bool(rate) {
                    r.fetch_add(1, Ordering::Relaxed);
                    // Linger 0: closing sends RST instead of FIN.
                    let _ = inbound.set_zero_linger();
                    drop(inbound);
                    continue;
                }
                p.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    let mut inbound = inbound;
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
            }
        });
        RefusingFront {
            addr,
            refused,
            passed,
            task,
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}
