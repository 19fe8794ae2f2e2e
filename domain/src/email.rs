//! Validated email addresses: where a customer is told things.

use serde::{Deserialize, Serialize};

/// An email address in the plain `local@domain` form a mail service accepts:
/// printable ASCII without spaces, quotes or angle brackets, one `@`, a local
/// part of at most 64 characters and a domain of dot-separated labels (letters,
/// digits, dashes) with at least one dot, 254 characters in all. The domain is
/// lowercased; the local part is kept as given. It deserializes through
/// [`EmailAddress::parse`], so decoded data obeys the same rules as a command's input.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

/// Why an email address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} is not an email address: {reason}")]
pub struct EmailError {
    /// The field the address was meant for.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl EmailAddress {
    /// The longest address accepted, in characters.
    pub const MAX_CHARS: usize = 254;
    /// The longest local part (before the `@`), in characters.
    pub const MAX_LOCAL_CHARS: usize = 64;

    /// Parses `raw` for the named `field`, trimming surrounding white space.
    ///
    /// # Errors
    /// [`EmailError`] saying what is wrong.
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, EmailError> {
        let refuse = |reason| Err(EmailError { field, reason });
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return refuse("it is empty");
        }
        if trimmed.len() > Self::MAX_CHARS {
            return refuse("it is longer than 254 characters");
        }
        if !trimmed
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'<' | b'>' | b'(' | b')' | b','))
        {
            return refuse("only printable ASCII without spaces, quotes, brackets or commas");
        }
        let Some((local, domain)) = trimmed.split_once('@') else {
            return refuse("it has no @");
        };
        if domain.contains('@') {
            return refuse("it has more than one @");
        }
        if local.is_empty() || local.len() > Self::MAX_LOCAL_CHARS {
            return refuse("the part before the @ must be 1 to 64 characters");
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let valid_label = |label: &&str| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if labels.len() < 2 || !labels.iter().all(valid_label) {
            return refuse("the domain must be dot-separated labels of letters, digits and dashes");
        }
        Ok(Self(format!("{local}@{}", domain.to_ascii_lowercase())))
    }

    /// The address itself.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = EmailError;

    fn try_from(raw: String) -> Result<Self, EmailError> {
        Self::parse("email address", &raw)
    }
}

impl From<EmailAddress> for String {
    fn from(address: EmailAddress) -> String {
        address.0
    }
}

impl std::fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_address_is_kept_with_its_domain_lowercased() {
        let address = EmailAddress::parse("email", " Ada.L+cars@Example.COM ").unwrap();
        assert_eq!(address.as_str(), "Ada.L+cars@example.com");
    }

    #[test]
    fn what_a_mail_service_would_refuse_is_refused_with_a_reason() {
        for raw in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "ada@@example.com",
            "a@b@example.com",
            "ada lovelace@example.com",
            "Ada <ada@example.com>",
            "ada@exa_mple.com",
            "ada@-example.com",
            "ada@example..com",
            "adä@example.com",
            "ada@example.com\r\nBcc: x@example.com",
        ] {
            let error = EmailAddress::parse("email", raw).unwrap_err();
            assert_eq!(error.field, "email", "{raw}");
        }
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert!(EmailAddress::parse("email", &long_local).is_err());
        let long = format!("a@{}.com", "b".repeat(250));
        assert!(EmailAddress::parse("email", &long).is_err());
    }

    #[test]
    fn an_address_deserializes_only_through_its_rules() {
        let ok: EmailAddress = serde_json::from_str(r#""ada@example.com""#).unwrap();
        assert_eq!(serde_json::to_string(&ok).unwrap(), r#""ada@example.com""#);
        assert!(serde_json::from_str::<EmailAddress>(r#""not an address""#).is_err());
    }
}
