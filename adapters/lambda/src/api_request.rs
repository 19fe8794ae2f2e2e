//! Request bodies of the command API, parsed once into domain commands.
//!
//! Bodies are read into plain shapes first (unknown fields refused), then every
//! value goes through its domain type's constructor, so a bad value is a typed
//! 400 naming the field and the rule it breaks.

use serde::de::DeserializeOwned;
use serde::Deserialize;

use outbox_domain::order::{OrderCommand, OrderLine, OrderStatus, Quantity};
use outbox_domain::repair::RepairCommand;
use outbox_domain::{Money, Text};

use crate::api_error::ApiError;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OpenRepairBody {
    vehicle: String,
    customer: String,
    description: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LineItemBody {
    description: String,
    price_cents: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CancelRepairBody {
    reason: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PlaceOrderBody {
    customer: String,
    items: Vec<OrderLineBody>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OrderLineBody {
    sku: String,
    quantity: i64,
    unit_price_cents: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StatusBody {
    status: String,
}

fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError::malformed("the request needs a JSON body"));
    }
    serde_json::from_slice(body)
        .map_err(|error| ApiError::malformed(format!("the body is not valid: {error}")))
}

fn text(field: &'static str, raw: &str) -> Result<Text, ApiError> {
    Text::parse(field, raw).map_err(|error| ApiError::invalid(error.to_string()))
}

fn money(field: &str, cents: i64) -> Result<Money, ApiError> {
    Money::from_cents(cents).map_err(|error| ApiError::invalid(format!("{field}: {error}")))
}

/// `POST /repairs` `{vehicle, customer, description}`.
///
/// # Errors
/// [`ApiError`] 400 for a malformed body or an invalid value.
pub fn open_repair(body: &[u8]) -> Result<RepairCommand, ApiError> {
    let body: OpenRepairBody = json(body)?;
    Ok(RepairCommand::OpenRepair {
        vehicle: text("vehicle", &body.vehicle)?,
        customer: text("customer", &body.customer)?,
        description: text("description", &body.description)?,
    })
}

/// `POST /repairs/{id}/line-items` `{description, priceCents}`.
///
/// # Errors
/// [`ApiError`] 400 for a malformed body or an invalid value.
pub fn add_line_item(body: &[u8]) -> Result<RepairCommand, ApiError> {
    let body: LineItemBody = json(body)?;
    Ok(RepairCommand::AddLineItem {
        description: text("description", &body.description)?,
        price_cents: money("priceCents", body.price_cents)?,
    })
}

/// `POST /repairs/{id}/cancel` `{reason}`.
///
/// # Errors
/// [`ApiError`] 400 for a malformed body or an invalid value.
pub fn cancel_repair(body: &[u8]) -> Result<RepairCommand, ApiError> {
    let body: CancelRepairBody = json(body)?;
    Ok(RepairCommand::CancelRepair {
        reason: text("reason", &body.reason)?,
    })
}

/// `POST /orders` `{customer, items: [{sku, quantity, unitPriceCents}]}`.
///
/// # Errors
/// [`ApiError`] 400 for a malformed body or an invalid value.
pub fn place_order(body: &[u8]) -> Result<OrderCommand, ApiError> {
    let body: PlaceOrderBody = json(body)?;
    let items = body
        .items
        .iter()
        .map(|line| {
            Ok(OrderLine {
                sku: text("sku", &line.sku)?,
                quantity: Quantity::new(line.quantity)
                    .map_err(|error| ApiError::invalid(error.to_string()))?,
                unit_price_cents: money("unitPriceCents", line.unit_price_cents)?,
            })
        })
        .collect::<Result<_, ApiError>>()?;
    Ok(OrderCommand::PlaceOrder {
        customer: text("customer", &body.customer)?,
        items,
    })
}

/// `POST /orders/{id}/status` `{status}`, e.g. `"PREPARING"`.
///
/// # Errors
/// [`ApiError`] 400 for a malformed body or an unknown status.
pub fn change_status(body: &[u8]) -> Result<OrderCommand, ApiError> {
    let body: StatusBody = json(body)?;
    let to: OrderStatus = serde_json::from_value(serde_json::Value::String(body.status.clone()))
        .map_err(|_| {
            ApiError::invalid(format!(
                "unknown status {:?}; one of ACCEPTED, PREPARING, READY_FOR_PICKUP, PICKED_UP, DELIVERED, CANCELLED",
                body.status.chars().take(64).collect::<String>()
            ))
        })?;
    Ok(OrderCommand::ChangeStatus { to })
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::http::StatusCode;

    #[test]
    fn valid_bodies_become_commands() {
        let order = place_order(
            br#"{"customer":"Ada","items":[{"sku":"PIZZA","quantity":2,"unitPriceCents":950}]}"#,
        )
        .unwrap();
        assert!(matches!(order, OrderCommand::PlaceOrder { ref items, .. } if items.len() == 1));
        assert_eq!(
            change_status(br#"{"status":"READY_FOR_PICKUP"}"#).unwrap(),
            OrderCommand::ChangeStatus {
                to: OrderStatus::ReadyForPickup
            }
        );
        assert!(matches!(
            add_line_item(br#"{"description":"pads","priceCents":4999}"#).unwrap(),
            RepairCommand::AddLineItem { .. }
        ));
    }

    #[test]
    fn bad_bodies_are_typed_400s_naming_the_problem() {
        let cases: [(&[u8], &str); 7] = [
            (b"", "MalformedRequest"),
            (b"{not json", "MalformedRequest"),
            (br#"{"vehicle":"B-1","customer":"Ada"}"#, "MalformedRequest"),
            (
                br#"{"vehicle":"B-1","customer":"Ada","description":"x","extra":1}"#,
                "MalformedRequest",
            ),
            (
                br#"{"vehicle":"  ","customer":"Ada","description":"x"}"#,
                "InvalidInput",
            ),
            (
                br#"{"vehicle":7,"customer":"Ada","description":"x"}"#,
                "MalformedRequest",
            ),
            (br#"[]"#, "MalformedRequest"),
        ];
        for (body, code) in cases {
            let error = open_repair(body).unwrap_err();
            assert_eq!(
                (error.status(), error.code()),
                (StatusCode::BAD_REQUEST, code),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(
            add_line_item(br#"{"description":"x","priceCents":-1}"#)
                .unwrap_err()
                .code(),
            "InvalidInput"
        );
        assert_eq!(
            place_order(
                br#"{"customer":"Ada","items":[{"sku":"A","quantity":0,"unitPriceCents":1}]}"#
            )
            .unwrap_err()
            .code(),
            "InvalidInput"
        );
        assert_eq!(
            change_status(br#"{"status":"TELEPORTED"}"#)
                .unwrap_err()
                .code(),
            "InvalidInput"
        );
    }
}
