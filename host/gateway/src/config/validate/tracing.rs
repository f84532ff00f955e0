//! `[tracing]`: raw → validated. The endpoint is a plain-HTTP OTLP URL: the
//! exporter speaks OTLP/HTTP with protobuf bodies, to a collector (usually
//! one on the same machine) that forwards wherever traces are kept.

use super::super::raw::RawTracing;
use super::super::TracingConfig;
use super::{invalid, Invalid};

/// The share of new traces recorded when `sample_ratio` is not set.
pub const DEFAULT_SAMPLE_RATIO: f64 = 0.01;

pub fn tracing(raw: &RawTracing) -> Result<TracingConfig, Invalid> {
    let endpoint: http::Uri = raw
        .endpoint
        .parse()
        .map_err(|_| invalid("tracing.endpoint", format!("`{}` is not a URL", raw.endpoint)))?;
    match endpoint.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(invalid(
                "tracing.endpoint",
                "https is not supported: export to a collector over plain http (e.g. one on this machine, http://127.0.0.1:4318/v1/traces)",
            ))
        }
        _ => {
            return Err(invalid(
                "tracing.endpoint",
                format!("`{}` is not an http:// URL (e.g. http://127.0.0.1:4318/v1/traces)", raw.endpoint),
            ))
        }
    }
    if endpoint.host().is_none_or(str::is_empty) {
        return Err(invalid("tracing.endpoint", format!("`{}` names no host", raw.endpoint)));
    }
    let sample_ratio = raw.sample_ratio.unwrap_or(DEFAULT_SAMPLE_RATIO);
    if !(0.0..=1.0).contains(&sample_ratio) {
        return Err(invalid("tracing.sample_ratio", format!("{sample_ratio} is not between 0.0 and 1.0")));
    }
    let service_name = raw.service_name.clone().unwrap_or_else(|| "wasmgate".to_owned());
    if service_name.is_empty() || service_name.len() > 128 {
        return Err(invalid("tracing.service_name", "must be 1 to 128 characters"));
    }
    Ok(TracingConfig { endpoint, sample_ratio, service_name })
}
