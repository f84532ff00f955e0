//! `Chain`: the plugins of one route, run as an onion. Request phase in
//! order; response phase in reverse, through the plugins that ran; body
//! rewrites after that, for the plugins that asked.

use std::sync::Arc;

use bytes::Bytes;
use http::{request, response};

use crate::bindings::{RequestAction, ResponseAction};
use crate::context::{HeadBuffer, RequestContext};
use crate::convert::{self, Limits, Pseudo};
use crate::error::Failure;
use crate::context::CallRecord;
use crate::metrics::{Outcome, Phase, PluginCalls};
use crate::pool::ConfiguredPlugin;
use crate::settings::OnError;

/// The configured plugins of a route, in the order the route lists them.
/// Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Chain {
    plugins: Arc<[Arc<ConfiguredPlugin>]>,
    /// Where each plugin's calls are counted and timed, by position (none:
    /// nothing is recorded).
    metrics: Option<Arc<[Arc<PluginCalls>]>>,
}

/// What the request phase decided.
#[derive(Debug)]
pub enum RequestOutcome {
    /// Send the (possibly changed) request upstream; then call
    /// [`Chain::on_response`] with this `ran`.
    Continue { ran: usize },
    /// Answer the client with `response` without going upstream. A plugin
    /// answered (or failed closed: a 500). Still call
    /// [`Chain::on_response`] with `ran`, the plugins before it, on the
    /// response's parts.
    Respond {
        ran: usize,
        response: http::Response<Bytes>,
    },
}

/// What the response phase decided.
#[derive(Debug)]
pub enum ResponseOutcome {
    /// Send the response (parts possibly changed) with the body you have.
    Continue,
    /// Buffer the body, up to [`Chain::max_body`], and pass it to
    /// [`Chain::rewrite_body`] with this plan (or, if it is larger, call
    /// [`Chain::body_over_limit`]).
    RewriteBody(BodyRewrite),
    /// Drop the body you have and send this one; `parts` were replaced and
    /// carry a matching `content-length`.
    Replace(Bytes),
}

/// The plugins that asked to rewrite the body, in the order to call them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BodyRewrite {
    plugins: Vec<usize>,
}

impl BodyRewrite {
    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty()
    }
}

impl FromIterator<Arc<ConfiguredPlugin>> for Chain {
    fn from_iter<I: IntoIterator<Item = Arc<ConfiguredPlugin>>>(iter: I) -> Self {
        Self {
            plugins: iter.into_iter().collect(),
            metrics: None,
        }
    }
}

impl Chain {
    pub fn new(plugins: Vec<Arc<ConfiguredPlugin>>) -> Self {
        Self {
            plugins: plugins.into(),
            metrics: None,
        }
    }

    /// The chain recording each plugin's calls into `metrics` (one per
    /// plugin, in the same order; a list of another length is ignored).
    pub fn with_metrics(mut self, metrics: Vec<Arc<PluginCalls>>) -> Self {
        self.metrics = (metrics.len() == self.plugins.len()).then(|| metrics.into());
        self
    }

    /// Each plugin's call metrics, in order, when the chain records them.
    pub fn metrics(&self) -> Option<&[Arc<PluginCalls>]> {
        self.metrics.as_deref()
    }

    fn calls(&self, at: usize) -> Option<&PluginCalls> {
        self.metrics.as_ref().and_then(|m| m.get(at)).map(|m| &**m)
    }

    /// Runs `call` (one call into the plugin at `at`), timing it when the
    /// chain records metrics or the request is traced (`ctx.calls`).
    #[inline]
    fn timed<R>(
        &self,
        at: usize,
        phase: Phase,
        ctx: &mut RequestContext,
        call: impl FnOnce(&mut RequestContext) -> R,
    ) -> R {
        let calls = self.calls(at);
        if calls.is_none() && ctx.calls.is_none() {
            return call(ctx);
        }
        let started = wasmgate_metrics::clock::now_ns();
        let result = call(ctx);
        let ended = wasmgate_metrics::clock::now_ns();
        if let Some(calls) = calls {
            calls.took(phase, ended.saturating_sub(started));
        }
        if let Some(traced) = ctx.calls.as_mut() {
            traced.push(CallRecord { plugin: at, phase, started_ns: started, ended_ns: ended, outcome: Outcome::Continue });
        }
        result
    }

    #[inline]
    fn ended(&self, ctx: &mut RequestContext, at: usize, phase: Phase, outcome: Outcome) {
        if let Some(calls) = self.calls(at) {
            calls.ended(phase, outcome);
        }
        if let Some(last) = ctx.calls.as_mut().and_then(|c| c.last_mut()) {
            if last.plugin == at && last.phase == phase {
                last.outcome = outcome;
            }
        }
    }

    pub fn plugins(&self) -> &[Arc<ConfiguredPlugin>] {
        &self.plugins
    }

    pub fn len(&self) -> usize {
        self.plugins.len()
    }

    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty()
    }

    fn limits(&self) -> Limits {
        match self.plugins.first() {
            Some(p) => {
                let settings = &p.plugin().runtime.settings;
                Limits {
                    max_body: settings.max_body,
                    max_head: settings.max_head,
                }
            }
            None => Limits {
                max_body: 0,
                max_head: 0,
            },
        }
    }

    /// The largest body the chain buffers for a rewrite.
    pub fn max_body(&self) -> usize {
        self.limits().max_body
    }

    /// Runs the request phase. Never fails: a plugin that fails is skipped
    /// (fail-open) or answers 500 (fail-closed), with a log line.
    pub fn on_request(
        &self,
        parts: &mut request::Parts,
        ctx: &mut RequestContext,
    ) -> RequestOutcome {
        let limits = self.limits();
        let mut buffer = ctx.take_head_buffer();
        let outcome = self.request_phase(parts, ctx, &mut buffer, limits);
        ctx.put_head_buffer(buffer);
        outcome
    }

    fn request_phase(
        &self,
        parts: &mut request::Parts,
        ctx: &mut RequestContext,
        buffer: &mut HeadBuffer,
        limits: Limits,
    ) -> RequestOutcome {
        // Packed again only after a plugin changed the request.
        let mut stale = true;
        for (at, plugin) in self.plugins.iter().enumerate() {
            if !plugin.phases().request() {
                continue;
            }
            if stale {
                convert::request_head(&mut buffer.head, parts, &buffer.context);
                stale = false;
            }
            let head = &buffer.head;
            let called = self.timed(at, Phase::Request, ctx, |ctx| {
                plugin.call(ctx, |b, store| b.call_on_request(store, head))
            });
            let failure = match called {
                Ok(RequestAction::NoPhase) => {
                    self.ended(ctx, at, Phase::Request, Outcome::Continue);
                    plugin.phases().drop_request();
                    continue;
                }
                Ok(RequestAction::Continue(edits)) => {
                    let response = match edits.response.is_empty() {
                        true => Ok(Vec::new()),
                        false => convert::parse_edits(&edits.response, Pseudo::Response, limits),
                    };
                    let applied = response.and_then(|response| {
                        convert::apply_request_edits(parts, &edits.request, limits)?;
                        Ok(response)
                    });
                    match applied {
                        Ok(response) => {
                            self.ended(ctx, at, Phase::Request, Outcome::Continue);
                            stale |= !edits.request.is_empty();
                            if !response.is_empty() {
                                ctx.chain.response_edits.push((at, response));
                            }
                            continue;
                        }
                        Err(why) => Failure::Invalid(why),
                    }
                }
                Ok(RequestAction::Respond(answer)) => {
                    match convert::complete_response(answer, limits) {
                        Ok((status, headers, body)) => {
                            let mut response = http::Response::new(body);
                            *response.status_mut() = status;
                            *response.headers_mut() = headers;
                            self.ended(ctx, at, Phase::Request, Outcome::Answered);
                            return RequestOutcome::Respond { ran: at, response };
                        }
                        Err(why) => Failure::Invalid(why),
                    }
                }
                Err(failure) => failure,
            };
            self.ended(ctx, at, Phase::Request, Outcome::of(&failure));
            if failure == Failure::StateUnavailable {
                // Redis is down and the entry is fail-closed: the backend
                // logged the outage once; every request now is a 503.
                return RequestOutcome::Respond { ran: at, response: convert::state_unavailable() };
            }
            if report(plugin, ctx, Phase::Request, &failure) == OnError::FailOpen {
                // Skipped for the whole request: its response phase too.
                ctx.chain.skipped.push(at);
                continue;
            }
            let (status, headers) = convert::failure_head();
            let mut response =
                http::Response::new(Bytes::from_static(convert::FAILURE_BODY.as_bytes()));
            *response.status_mut() = status;
            *response.headers_mut() = headers;
            return RequestOutcome::Respond { ran: at, response };
        }
        RequestOutcome::Continue {
            ran: self.plugins.len(),
        }
    }

    /// Runs the response phase in reverse through the first `ran` plugins.
    pub fn on_response(
        &self,
        ran: usize,
        parts: &mut response::Parts,
        ctx: &mut RequestContext,
    ) -> ResponseOutcome {
        let limits = self.limits();
        let mut buffer = ctx.take_head_buffer();
        let outcome = self.response_phase(ran, parts, ctx, &mut buffer, limits);
        ctx.put_head_buffer(buffer);
        outcome
    }

    fn response_phase(
        &self,
        ran: usize,
        parts: &mut response::Parts,
        ctx: &mut RequestContext,
        buffer: &mut HeadBuffer,
        limits: Limits,
    ) -> ResponseOutcome {
        let mut replaced: Option<Bytes> = None;
        let mut plan = BodyRewrite::default();
        // Packed again only after something changed the response.
        let mut stale = true;
        for at in (0..ran.min(self.plugins.len())).rev() {
            let plugin = &self.plugins[at];
            // What this plugin asked for at request time comes first.
            if let Some(i) = ctx.chain.response_edits.iter().position(|(p, _)| *p == at) {
                let (_, edits) = ctx.chain.response_edits.swap_remove(i);
                convert::apply_response_edits(parts, edits);
                stale = true;
            }
            if !plugin.phases().response() {
                continue;
            }
            if ctx.chain.skipped.contains(&at) {
                self.ended(ctx, at, Phase::Response, Outcome::FailOpenSkipped);
                continue;
            }
            if stale {
                convert::response_head(&mut buffer.head, parts, &buffer.context);
                stale = false;
            }
            let (status, head) = (parts.status.as_u16(), &buffer.head);
            let called = self.timed(at, Phase::Response, ctx, |ctx| {
                plugin.call(ctx, |b, store| b.call_on_response(store, status, head))
            });
            let failure = match called {
                Ok(ResponseAction::NoPhase) => {
                    self.ended(ctx, at, Phase::Response, Outcome::Continue);
                    plugin.phases().drop_response();
                    continue;
                }
                Ok(ResponseAction::Continue(edits)) => match edit_response(parts, &edits, limits) {
                    Ok(changed) => {
                        self.ended(ctx, at, Phase::Response, Outcome::Continue);
                        stale |= changed;
                        continue;
                    }
                    Err(why) => Failure::Invalid(why),
                },
                Ok(ResponseAction::RewriteBody(edits)) => {
                    match edit_response(parts, &edits, limits) {
                        Ok(changed) => {
                            self.ended(ctx, at, Phase::Response, Outcome::Continue);
                            stale |= changed;
                            plan.plugins.push(at);
                            continue;
                        }
                        Err(why) => Failure::Invalid(why),
                    }
                }
                Ok(ResponseAction::Replace(answer)) => {
                    match convert::complete_response(answer, limits) {
                        Ok((status, headers, body)) => {
                            parts.status = status;
                            parts.headers = headers;
                            stale = true;
                            replaced = Some(body);
                            plan.plugins.clear();
                            self.ended(ctx, at, Phase::Response, Outcome::Answered);
                            continue;
                        }
                        Err(why) => Failure::Invalid(why),
                    }
                }
                Err(failure) => failure,
            };
            self.ended(ctx, at, Phase::Response, Outcome::of(&failure));
            if report(plugin, ctx, Phase::Response, &failure) == OnError::FailClosed {
                stale = true;
                replaced = Some(fail_closed(parts));
                plan.plugins.clear();
            }
        }
        match (replaced, plan.is_empty()) {
            (Some(body), true) => ResponseOutcome::Replace(body),
            (Some(body), false) => {
                ResponseOutcome::Replace(self.rewrite_body(&plan, parts, body, ctx))
            }
            (None, true) => ResponseOutcome::Continue,
            (None, false) => ResponseOutcome::RewriteBody(plan),
        }
    }

    /// Passes the whole body through the plugins of `plan`, then sets
    /// `content-length` (dropping `transfer-encoding`). A plugin that fails
    /// closed turns the response into a 500.
    pub fn rewrite_body(
        &self,
        plan: &BodyRewrite,
        parts: &mut response::Parts,
        body: Bytes,
        ctx: &mut RequestContext,
    ) -> Bytes {
        let max_body = self.max_body();
        let mut body = body;
        for &at in &plan.plugins {
            let Some(plugin) = self.plugins.get(at) else {
                continue;
            };
            let called = self.timed(at, Phase::ResponseBody, ctx, |ctx| {
                plugin.call(ctx, |b, store| b.call_on_response_body(store, &body))
            });
            let failure = match called {
                Ok(new) if new.len() <= max_body => {
                    self.ended(ctx, at, Phase::ResponseBody, Outcome::Continue);
                    body = Bytes::from(new);
                    continue;
                }
                Ok(new) => Failure::Invalid(format!(
                    "rewritten body of {} bytes, more than {max_body}",
                    new.len()
                )),
                Err(failure) => failure,
            };
            self.ended(ctx, at, Phase::ResponseBody, Outcome::of(&failure));
            if report(plugin, ctx, Phase::ResponseBody, &failure) == OnError::FailClosed {
                return fail_closed(parts);
            }
        }
        convert::set_content_length(&mut parts.headers, body.len());
        body
    }

    /// The body was larger than [`Chain::max_body`]: that is an error of the
    /// plugins that asked for it. Returns the body to send instead (a 500,
    /// `parts` replaced) if one of them fails closed; `None` means send the
    /// response unchanged.
    pub fn body_over_limit(
        &self,
        plan: &BodyRewrite,
        parts: &mut response::Parts,
        ctx: &mut RequestContext,
    ) -> Option<Bytes> {
        let failure = Failure::Invalid(format!(
            "asked to rewrite a body larger than {} bytes",
            self.max_body()
        ));
        let mut closed = false;
        for &at in &plan.plugins {
            let Some(plugin) = self.plugins.get(at) else {
                continue;
            };
            self.ended(ctx, at, Phase::ResponseBody, Outcome::InvalidOutput);
            closed |= report(plugin, ctx, Phase::ResponseBody, &failure) == OnError::FailClosed;
        }
        closed.then(|| fail_closed(parts))
    }
}

/// Checks a plugin's response edits and applies them all, or none; says
/// whether anything changed.
fn edit_response(
    parts: &mut response::Parts,
    edits: &[u8],
    limits: Limits,
) -> Result<bool, String> {
    if edits.is_empty() {
        return Ok(false);
    }
    let edits = convert::parse_edits(edits, Pseudo::Response, limits)?;
    let changed = !edits.is_empty();
    convert::apply_response_edits(parts, edits);
    Ok(changed)
}

/// Turns `parts` into the 500 of a fail-closed plugin; returns its body.
fn fail_closed(parts: &mut response::Parts) -> Bytes {
    let (status, headers) = convert::failure_head();
    parts.status = status;
    parts.headers = headers;
    Bytes::from_static(convert::FAILURE_BODY.as_bytes())
}

/// Logs a plugin failure and returns the policy that applies.
fn report(
    plugin: &ConfiguredPlugin,
    ctx: &RequestContext,
    phase: Phase,
    failure: &Failure,
) -> OnError {
    let on_error = plugin.on_error();
    let action = match on_error {
        OnError::FailClosed => "answering 500",
        OnError::FailOpen => "skipping the plugin for this request",
    };
    tracing::warn!(
        plugin = plugin.name(),
        version = plugin.version(),
        route = &*ctx.route,
        phase = phase.export(),
        on_error = on_error.as_str(),
        reason = %failure,
        "plugin failed; {action}",
    );
    on_error
}
