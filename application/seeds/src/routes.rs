//! The seed stories' HTTP routes: request bodies read into plain shapes
//! (unknown fields refused), then every value through its domain type's
//! constructor, so a bad value is a typed 400 naming the field and the rule
//! it breaks.
//!
//! | route | command | success |
//! | --- | --- | --- |
//! | `POST /repairs` `{vehicle, customer, customerEmail, description}` | open | 201 `{repairId, version}` |
//! | `GET /repairs/{id}` | — | 200 `{repairId, version, state}` |
//! | `POST /repairs/{id}/start` | start work | 200 `{repairId, version}` |
//! | `POST /repairs/{id}/line-items` `{description, priceCents}` | add a line item | 200 |
//! | `POST /repairs/{id}/complete` | complete | 200 |
//! | `POST /repairs/{id}/cancel` `{reason}` | cancel | 200 |
//! | `POST /orders` `{customer, items:[{sku, quantity, unitPriceCents}]}` | place | 201 `{orderId, version}` |
//! | `GET /orders/{id}` | — | 200 `{orderId, version, state}` |
//! | `POST /orders/{id}/status` `{status}` | change status | 200 |
//! | `POST /orders/{id}/cancel` | cancel | 200 |

use serde::Deserialize;

use outbox_application::{InputError, Json, NoBody, Routes};
use outbox_domain::{EmailAddress, Money, Text};
use outbox_seeds_domain::order::{Order, OrderCommand, OrderLine, OrderStatus, Quantity};
use outbox_seeds_domain::repair::{Repair, RepairCommand};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OpenRepairBody {
    vehicle: String,
    customer: String,
    customer_email: String,
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

fn money(field: &str, cents: i64) -> Result<Money, InputError> {
    Money::from_cents(cents).map_err(|error| InputError::field(field, error))
}

/// The repairs' routes (seed `000`).
pub fn repairs() -> Routes<Repair> {
    Routes::new("repairs", "repairId")
        .create(|Json(body): Json<OpenRepairBody>| {
            Ok(RepairCommand::OpenRepair {
                vehicle: Text::parse("vehicle", &body.vehicle)?,
                customer: Text::parse("customer", &body.customer)?,
                customer_email: EmailAddress::parse("customerEmail", &body.customer_email)?,
                description: Text::parse("description", &body.description)?,
            })
        })
        .action("start", |NoBody| Ok(RepairCommand::StartWork))
        .action("line-items", |Json(body): Json<LineItemBody>| {
            Ok(RepairCommand::AddLineItem {
                description: Text::parse("description", &body.description)?,
                price_cents: money("priceCents", body.price_cents)?,
            })
        })
        .action("complete", |NoBody| Ok(RepairCommand::CompleteRepair))
        .action("cancel", |Json(body): Json<CancelRepairBody>| {
            Ok(RepairCommand::CancelRepair {
                reason: Text::parse("reason", &body.reason)?,
            })
        })
}

/// The statuses a status change can go to (the others: where an order starts,
/// and a cancellation, which has a route of its own).
const CHANGEABLE: &str = "PREPARING, READY_FOR_PICKUP, PICKED_UP or DELIVERED";

/// The orders' routes (seeds `001`, `002`).
pub fn orders() -> Routes<Order> {
    Routes::new("orders", "orderId")
        .create(|Json(body): Json<PlaceOrderBody>| {
            let items = body
                .items
                .iter()
                .map(|line| {
                    Ok(OrderLine {
                        sku: Text::parse("sku", &line.sku)?,
                        quantity: Quantity::new(line.quantity)
                            .map_err(|error| InputError::invalid(error.to_string()))?,
                        unit_price_cents: money("unitPriceCents", line.unit_price_cents)?,
                    })
                })
                .collect::<Result<_, InputError>>()?;
            Ok(OrderCommand::PlaceOrder {
                customer: Text::parse("customer", &body.customer)?,
                items,
            })
        })
        .action("status", |Json(body): Json<StatusBody>| {
            let to: OrderStatus = serde_json::from_value(serde_json::Value::String(
                body.status.clone(),
            ))
            .map_err(|_| {
                InputError::invalid(format!(
                    "unknown status {:?}; a status change goes to {CHANGEABLE}",
                    body.status.chars().take(64).collect::<String>()
                ))
            })?;
            // Statuses no change ever reaches are refused here, by name.
            match to {
                OrderStatus::Accepted => Err(InputError::invalid(format!(
                    "an order starts ACCEPTED and never returns to it; a status change goes to {CHANGEABLE}"
                ))),
                OrderStatus::Cancelled => Err(InputError::invalid(
                    "an order is cancelled by POST /orders/{id}/cancel, not by a status change",
                )),
                _ => Ok(OrderCommand::ChangeStatus { to }),
            }
        })
        .action("cancel", |NoBody| Ok(OrderCommand::CancelOrder))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_bodies_become_commands() {
        let order = orders()
            .parse_create(
                br#"{"customer":"Ada","items":[{"sku":"PIZZA","quantity":2,"unitPriceCents":950}]}"#,
            )
            .unwrap();
        assert!(matches!(order, OrderCommand::PlaceOrder { ref items, .. } if items.len() == 1));
        assert_eq!(
            orders()
                .parse_action("status", br#"{"status":"READY_FOR_PICKUP"}"#)
                .unwrap(),
            OrderCommand::ChangeStatus {
                to: OrderStatus::ReadyForPickup
            }
        );
        assert!(matches!(
            repairs()
                .parse_action("line-items", br#"{"description":"pads","priceCents":4999}"#)
                .unwrap(),
            RepairCommand::AddLineItem { .. }
        ));
        assert_eq!(
            repairs().parse_action("start", b"").unwrap(),
            RepairCommand::StartWork
        );
    }

    /// The status route names only the statuses a change can reach, and
    /// refuses the two no change ever reaches with why.
    #[test]
    fn a_status_change_to_where_no_change_goes_is_refused_by_name() {
        for (status, why) in [
            ("ACCEPTED", "starts ACCEPTED"),
            ("CANCELLED", "/cancel"),
            ("SHIPPED", "unknown status"),
        ] {
            let body = format!(r#"{{"status":"{status}"}}"#);
            let refused = orders()
                .parse_action("status", body.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(refused.contains(why), "{status}: {refused}");
            if status != "CANCELLED" {
                assert!(
                    refused.contains(CHANGEABLE) && !refused.contains("CANCELLED"),
                    "{status}: {refused}"
                );
            }
        }
    }

    #[test]
    fn bad_bodies_are_typed_400s_naming_the_problem() {
        let cases: [(&[u8], &str); 10] = [
            (b"", "MalformedRequest"),
            (b"{not json", "MalformedRequest"),
            (
                br#"{"vehicle":"B-1","customer":"Ada","customerEmail":"ada@example.com"}"#,
                "MalformedRequest",
            ),
            (
                br#"{"vehicle":"B-1","customer":"Ada","description":"x"}"#,
                "MalformedRequest",
            ),
            (
                br#"{"vehicle":"B-1","customer":"Ada","customerEmail":"ada@example.com","description":"x","extra":1}"#,
                "MalformedRequest",
            ),
            (
                br#"{"vehicle":"  ","customer":"Ada","customerEmail":"ada@example.com","description":"x"}"#,
                "InvalidInput",
            ),
            (
                br#"{"vehicle":7,"customer":"Ada","customerEmail":"ada@example.com","description":"x"}"#,
                "MalformedRequest",
            ),
            (
                br#"{"vehicle":"B-1","customer":"Ada","customerEmail":7,"description":"x"}"#,
                "MalformedRequest",
            ),
            (
                br#"{"vehicle":"B-1","customer":"Ada","customerEmail":"ada","description":"x"}"#,
                "InvalidInput",
            ),
            (br#"[]"#, "MalformedRequest"),
        ];
        for (body, code) in cases {
            let error = repairs().parse_create(body).unwrap_err();
            assert_eq!(error.code(), code, "{}", String::from_utf8_lossy(body));
        }
        assert_eq!(
            repairs()
                .parse_action("line-items", br#"{"description":"x","priceCents":-1}"#)
                .unwrap_err()
                .code(),
            "InvalidInput"
        );
        assert_eq!(
            orders()
                .parse_create(
                    br#"{"customer":"Ada","items":[{"sku":"A","quantity":0,"unitPriceCents":1}]}"#
                )
                .unwrap_err()
                .code(),
            "InvalidInput"
        );
        assert_eq!(
            orders()
                .parse_action("status", br#"{"status":"TELEPORTED"}"#)
                .unwrap_err()
                .code(),
            "InvalidInput"
        );
    }

    #[test]
    fn a_repair_is_opened_with_the_customers_email() {
        let command = repairs()
            .parse_create(
                br#"{"vehicle":"B-1","customer":"Ada","customerEmail":" Ada@Example.COM ","description":"brakes"}"#,
            )
            .unwrap();
        let RepairCommand::OpenRepair { customer_email, .. } = command else {
            panic!("an open command, not {command:?}");
        };
        assert_eq!(customer_email.as_str(), "Ada@example.com");
    }

    #[test]
    fn a_missing_or_bad_customer_email_is_refused_naming_the_field() {
        let missing = repairs()
            .parse_create(br#"{"vehicle":"B-1","customer":"Ada","description":"x"}"#)
            .unwrap_err();
        assert_eq!(missing.code(), "MalformedRequest");
        assert!(missing.to_string().contains("customerEmail"), "{missing}");
        for bad in [
            "",
            "   ",
            "ada",
            "ada@",
            "ada@example",
            "Ada <ada@example.com>",
            "ada@example.com\r\nBcc: x@example.com",
        ] {
            let body = serde_json::json!({
                "vehicle": "B-1", "customer": "Ada", "customerEmail": bad, "description": "x"
            });
            let error = repairs()
                .parse_create(body.to_string().as_bytes())
                .unwrap_err();
            assert_eq!(error.code(), "InvalidInput", "{bad:?}");
            assert!(
                error
                    .to_string()
                    .starts_with("customerEmail is not an email address: "),
                "{bad:?}: {error}"
            );
        }
    }

    #[test]
    fn an_array_in_place_of_the_object_is_refused() {
        let error = repairs().parse_create(br#"["V","c","d"]"#).unwrap_err();
        assert_eq!(error.to_string(), "the body must be a JSON object");
    }

    #[test]
    fn amounts_past_the_business_bound_are_refused() {
        let error = repairs()
            .parse_action(
                "line-items",
                br#"{"description":"x","priceCents":10000000001}"#,
            )
            .unwrap_err();
        assert_eq!(error.code(), "InvalidInput");
        assert!(error.to_string().starts_with("priceCents: "), "{error}");
    }
}
