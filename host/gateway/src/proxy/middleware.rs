//! Where a route's Wasm middleware meets the proxy: the request phase before
//! anything goes upstream, the response phase on the way back, and a body
//! rewrite when a plugin asks for one (the only time a body is buffered).

use bytes::{Bytes, BytesMut};
use http::{request, Response};
use http_body::Body;
use http_body_util::BodyExt;
use wasmgate_plugin::{BodyRewrite, Chain, RequestContext, RequestOutcome, ResponseOutcome};

use super::body::ResponseBody;
use super::error::{Answer, ProxyError};
use super::Peer;
use crate::router::Route;
use crate::state::State;
use crate::telemetry::Trace;

/// What the response phase needs from the request phase.
pub struct Phase {
    ctx: RequestContext,
    /// How many plugins ran (and get a response phase, in reverse).
    ran: usize,
}

/// Runs the route's request phase on `parts`. `Ok(None)`: no plugins.
/// `Err(ProxyError::Answered)`: a plugin answered (its response has been through
/// the response phase of the plugins before it already).
/// A traced request (`trace`) gets a span per plugin call.
pub fn request(
    route: &Route,
    state: &State,
    peer: &Peer,
    parts: &mut request::Parts,
    mut trace: Option<&mut Trace>,
) -> Result<Option<Phase>, ProxyError> {
    if route.chain.is_empty() {
        return Ok(None);
    }
    let mut ctx = RequestContext::new(route.name.clone(), state.listener_name(peer.listener));
    ctx.client_ip = Some(peer.addr.ip());
    ctx.upstream = Some(route.upstream.name().into());
    if trace.is_some() {
        ctx.calls = Some(Vec::new());
    }
    let outcome = route.chain.on_request(parts, &mut ctx);
    traced(&route.chain, &mut ctx, trace.as_deref_mut());
    match outcome {
        RequestOutcome::Continue { ran } => Ok(Some(Phase { ctx, ran })),
        RequestOutcome::Respond { ran, response } => {
            let (mut head, body) = response.into_parts();
            let body = match route.chain.on_response(ran, &mut head, &mut ctx) {
                ResponseOutcome::Continue => body,
                ResponseOutcome::Replace(body) => body,
                ResponseOutcome::RewriteBody(plan) => route.chain.rewrite_body(&plan, &mut head, body, &mut ctx),
            };
            traced(&route.chain, &mut ctx, trace);
            if let Some(plugin) = route.chain.plugins().get(ran) {
                head.extensions.insert(super::access::AnsweredBy(plugin.name().to_owned()));
            }
            Err(ProxyError::Answered(Answer(Box::new(Response::from_parts(head, ResponseBody::full(body))))))
        }
    }
}

/// Runs the response phase on an upstream's response.
pub async fn response(chain: &Chain, phase: Phase, response: Response<ResponseBody>, trace: Option<&mut Trace>) -> Response<ResponseBody> {
    let Phase { mut ctx, ran } = phase;
    let (mut head, body) = response.into_parts();
    let response = match chain.on_response(ran, &mut head, &mut ctx) {
        ResponseOutcome::Continue => Response::from_parts(head, body),
        ResponseOutcome::Replace(bytes) => Response::from_parts(head, ResponseBody::full(bytes)),
        ResponseOutcome::RewriteBody(plan) => Box::pin(rewrite(chain, &plan, head, body, &mut ctx)).await,
    };
    traced(chain, &mut ctx, trace);
    response
}

/// Moves the plugin calls the chain recorded into the request's trace.
fn traced(chain: &Chain, ctx: &mut RequestContext, trace: Option<&mut Trace>) {
    if let (Some(trace), Some(calls)) = (trace, ctx.calls.as_mut()) {
        trace.plugin_calls(chain, calls);
    }
}

/// Buffers the body (up to the chain's cap) and hands it to the plugins that
/// asked. A body over the cap is their failure: fail-closed gives a 500,
/// fail-open sends the original body on, as it was.
async fn rewrite(
    chain: &Chain,
    plan: &BodyRewrite,
    mut head: http::response::Parts,
    mut body: ResponseBody,
    ctx: &mut RequestContext,
) -> Response<ResponseBody> {
    let cap = chain.max_body();
    let mut buffered = BytesMut::new();
    loop {
        match body.frame().await {
            None => break,
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    buffered.extend_from_slice(data);
                }
                if buffered.len() > cap {
                    return match chain.body_over_limit(plan, &mut head, ctx) {
                        Some(answer) => Response::from_parts(head, ResponseBody::full(answer)),
                        None => Response::from_parts(head, ResponseBody::chained(buffered.freeze(), body)),
                    };
                }
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "upstream body failed while buffering it for a plugin");
                return ProxyError::BadGatewayBody.into_response();
            }
        }
        if body.is_end_stream() {
            break;
        }
    }
    let rewritten: Bytes = chain.rewrite_body(plan, &mut head, buffered.freeze(), ctx);
    Response::from_parts(head, ResponseBody::full(rewritten))
}
