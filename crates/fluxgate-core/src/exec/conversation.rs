//! What the executor answers or keeps without an upstream: emulated Responses conversations
//! (`previous_response_id` on upstreams without a Responses API) and local `count_tokens`
//! estimates for routes no Anthropic upstream can count for.

use bytes::Bytes;
use http::HeaderMap;

use super::request::now_ms;
use super::{Executor, ProxyError, ProxyRequest, ProxyResponse};
use crate::formats::body::read_head;
use crate::formats::errors::ErrorCode;
use crate::formats::translate::{estimate, responses};
use crate::store::Conversations;

impl Executor {
    /// Replaces an emulated `previous_response_id` with the stored conversation (for every
    /// candidate: no upstream knows Fluxgate's ids). Foreign ids are left for OpenAI.
    pub(super) fn expand_previous(&self, req: &mut ProxyRequest) -> Result<(), ProxyError> {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&req.body) else {
            return Ok(());
        };
        let Some(id) =
            responses::previous_response_id(&v).filter(|id| responses::is_emulated_id(id))
        else {
            return Ok(());
        };
        let prior = self
            .responses
            .as_ref()
            .and_then(|s| s.load_response(id, now_ms()).ok().flatten());
        let Some(serde_json::Value::Array(prior)) = prior else {
            return Err(ProxyError::new(
                ErrorCode::InvalidRequest,
                format!("Previous response with id '{id}' not found. Fluxgate keeps emulated responses for 30 days, and only those created with `store` on."),
            ));
        };
        let expanded = responses::expand(&v, &prior);
        let body = serde_json::to_vec(&expanded)
            .map_err(|e| ProxyError::new(ErrorCode::Internal, e.to_string()))?;
        req.body = Bytes::from(body);
        req.model_span = read_head(&req.body).ok().and_then(|h| h.model_span);
        Ok(())
    }
}

/// Answers `count_tokens` with a local estimate (marked `x-fluxgate-estimate: local`).
pub(super) fn local_count(req: &ProxyRequest) -> Result<ProxyResponse, ProxyError> {
    let n = estimate::count(req.dialect, &req.body)
        .map_err(|e| ProxyError::new(ErrorCode::InvalidRequest, e.to_string()))?;
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    headers.insert(
        "x-fluxgate-estimate",
        http::HeaderValue::from_static("local"),
    );
    Ok(ProxyResponse::Complete {
        status: 200,
        headers,
        body: Bytes::from(format!("{{\"input_tokens\":{n}}}")),
    })
}

/// Stores an emulated response's conversation (its input items, then its output).
pub(crate) fn keep_response(
    store: &dyn Conversations,
    mut items: Vec<serde_json::Value>,
    response: &serde_json::Value,
) {
    let Some(id) = response.get("id").and_then(|i| i.as_str()) else {
        return;
    };
    items.extend(responses::output_items(response));
    if let Err(e) = store.save_response(id, &serde_json::Value::Array(items), now_ms()) {
        tracing::warn!(error = %e, "cannot store the response for previous_response_id");
    }
}
