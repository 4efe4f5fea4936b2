//! Every error the admin API answers, as a closed set: each kind has one status and one
//! `type` word, from exhaustive matches, and the body is always
//! `{"error": {"type", "message"}}`. The console shows `message` and branches on `type`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// What went wrong with an admin API call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminError {
    /// No admin token and no console session.
    Unauthorized,
    /// The request is malformed or names something invalid; nothing was changed.
    InvalidRequest,
    /// The request body did not arrive within `limits.body_timeout`.
    RequestTimeout,
    /// The request body is larger than the admin API reads.
    PayloadTooLarge,
    /// The provider, key, route, token or tool named does not exist.
    NotFound,
    /// A model name that no route, provider or model matches.
    NoRoute,
    /// It exists already, or is in use.
    Conflict,
    /// Fluxgate runs without a config file it may edit (detected from the environment).
    ConfigReadOnly,
    /// The config file on disk cannot be read or parsed; fix it first.
    ConfigUnreadable,
    /// No home directory to write a tool's settings into.
    NoHome,
    /// The edit would make the config invalid; nothing was written.
    InvalidConfig,
    /// A tool's own settings file cannot be parsed, so Fluxgate will not edit it.
    ToolConfigInvalid,
    /// A tool was never set up by Fluxgate, so there is nothing to undo.
    NothingToUndo,
    /// The OS keychain cannot be reached (locked, or no Secret Service).
    KeychainUnavailable,
    /// The fleet's shared store (team mode: PostgreSQL) did not answer; nothing was changed.
    SharedStoreUnavailable,
    /// The same check was run moments ago (a key's balance: at most once per 30 s).
    TooSoon,
    /// Fluxgate failed (the store, a file write); the message says what.
    Internal,
}

impl AdminError {
    pub const ALL: [AdminError; 17] = [
        AdminError::Unauthorized,
        AdminError::InvalidRequest,
        AdminError::RequestTimeout,
        AdminError::PayloadTooLarge,
        AdminError::NotFound,
        AdminError::NoRoute,
        AdminError::Conflict,
        AdminError::ConfigReadOnly,
        AdminError::ConfigUnreadable,
        AdminError::NoHome,
        AdminError::InvalidConfig,
        AdminError::ToolConfigInvalid,
        AdminError::NothingToUndo,
        AdminError::KeychainUnavailable,
        AdminError::SharedStoreUnavailable,
        AdminError::TooSoon,
        AdminError::Internal,
    ];

    pub fn status(self) -> StatusCode {
        match self {
            AdminError::Unauthorized => StatusCode::UNAUTHORIZED,
            AdminError::InvalidRequest => StatusCode::BAD_REQUEST,
            AdminError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            AdminError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AdminError::NotFound | AdminError::NoRoute | AdminError::NothingToUndo => {
                StatusCode::NOT_FOUND
            }
            AdminError::Conflict
            | AdminError::ConfigReadOnly
            | AdminError::ConfigUnreadable
            | AdminError::NoHome => StatusCode::CONFLICT,
            AdminError::InvalidConfig | AdminError::ToolConfigInvalid => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            AdminError::KeychainUnavailable | AdminError::SharedStoreUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            AdminError::TooSoon => StatusCode::TOO_MANY_REQUESTS,
            AdminError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `type` word in the body.
    pub fn as_str(self) -> &'static str {
        match self {
            AdminError::Unauthorized => "unauthorized",
            AdminError::InvalidRequest => "invalid_request",
            AdminError::RequestTimeout => "request_timeout",
            AdminError::PayloadTooLarge => "payload_too_large",
            AdminError::NotFound => "not_found",
            AdminError::NoRoute => "no_route",
            AdminError::Conflict => "conflict",
            AdminError::ConfigReadOnly => "config_read_only",
            AdminError::ConfigUnreadable => "config_unreadable",
            AdminError::NoHome => "no_home",
            AdminError::InvalidConfig => "invalid_config",
            AdminError::ToolConfigInvalid => "tool_config_invalid",
            AdminError::NothingToUndo => "nothing_to_undo",
            AdminError::KeychainUnavailable => "keychain_unavailable",
            AdminError::SharedStoreUnavailable => "shared_store_unavailable",
            AdminError::TooSoon => "too_soon",
            AdminError::Internal => "internal_error",
        }
    }
}

/// The response for `kind` with `message`.
pub(crate) fn error(kind: AdminError, message: impl std::fmt::Display) -> Response {
    (
        kind.status(),
        Json(json!({"error": {"type": kind.as_str(), "message": message.to_string()}})),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_word_and_an_error_status() {
        let table = [
            (AdminError::Unauthorized, 401, "unauthorized"),
            (AdminError::InvalidRequest, 400, "invalid_request"),
            (AdminError::RequestTimeout, 408, "request_timeout"),
            (AdminError::PayloadTooLarge, 413, "payload_too_large"),
            (AdminError::NotFound, 404, "not_found"),
            (AdminError::NoRoute, 404, "no_route"),
            (AdminError::Conflict, 409, "conflict"),
            (
                AdminError::SharedStoreUnavailable,
                503,
                "shared_store_unavailable",
            ),
            (AdminError::ConfigReadOnly, 409, "config_read_only"),
            (AdminError::ConfigUnreadable, 409, "config_unreadable"),
            (AdminError::NoHome, 409, "no_home"),
            (AdminError::InvalidConfig, 422, "invalid_config"),
            (AdminError::ToolConfigInvalid, 422, "tool_config_invalid"),
            (AdminError::NothingToUndo, 404, "nothing_to_undo"),
            (AdminError::KeychainUnavailable, 503, "keychain_unavailable"),
            (AdminError::TooSoon, 429, "too_soon"),
            (AdminError::Internal, 500, "internal_error"),
        ];
        assert_eq!(table.len(), AdminError::ALL.len());
        for (kind, status, word) in table {
            assert_eq!(kind.status().as_u16(), status, "{kind:?}");
            assert_eq!(kind.as_str(), word);
        }
        let words: std::collections::HashSet<_> =
            AdminError::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(words.len(), AdminError::ALL.len());
    }
}
