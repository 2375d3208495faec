//! The one error type of deckhand, and its single conversion into a Rhai error.

use rhai::{Dynamic, EvalAltResult, Map, Position};

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while deckhand works, with what a person needs to act on it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A script value that AWS would reject (or that deckhand cannot use), caught before any call.
    #[error("invalid {key} {value}: {allowed}")]
    Invalid {
        /// The map key or argument, e.g. `subnet.cidr`.
        key: String,
        /// The offending value, as the script wrote it.
        value: String,
        /// What is allowed instead.
        allowed: String,
    },
    /// A map key that the primitive does not know.
    #[error("unknown key `{key}` in {context}; allowed keys: {allowed}")]
    UnknownKey {
        /// The key as written.
        key: String,
        /// The primitive, e.g. `subnet()`.
        context: String,
        /// The keys the primitive accepts.
        allowed: String,
    },
    /// A required map key that is missing.
    #[error("missing key `{key}` in {context}: {what}")]
    MissingKey {
        /// The key.
        key: String,
        /// The primitive, e.g. `subnet()`.
        context: String,
        /// What the key is for.
        what: String,
    },
    /// An error returned by an AWS API.
    #[error("{operation} failed: {code}: {message}{}", hint_suffix(.hint))]
    Aws {
        /// The API operation, e.g. `CreateSubnet`.
        operation: String,
        /// The AWS error code, e.g. `InvalidSubnet.Conflict`.
        code: String,
        /// The AWS error message.
        message: String,
        /// What usually fixes it, where deckhand knows.
        hint: Option<String>,
    },
    /// Existing state that deckhand must not or cannot change the way the script asks.
    #[error("{message}{}", hint_suffix(.hint))]
    Conflict {
        /// What conflicts.
        message: String,
        /// How to resolve it.
        hint: Option<String>,
    },
    /// A wait that did not end in time (a rollout, a certificate, a lock).
    #[error("{what} did not finish within {waited}{}", hint_suffix(.hint))]
    Timeout {
        /// What was waited for, e.g. `service web to become stable`.
        what: String,
        /// How long deckhand waited, for people (e.g. `15m`).
        waited: String,
        /// What to do next.
        hint: Option<String>,
    },
    /// A bug in deckhand or an AWS reply that lacks what its API promises (never the user's fault).
    #[error("internal error: {0}")]
    Internal(String),
    /// The local emulator could not be provisioned or started.
    #[error("local emulator: {0}")]
    Emulator(String),
    /// A script could not be read, parsed or evaluated (already formatted for the terminal).
    #[error("{0}")]
    Script(String),
    /// A file or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What deckhand was doing.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// How a hint follows the message in an error's text.
const HINT: &str = "\n  hint: ";

fn hint_suffix(hint: &Option<String>) -> String {
    hint.as_ref().map(|h| format!("{HINT}{h}")).unwrap_or_default()
}

impl Error {
    /// An `Invalid` error for `key` = `value`, explaining what is `allowed`.
    pub fn invalid(key: impl Into<String>, value: impl std::fmt::Display, allowed: impl Into<String>) -> Self {
        Error::Invalid { key: key.into(), value: value.to_string(), allowed: allowed.into() }
    }

    /// A `Conflict` error with an optional hint.
    pub fn conflict(message: impl Into<String>, hint: Option<&str>) -> Self {
        Error::Conflict { message: message.into(), hint: hint.map(str::to_string) }
    }

    /// An AWS reply that lacks a field its API documents (e.g. `CreateSubnet` without `SubnetId`):
    /// an error that names it, never an empty id carried on.
    pub fn missing(operation: &str, field: &str) -> Self {
        Error::Internal(format!("{operation} replied without {field}"))
    }

    /// An `Io` error with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }

    /// The AWS error code, when this is an AWS error.
    pub fn aws_code(&self) -> Option<&str> {
        match self {
            Error::Aws { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// Awaits an SDK call whose reply says nothing more than that it succeeded.
pub async fn sent<T, E, R>(
    operation: &str,
    call: impl Future<Output = std::result::Result<T, aws_smithy_runtime_api::client::result::SdkError<E, R>>>,
) -> Result<()>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    call.await.map(drop).map_err(|e| aws_error(operation, e))
}

/// Converts any SDK error into [`Error::Aws`], keeping code and message and adding a hint.
pub fn aws_error<E, R>(operation: &str, err: aws_smithy_runtime_api::client::result::SdkError<E, R>) -> Error
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_smithy_runtime_api::client::result::SdkError;
    let (code, message) = match &err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            (
                e.code().unwrap_or("Unknown").to_string(),
                e.message().map(str::to_string).unwrap_or_else(|| e.to_string()),
            )
        }
        SdkError::DispatchFailure(failure) => dispatch_failure(failure),
        SdkError::TimeoutError(_) => ("Timeout".to_string(), "the request timed out".to_string()),
        other => ("RequestFailed".to_string(), source_chain(other)),
    };
    let hint = hint_for(&code);
    Error::Aws { operation: operation.to_string(), code, message, hint }
}

/// A request that never reached AWS: most often no credentials, else no connection.
fn dispatch_failure(failure: &aws_smithy_runtime_api::client::result::DispatchFailure) -> (String, String) {
    let detail = format!("{failure:?}");
    if detail.contains("ProviderError") || detail.contains("CredentialsNotLoaded") {
        let message = "no AWS credentials were found (environment, profile, SSO, credential_process, instance role)";
        return ("NoCredentials".to_string(), message.to_string());
    }
    let message = match failure.as_connector_error() {
        Some(connector) => source_chain(connector),
        None => "the request could not be sent".to_string(),
    };
    ("DispatchFailure".to_string(), message)
}

fn source_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn hint_for(code: &str) -> Option<String> {
    let hint = match code {
        "UnauthorizedOperation" | "AccessDenied" | "AccessDeniedException" => {
            "the credentials in use lack this permission; check --profile and the IAM policy"
        }
        "ExpiredToken" | "ExpiredTokenException" | "RequestExpired" => {
            "the session expired; log in again (e.g. `aws sso login`)"
        }
        "InvalidClientTokenId" | "UnrecognizedClientException" | "AuthFailure" => {
            "the credentials are not valid for this account or region"
        }
        "DispatchFailure" => "no connection to the AWS endpoint; check network, region and AWS_ENDPOINT_URL",
        "NoCredentials" => {
            "log in (`aws sso login`, `aws configure`), pass --profile, or try deckhand without AWS: --local"
        }
        "RequestLimitExceeded" | "Throttling" | "ThrottlingException" => {
            "AWS throttled the requests even after retries; try again in a minute"
        }
        _ => return None,
    };
    Some(hint.to_string())
}

/// The one place where deckhand errors become Rhai errors: a value scripts can catch, the map
/// [`Error::to_script_value`] describes. Rhai fills in the call's position.
impl From<Error> for Box<EvalAltResult> {
    fn from(err: Error) -> Self {
        EvalAltResult::ErrorRuntime(err.to_script_value().into(), Position::NONE).into()
    }
}

impl Error {
    /// The stable code scripts see: the AWS error code for AWS errors, else one of `invalid`,
    /// `unknown_key`, `missing_key`, `conflict`, `timeout`, `internal`, `emulator`, `io`, `script`.
    pub fn code(&self) -> &str {
        match self {
            Error::Aws { code, .. } => code,
            Error::Invalid { .. } => "invalid",
            Error::UnknownKey { .. } => "unknown_key",
            Error::MissingKey { .. } => "missing_key",
            Error::Conflict { .. } => "conflict",
            Error::Timeout { .. } => "timeout",
            Error::Internal(_) => "internal",
            Error::Emulator(_) => "emulator",
            Error::Script(_) => "script",
            Error::Io { .. } => "io",
        }
    }

    /// What `try { ... } catch (e) { ... }` gives a script: `#{ message, code, operation, hint }`.
    /// `message` is the sentence deckhand prints (without the hint), `code` is [`Error::code`],
    /// `operation` the AWS API operation for AWS errors and `()` otherwise, `hint` what usually
    /// fixes it or `()`. An uncaught error prints from this map exactly as from the error itself.
    pub fn to_script_value(&self) -> Map {
        let text = self.to_string();
        let (message, hint) = match text.split_once(HINT) {
            Some((message, hint)) => (message.to_string(), Some(hint.to_string())),
            None => (text, None),
        };
        let operation = match self {
            Error::Aws { operation, .. } => Dynamic::from(operation.clone()),
            _ => Dynamic::UNIT,
        };
        let mut map = Map::new();
        map.insert("message".into(), message.into());
        map.insert("code".into(), self.code().to_string().into());
        map.insert("operation".into(), operation);
        map.insert("hint".into(), hint.map_or(Dynamic::UNIT, Dynamic::from));
        map
    }
}

/// The text of a thrown value the way deckhand prints errors: a deckhand error map (see
/// [`Error::to_script_value`]) as its message and hint, anything else a script threw as it is.
pub fn script_error_text(value: &Dynamic) -> String {
    let Some(map) = value.read_lock::<Map>() else {
        return value.to_string();
    };
    let Some(message) = map.get("message").filter(|m| m.is_string()) else {
        return value.to_string();
    };
    match map.get("hint").filter(|h| !h.is_unit()) {
        Some(hint) => format!("{message}{HINT}{hint}"),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_errors_reach_scripts_with_their_code_and_operation() {
        let err = Error::Aws {
            operation: "GetRole".into(),
            code: "NoSuchEntity".into(),
            message: "role x not found".into(),
            hint: None,
        };
        let map = err.to_script_value();
        assert_eq!(map["code"].to_string(), "NoSuchEntity");
        assert_eq!(map["operation"].to_string(), "GetRole");
        assert_eq!(map["message"].to_string(), "GetRole failed: NoSuchEntity: role x not found");
        assert!(map["hint"].is_unit());
    }

    #[test]
    fn other_errors_have_a_stable_code_and_no_operation() {
        let map = Error::invalid("subnet.cidr", "\"x\"", "an IPv4 CIDR").to_script_value();
        assert_eq!(map["code"].to_string(), "invalid");
        assert!(map["operation"].is_unit());
        let map = Error::conflict("taken", Some("rename it")).to_script_value();
        assert_eq!((map["code"].to_string(), map["message"].to_string()), ("conflict".into(), "taken".into()));
        assert_eq!(map["hint"].to_string(), "rename it");
    }

    #[test]
    fn an_uncaught_error_prints_as_the_error_itself() {
        for err in [Error::conflict("taken", Some("rename it")), Error::Internal("bug".into())] {
            let printed = err.to_string();
            assert_eq!(script_error_text(&err.to_script_value().into()), printed);
        }
        assert_eq!(script_error_text(&Dynamic::from("thrown by a script")), "thrown by a script");
    }
}
