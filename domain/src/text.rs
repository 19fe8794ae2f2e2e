//! Validated free text: names, descriptions, reasons.

use serde::{Deserialize, Serialize};

/// A trimmed, non-empty piece of text of at most [`Text::MAX_CHARS`] characters,
/// free of control characters (but line feed and tab) and of the bidirectional
/// override and isolate characters that can make text display other than it
/// reads. It deserializes through [`Text::parse`], so decoded data obeys the
/// same rules as a command's input.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Text(String);

/// Why a piece of text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// Nothing but white space.
    #[error("{field} must not be empty")]
    Empty {
        /// The field the text was meant for.
        field: &'static str,
    },
    /// A control or bidirectional formatting character.
    #[error("{field} contains the control character U+{code_point:04X}")]
    ControlCharacter {
        /// The field the text was meant for.
        field: &'static str,
        /// The character's code point.
        code_point: u32,
    },
    /// Longer than allowed.
    #[error("{field} is {chars} characters long, the limit is {max}")]
    TooLong {
        /// The field the text was meant for.
        field: &'static str,
        /// Its length in characters.
        chars: usize,
        /// The limit.
        max: usize,
    },
}

impl Text {
    /// The longest text accepted, in characters.
    pub const MAX_CHARS: usize = 2_000;

    /// Parses `raw` for the named `field`, trimming surrounding white space.
    ///
    /// # Errors
    /// [`TextError::Empty`] or [`TextError::TooLong`].
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, TextError> {
        let trimmed = raw.trim();
        let chars = trimmed.chars().count();
        if chars == 0 {
            return Err(TextError::Empty { field });
        }
        if chars > Self::MAX_CHARS {
            return Err(TextError::TooLong {
                field,
                chars,
                max: Self::MAX_CHARS,
            });
        }
        if let Some(refused) = trimmed.chars().find(|c| Self::refuses(*c)) {
            return Err(TextError::ControlCharacter {
                field,
                code_point: u32::from(refused),
            });
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// Whether `c` is refused: a control character other than line feed and
    /// tab, or a bidirectional embedding, override or isolate.
    fn refuses(c: char) -> bool {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    }

    /// The text itself.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Text {
    type Error = TextError;

    fn try_from(raw: String) -> Result<Self, TextError> {
        Self::parse("text", &raw)
    }
}

impl From<Text> for String {
    fn from(text: Text) -> String {
        text.0
    }
}

impl std::fmt::Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed_and_must_not_be_blank() {
        assert_eq!(Text::parse("reason", "  ok ").unwrap().as_str(), "ok");
        assert_eq!(
            Text::parse("reason", " \t"),
            Err(TextError::Empty { field: "reason" })
        );
    }

    #[test]
    fn text_deserializes_only_through_its_rules() {
        let ok: Text = serde_json::from_str(r#"" Ada ""#).unwrap();
        assert_eq!(ok.as_str(), "Ada");
        assert_eq!(serde_json::to_string(&ok).unwrap(), r#""Ada""#);
        assert!(serde_json::from_str::<Text>(r#""  ""#).is_err());
        let long = format!("\"{}\"", "x".repeat(Text::MAX_CHARS + 1));
        assert!(serde_json::from_str::<Text>(&long).is_err());
    }

    #[test]
    fn control_and_bidirectional_override_characters_are_refused() {
        for (raw, code_point) in [
            ("a\u{0}b", 0x0),
            ("a\u{1b}[31mb", 0x1b),
            ("a\u{7f}b", 0x7f),
            ("a\u{202e}b", 0x202e),
            ("a\u{2066}b", 0x2066),
        ] {
            assert_eq!(
                Text::parse("note", raw),
                Err(TextError::ControlCharacter {
                    field: "note",
                    code_point
                })
            );
        }
        assert!(Text::parse("note", "line one\nline two\tand a tab").is_ok());
        assert!(Text::parse("note", "Straße, 東京, مرحبا").is_ok());
    }

    #[test]
    fn text_has_a_length_limit() {
        let long = "x".repeat(Text::MAX_CHARS + 1);
        assert!(matches!(
            Text::parse("description", &long),
            Err(TextError::TooLong { chars, .. }) if chars == Text::MAX_CHARS + 1
        ));
    }
}
