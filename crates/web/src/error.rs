//! Errors: [`WebError`] for starting the server, [`ApiError`] for a request's reply (a status, the
//! field at fault and the fix, as JSON for `/api` and as a page for the rest).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebError {
    #[error("cannot listen on {addr}: {source}: pick a free port with --bind HOST:PORT")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the server stopped: {source}")]
    Serve {
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] vectura_store::StoreError),
    #[error("hashing the password failed: {0}")]
    Hash(String),
    #[error("{0}")]
    Invalid(String),
}

/// A request's failure: its status, the field at fault (if one) and a message that says the fix.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub field: Option<String>,
    pub message: String,
}

/// The JSON body of every error reply.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What is wrong and what to do about it.
    pub error: String,
    /// The request field at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    /// A bad field (422): the field's name and the fix.
    pub fn field(field: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            field: Some(field.to_string()),
            message: message.into(),
        }
    }

    /// A reply with this status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            field: None,
            message: message.into(),
        }
    }

    /// 404 with the message.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    /// A store failure: bad input the store refused is 422, the rest 503 (the database is the
    /// problem, not the request). Never a 500 with a stack of internals: the store's message says
    /// the table and the fix, and names no secret (URLs are masked).
    pub fn store(e: vectura_store::StoreError) -> ApiError {
        use vectura_store::StoreError as S;
        match e {
            S::Invalid(m) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, m),
            other => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, other.to_string()),
        }
    }

    /// The JSON body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.message.clone(),
            field: self.field.clone(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{field}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl From<vectura_store::StoreError> for ApiError {
    fn from(e: vectura_store::StoreError) -> ApiError {
        ApiError::store(e)
    }
}

impl IntoResponse for ApiError {
    /// The JSON body; the error itself rides along as an extension, so that
    /// [`crate::error_pages`] can turn it into a page for a page's route.
    fn into_response(self) -> Response {
        let mut res = (self.status, axum::Json(self.body())).into_response();
        res.extensions_mut().insert(self);
        res
    }
}
