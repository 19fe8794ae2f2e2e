//! The console's form bodies and query strings
//! (`application/x-www-form-urlencoded`), read into name–value pairs: `+` is
//! a space, `%XX` a byte, and the result must be UTF-8.

/// Why a form could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    /// A `%` not followed by two hex digits.
    #[error("`{0}` is not percent-encoded correctly")]
    BadEscape(String),
    /// The decoded bytes are not UTF-8.
    #[error("a form value is not UTF-8")]
    NotUtf8,
}

/// The fields of a form, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form(Vec<(String, String)>);

impl Form {
    /// Reads `encoded` (a body or a query string).
    ///
    /// # Errors
    /// [`FormError`] for a bad escape or a value that is not UTF-8.
    pub fn parse(encoded: &str) -> Result<Self, FormError> {
        let mut fields = Vec::new();
        for pair in encoded.split('&').filter(|pair| !pair.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            fields.push((decode(name)?, decode(value)?));
        }
        Ok(Self(fields))
    }

    /// The first value of `name`, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.as_str())
    }
}

fn decode(raw: &str) -> Result<String, FormError> {
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'+' => decoded.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(at + 1..at + 3)
                    .and_then(|hex| std::str::from_utf8(hex).ok())
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                    .ok_or_else(|| FormError::BadEscape(raw.chars().take(64).collect()))?;
                decoded.push(hex);
                at += 2;
            }
            byte => decoded.push(byte),
        }
        at += 1;
    }
    String::from_utf8(decoded).map_err(|_| FormError::NotUtf8)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // A panic is how these tests fail.

    use super::*;

    #[test]
    fn fields_are_decoded_and_bad_ones_refused() {
        let form = Form::parse("token=ab%2Bc&why=lost+in+the+outage&by=&flag").unwrap();
        assert_eq!(form.get("token"), Some("ab+c"));
        assert_eq!(form.get("why"), Some("lost in the outage"));
        assert_eq!(form.get("by"), Some(""));
        assert_eq!(form.get("flag"), Some(""));
        assert_eq!(form.get("none"), None);
        assert_eq!(Form::parse("a=%E2%9C%93").unwrap().get("a"), Some("✓"));
        assert!(matches!(Form::parse("a=%zz"), Err(FormError::BadEscape(_))));
        assert!(matches!(Form::parse("a=%2"), Err(FormError::BadEscape(_))));
        assert_eq!(Form::parse("a=%FF"), Err(FormError::NotUtf8));
    }
}
