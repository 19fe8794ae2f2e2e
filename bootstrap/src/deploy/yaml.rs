//! Values written into the templates as YAML.

use serde_json::Value;

/// `value` as JSON on one line, a space after each `,` and `:` as the patterns
/// are written by hand; flow YAML too. Keys are sorted, so the text is the
/// same whichever order the map keeps.
pub(super) fn json(value: &Value) -> String {
    match value {
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(json).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(fields) => {
            let mut fields: Vec<(&String, &Value)> = fields.iter().collect();
            fields.sort_by_key(|(key, _)| *key);
            let fields: Vec<String> = fields
                .into_iter()
                .map(|(key, value)| format!("{}: {}", Value::from(key.as_str()), json(value)))
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
        scalar => scalar.to_string(),
    }
}

/// `text` as a double-quoted YAML string (a JSON string is one).
pub(super) fn double_quoted(text: &str) -> String {
    Value::from(text).to_string()
}

/// `text` as a single-quoted YAML string, its quotes doubled.
pub(super) fn single_quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
