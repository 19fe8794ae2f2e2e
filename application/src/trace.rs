//! W3C trace context (`traceparent`), captured when an event is appended.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A W3C `traceparent` header value: `00-<trace id>-<parent span id>-<flags>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Traceparent(String);

/// Why a `traceparent` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a valid W3C traceparent")]
pub struct TraceparentError(String);

impl Traceparent {
    /// Parses a version-00 `traceparent`, refusing all-zero ids.
    ///
    /// # Errors
    /// [`TraceparentError`] when the value is not well formed.
    pub fn parse(raw: &str) -> Result<Self, TraceparentError> {
        let fail = || TraceparentError(raw.chars().take(80).collect());
        let parts: Vec<&str> = raw.split('-').collect();
        let [version, trace, span, flags] = parts.as_slice() else {
            return Err(fail());
        };
        let hex = |s: &str, len: usize| {
            s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        };
        let zero = |s: &str| s.bytes().all(|b| b == b'0');
        if *version != "00"
            || !hex(trace, 32)
            || !hex(span, 16)
            || !hex(flags, 2)
            || zero(trace)
            || zero(span)
        {
            return Err(fail());
        }
        Ok(Self(raw.to_owned()))
    }

    /// Starts a new sampled trace whose trace id is `trace` and span id the low half of `span`.
    pub fn root(trace: Uuid, span: Uuid) -> Self {
        let span_id = (span.as_u128() as u64).max(1);
        Self(format!("00-{}-{span_id:016x}-01", trace.simple()))
    }

    /// The header value.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Traceparent {
    type Error = TraceparentError;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<Traceparent> for String {
    fn from(value: Traceparent) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_root_trace_is_a_valid_traceparent() {
        let root = Traceparent::root(Uuid::from_u128(42), Uuid::from_u128(7));
        assert_eq!(Traceparent::parse(root.as_str()), Ok(root));
    }

    #[test]
    fn malformed_traceparents_are_refused() {
        for bad in [
            "",
            "00-abc-def-01",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        ] {
            assert!(Traceparent::parse(bad).is_err(), "{bad}");
        }
        assert!(
            Traceparent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").is_ok()
        );
    }
}
