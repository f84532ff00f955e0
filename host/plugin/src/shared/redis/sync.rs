//! The sync thread: its own current-thread runtime, one Redis connection,
//! and every `sync_interval` one lease-script call per batch of keys. A
//! failed call or connection marks Redis down (hot path falls back), drops
//! the connection and reconnects with backoff. Nothing here runs on a worker.

use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, Script};

use super::lease::{self, Answer, Ask};
use super::Inner;

/// Keys per script call: bounds how long one call holds Redis.
const BATCH: usize = 256;
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// With no lease to sync, Redis is still checked this often (for the status).
const PING_EVERY: Duration = Duration::from_millis(500);

pub(super) fn spawn(inner: Arc<Inner>, client: Client, first: Sender<()>) -> std::io::Result<()> {
    std::thread::Builder::new().name("wasmgate-state".into()).spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime,
            Err(e) => {
                inner.set_up(false, &format!("cannot start its runtime: {e}"));
                return;
            }
        };
        runtime.block_on(run(inner, client, first));
    })?;
    Ok(())
}

async fn run(inner: Arc<Inner>, client: Client, first: Sender<()>) {
    let script = Script::new(include_str!("lease.lua"));
    let timeout = inner.settings.timeout;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout));
    let mut first = Some(first);
    let mut connection: Option<MultiplexedConnection> = None;
    let mut backoff = BACKOFF_MIN;
    let mut asks = Vec::new();
    let mut pinged = Instant::now().checked_sub(PING_EVERY).unwrap_or_else(Instant::now);
    while !inner.stopped.load(Ordering::Relaxed) {
        let con = match connection.as_mut() {
            Some(con) => con,
            None => {
                let connected = tokio::time::timeout(timeout, client.get_multiplexed_async_connection_with_config(&config)).await;
                match connected {
                    Ok(Ok(con)) => {
                        backoff = BACKOFF_MIN;
                        connection.insert(con)
                    }
                    Ok(Err(e)) => {
                        down_then_wait(&inner, &e.to_string(), &mut first, &mut backoff).await;
                        continue;
                    }
                    Err(_) => {
                        down_then_wait(&inner, "connect timed out", &mut first, &mut backoff).await;
                        continue;
                    }
                }
            }
        };
        let started = Instant::now();
        let result = sync_once(&inner, &script, con, &mut asks, &mut pinged).await;
        match result {
            Ok(()) => inner.set_up(true, ""),
            Err(why) => {
                inner.set_up(false, &why);
                connection = None;
            }
        }
        if let Some(first) = first.take() {
            let _ = first.send(());
        }
        let spent = started.elapsed();
        tokio::time::sleep(inner.settings.sync_interval.saturating_sub(spent)).await;
    }
}

async fn down_then_wait(inner: &Inner, why: &str, first: &mut Option<Sender<()>>, backoff: &mut Duration) {
    inner.set_up(false, why);
    if let Some(first) = first.take() {
        let _ = first.send(());
    }
    tokio::time::sleep(*backoff).await;
    *backoff = (*backoff * 2).min(BACKOFF_MAX);
}

/// Plans every shard, runs the script for each batch, applies the answers.
async fn sync_once(
    inner: &Inner,
    script: &Script,
    con: &mut MultiplexedConnection,
    asks: &mut Vec<Ask>,
    pinged: &mut Instant,
) -> Result<(), String> {
    let timeout = inner.settings.timeout;
    let now = Instant::now();
    let shards = inner.leases.shards();
    let mut result = Ok(());
    let mut any = false;
    for shard in shards {
        asks.clear();
        lease::plan(&mut shard.lock().unwrap_or_else(std::sync::PoisonError::into_inner), now, &inner.sizing, asks);
        if asks.is_empty() {
            continue;
        }
        any = true;
        let mut done = 0;
        for batch in asks.chunks(BATCH) {
            if result.is_err() {
                break;
            }
            let mut invocation = script.prepare_invoke();
            for ask in batch {
                invocation
                    .key(&ask.key)
                    .arg(ask.rate)
                    .arg(ask.burst)
                    .arg(ask.want)
                    .arg(ask.debt - ask.returned);
            }
            let called = tokio::time::timeout(timeout, invocation.invoke_async::<Vec<i64>>(con)).await;
            match called {
                Ok(Ok(answers)) if answers.len() == batch.len() * 2 => {
                    let mut table = shard.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    for (ask, pair) in batch.iter().zip(answers.chunks(2)) {
                        let answer = Answer { granted: u64::try_from(pair[0]).unwrap_or(0), left: pair[1] };
                        lease::apply(&mut table, ask, answer);
                    }
                    done += batch.len();
                }
                Ok(Ok(answers)) => result = Err(format!("the lease script answered {} values for {} keys", answers.len(), batch.len())),
                Ok(Err(e)) => result = Err(e.to_string()),
                Err(_) => result = Err(format!("no answer within {timeout:?}")),
            }
        }
        if result.is_err() {
            let mut table = shard.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for ask in &asks[done..] {
                lease::restore(&mut table, ask);
            }
            break;
        }
    }
    let held: usize = shards.iter().map(|s| s.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len()).sum();
    inner.keys.store(held, Ordering::Relaxed);
    if result.is_ok() && !any && pinged.elapsed() >= PING_EVERY {
        *pinged = Instant::now();
        let pong = tokio::time::timeout(timeout, redis::cmd("PING").query_async::<String>(con)).await;
        result = match pong {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer to PING within {timeout:?}")),
        };
    }
    if any {
        *pinged = Instant::now();
    }
    result
}
