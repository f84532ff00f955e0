//! The exporter: a thread of its own that takes finished traces from a
//! bounded queue and posts them in batches to the collector over OTLP/HTTP
//! (`application/x-protobuf`). Workers never wait on it: a full queue drops
//! the trace (counted), a collector that is down costs failed posts on this
//! thread only (logged once per change of state), and the thread is started
//! by the first trace, so a config that is only checked starts nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

use super::encode::text;
use crate::config::TracingConfig;

/// Finished traces waiting for the exporter thread.
const QUEUE: usize = 4096;
/// Most spans in one post.
const BATCH: usize = 512;
/// The longest a span waits before it is posted.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// The longest one post may take.
const POST_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Exporter {
    endpoint: http::Uri,
    service_name: String,
    queue: OnceLock<Option<SyncSender<Vec<Span>>>>,
    counts: Arc<Counts>,
}

/// What happened to the spans handed to the exporter.
#[derive(Default)]
pub struct Counts {
    pub exported: AtomicU64,
    /// Spans lost: the queue was full, or the collector refused or could not be reached.
    pub dropped: AtomicU64,
}

impl Exporter {
    pub fn new(config: &TracingConfig) -> Exporter {
        Exporter {
            endpoint: config.endpoint.clone(),
            service_name: config.service_name.clone(),
            queue: OnceLock::new(),
            counts: Arc::default(),
        }
    }

    /// Whether this exporter posts where `config` says, as the same service.
    pub fn sends_like(&self, config: &TracingConfig) -> bool {
        self.endpoint == config.endpoint && self.service_name == config.service_name
    }

    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// Queues one trace's spans; drops them when the queue is full.
    pub fn send(&self, spans: Vec<Span>) {
        let count = spans.len() as u64;
        let queue = self.queue.get_or_init(|| self.start());
        let sent = match queue {
            Some(queue) => match queue.try_send(spans) {
                Ok(()) => true,
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
            },
            None => false,
        };
        if !sent {
            self.counts.dropped.fetch_add(count, Ordering::Relaxed);
        }
    }

    fn start(&self) -> Option<SyncSender<Vec<Span>>> {
        let (sender, receiver) = sync_channel(QUEUE);
        let post = Post::new(&self.endpoint, &self.service_name, self.counts.clone());
        let spawned = std::thread::Builder::new().name("wasmgate-traces".into()).spawn(move || post.run(receiver));
        match spawned {
            // The thread ends (after a last post) when this exporter, and
            // with it the sender, is dropped.
            Ok(_) => Some(sender),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the trace exporter thread; spans are dropped");
                None
            }
        }
    }
}

/// The exporter thread's side.
struct Post {
    endpoint: http::Uri,
    resource: Resource,
    counts: Arc<Counts>,
    failing: bool,
}

impl Post {
    fn new(endpoint: &http::Uri, service_name: &str, counts: Arc<Counts>) -> Post {
        let resource = Resource {
            attributes: vec![text("service.name", service_name), text("service.version", env!("CARGO_PKG_VERSION"))],
            ..Resource::default()
        };
        Post { endpoint: endpoint.clone(), resource, counts, failing: false }
    }

    /// Collects spans until a batch is full or the oldest has waited
    /// `FLUSH_EVERY`, posts them, and ends (after a last post) when every
    /// sender is gone.
    fn run(mut self, queue: Receiver<Vec<Span>>) {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime,
            Err(e) => {
                tracing::error!(error = %e, "cannot start the trace exporter's runtime; spans are dropped");
                return;
            }
        };
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let mut batch: Vec<Span> = Vec::new();
        let mut oldest: Option<Instant> = None;
        loop {
            let wait = oldest.map_or(FLUSH_EVERY, |t| FLUSH_EVERY.saturating_sub(t.elapsed()));
            let open = match queue.recv_timeout(wait) {
                Ok(spans) => {
                    oldest.get_or_insert_with(Instant::now);
                    batch.extend(spans);
                    true
                }
                Err(RecvTimeoutError::Timeout) => true,
                Err(RecvTimeoutError::Disconnected) => false,
            };
            let due = oldest.is_some_and(|t| t.elapsed() >= FLUSH_EVERY);
            if !batch.is_empty() && (batch.len() >= BATCH || due || !open) {
                let spans = std::mem::take(&mut batch);
                oldest = None;
                runtime.block_on(self.post(&client, spans));
            }
            if !open {
                return;
            }
        }
    }

    async fn post<C>(&mut self, client: &Client<C, Full<Bytes>>, spans: Vec<Span>)
    where
        C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
    {
        let count = spans.len() as u64;
        let body = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(self.resource.clone()),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "wasmgate".into(),
                        version: env!("CARGO_PKG_VERSION").into(),
                        ..InstrumentationScope::default()
                    }),
                    spans,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
        .encode_to_vec();
        let request = http::Request::post(self.endpoint.clone())
            .header(http::header::CONTENT_TYPE, "application/x-protobuf")
            .body(Full::new(Bytes::from(body)));
        let outcome = match request {
            Ok(request) => match tokio::time::timeout(POST_TIMEOUT, client.request(request)).await {
                Ok(Ok(response)) if response.status().is_success() => Ok(()),
                Ok(Ok(response)) => Err(format!("the collector answered {}", response.status())),
                Ok(Err(e)) => Err(format!("cannot reach the collector: {e}")),
                Err(_) => Err(format!("the collector did not answer within {POST_TIMEOUT:?}")),
            },
            Err(e) => Err(format!("cannot build the request: {e}")),
        };
        match outcome {
            Ok(()) => {
                self.counts.exported.fetch_add(count, Ordering::Relaxed);
                if std::mem::replace(&mut self.failing, false) {
                    tracing::info!(endpoint = %self.endpoint, "trace export works again");
                }
            }
            Err(reason) => {
                self.counts.dropped.fetch_add(count, Ordering::Relaxed);
                if !std::mem::replace(&mut self.failing, true) {
                    tracing::warn!(endpoint = %self.endpoint, %reason, spans = count, "trace export failed; spans are dropped until it works again");
                }
            }
        }
    }
}
