//! A finished trace as OTLP spans, named and attributed after the
//! OpenTelemetry HTTP semantic conventions where one fits.

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{Span, Status};
use wasmgate_plugin::metrics::Outcome;

use super::trace::{End, Trace};

/// W3C flags on every span we export: sampled.
const SAMPLED: u32 = 1;

/// The request's span, the upstream exchange's and one per plugin call.
pub fn spans(trace: &Trace, end: &End<'_>, now: u64) -> Vec<Span> {
    let mut spans = Vec::with_capacity(2 + trace.calls.len());
    let name = match &trace.route {
        Some(route) => format!("{} {route}", trace.method),
        None => trace.method.to_string(),
    };
    let mut attributes = vec![
        text("http.request.method", trace.method.as_str()),
        text("url.path", &trace.path),
        int("http.response.status_code", i64::from(end.status)),
        text("client.address", &end.client.to_string()),
        text("wasmgate.listener", end.listener),
    ];
    if let Some(route) = &trace.route {
        attributes.push(text("http.route", route));
    }
    spans.push(Span {
        trace_id: trace.trace_id.to_vec(),
        span_id: trace.span_id.to_vec(),
        parent_span_id: trace.parent.map(|p| p.to_vec()).unwrap_or_default(),
        flags: SAMPLED,
        name,
        kind: SpanKind::Server as i32,
        start_time_unix_nano: trace.unix(trace.started()),
        end_time_unix_nano: trace.unix(now),
        attributes,
        status: Some(status(end.status >= 500, || format!("status {}", end.status))),
        ..Span::default()
    });
    if let Some(exchange) = &trace.exchange {
        let mut attributes = vec![text("wasmgate.upstream", &exchange.upstream), int("wasmgate.attempts", i64::from(exchange.attempts))];
        if let Some(target) = exchange.target {
            attributes.push(text("server.address", &target.ip().to_string()));
            attributes.push(int("server.port", i64::from(target.port())));
        }
        let failed = !end.from_upstream || end.status >= 500;
        if end.from_upstream {
            attributes.push(int("http.response.status_code", i64::from(end.status)));
        }
        spans.push(Span {
            trace_id: trace.trace_id.to_vec(),
            span_id: trace.exchange_id.to_vec(),
            parent_span_id: trace.span_id.to_vec(),
            flags: SAMPLED,
            name: format!("upstream {}", exchange.upstream),
            kind: SpanKind::Client as i32,
            start_time_unix_nano: trace.unix(exchange.started),
            end_time_unix_nano: trace.unix(exchange.ended),
            attributes,
            status: Some(status(failed, || "no usable response from the upstream".to_owned())),
            ..Span::default()
        });
    }
    for call in &trace.calls {
        let failed = !matches!(call.outcome, Outcome::Continue | Outcome::Answered);
        spans.push(Span {
            trace_id: trace.trace_id.to_vec(),
            span_id: super::trace::span_id().to_vec(),
            parent_span_id: trace.span_id.to_vec(),
            flags: SAMPLED,
            name: format!("plugin {} {}", call.plugin, call.phase.as_str()),
            kind: SpanKind::Internal as i32,
            start_time_unix_nano: trace.unix(call.started),
            end_time_unix_nano: trace.unix(call.ended),
            attributes: vec![
                text("wasmgate.plugin", &call.plugin),
                text("wasmgate.phase", call.phase.as_str()),
                text("wasmgate.outcome", call.outcome.as_str()),
            ],
            status: Some(status(failed, || format!("plugin call ended in {}", call.outcome.as_str()))),
            ..Span::default()
        });
    }
    spans
}

fn status(failed: bool, message: impl FnOnce() -> String) -> Status {
    match failed {
        true => Status { message: message(), code: StatusCode::Error as i32 },
        false => Status { message: String::new(), code: StatusCode::Unset as i32 },
    }
}

pub fn text(key: &str, value: &str) -> KeyValue {
    KeyValue { key: key.to_owned(), value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.to_owned())) }), ..KeyValue::default() }
}

fn int(key: &str, value: i64) -> KeyValue {
    KeyValue { key: key.to_owned(), value: Some(AnyValue { value: Some(any_value::Value::IntValue(value)) }), ..KeyValue::default() }
}
