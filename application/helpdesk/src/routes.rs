//! The helpdesk's HTTP routes: request bodies read into plain shapes (unknown
//! fields refused), then every value through [`Text::parse`], so a bad value
//! is a typed 400 naming the field and the rule it breaks.
//!
//! | route | command | success |
//! | --- | --- | --- |
//! | `POST /tickets` `{subject, requester}` | open | 201 `{ticketId, version}` |
//! | `GET /tickets/{id}` | — | 200 `{ticketId, version, state}` |
//! | `POST /tickets/{id}/assign` `{agent}` | assign | 200 `{ticketId, version}` |
//! | `POST /tickets/{id}/resolve` `{resolution}` | resolve | 200 `{ticketId, version}` |
//! | `POST /tickets/{id}/reopen` `{reason}` | reopen | 200 `{ticketId, version}` |
//!
//! The `GET` route comes with every served aggregate: it answers the state as
//! [`TicketSheet`](crate::ticket::TicketSheet) serializes.

use serde::Deserialize;

use outbox_application::{Json, Routes};
use outbox_domain::Text;

use crate::ticket::{Ticket, TicketCommand};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OpenTicketBody {
    subject: String,
    requester: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AssignBody {
    agent: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ResolveBody {
    resolution: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ReopenBody {
    reason: String,
}

/// The tickets' routes, under `/tickets`, answering the id as `ticketId`.
pub fn tickets() -> Routes<Ticket> {
    Routes::new("tickets", "ticketId")
        .create(|Json(body): Json<OpenTicketBody>| {
            Ok(TicketCommand::OpenTicket {
                subject: Text::parse("subject", &body.subject)?,
                requester: Text::parse("requester", &body.requester)?,
            })
        })
        .action("assign", |Json(body): Json<AssignBody>| {
            Ok(TicketCommand::AssignTicket {
                agent: Text::parse("agent", &body.agent)?,
            })
        })
        .action("resolve", |Json(body): Json<ResolveBody>| {
            Ok(TicketCommand::ResolveTicket {
                resolution: Text::parse("resolution", &body.resolution)?,
            })
        })
        .action("reopen", |Json(body): Json<ReopenBody>| {
            Ok(TicketCommand::ReopenTicket {
                reason: Text::parse("reason", &body.reason)?,
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use outbox_application::InputError;

    fn text(raw: &str) -> Text {
        Text::parse("test", raw).unwrap()
    }

    fn code(result: Result<TicketCommand, InputError>) -> &'static str {
        result.unwrap_err().code()
    }

    #[test]
    fn valid_bodies_become_ticket_commands_with_trimmed_values() {
        let routes = tickets();
        assert_eq!(
            routes
                .parse_create(br#"{"subject":" printer on fire ","requester":"ada"}"#)
                .unwrap(),
            TicketCommand::OpenTicket {
                subject: text("printer on fire"),
                requester: text("ada"),
            }
        );
        assert_eq!(
            routes
                .parse_action("assign", br#"{"agent":"grace"}"#)
                .unwrap(),
            TicketCommand::AssignTicket {
                agent: text("grace")
            }
        );
        assert_eq!(
            routes
                .parse_action("resolve", br#"{"resolution":"new toner"}"#)
                .unwrap(),
            TicketCommand::ResolveTicket {
                resolution: text("new toner")
            }
        );
        assert_eq!(
            routes
                .parse_action("reopen", br#"{"reason":"smoking"}"#)
                .unwrap(),
            TicketCommand::ReopenTicket {
                reason: text("smoking")
            }
        );
    }

    #[test]
    fn bad_bodies_are_typed_400s() {
        let routes = tickets();
        for (body, expected) in [
            (&b""[..], "MalformedRequest"),
            (b"{not json", "MalformedRequest"),
            (b"[]", "MalformedRequest"),
            (br#"{"subject":"x"}"#, "MalformedRequest"),
            (
                br#"{"subject":"x","requester":"ada","priority":1}"#,
                "MalformedRequest",
            ),
            (br#"{"subject":7,"requester":"ada"}"#, "MalformedRequest"),
            (br#"{"subject":"  ","requester":"ada"}"#, "InvalidInput"),
            (br#"{"subject":"x","requester":"a\u202eb"}"#, "InvalidInput"),
        ] {
            assert_eq!(
                code(routes.parse_create(body)),
                expected,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        for action in ["assign", "resolve", "reopen"] {
            assert_eq!(code(routes.parse_action(action, b"")), "MalformedRequest");
            assert_eq!(code(routes.parse_action(action, b"{}")), "MalformedRequest");
        }
        assert_eq!(
            code(routes.parse_action("assign", br#"{"agent":""}"#)),
            "InvalidInput"
        );
    }

    #[test]
    fn a_refused_value_names_its_field() {
        let error = tickets()
            .parse_action("resolve", br#"{"resolution":" "}"#)
            .unwrap_err();
        assert_eq!(error.to_string(), "resolution must not be empty");
    }

    #[test]
    fn the_routes_are_the_tickets_collection_with_four_commands() {
        let routes = tickets();
        assert_eq!(routes.collection(), "tickets");
        assert_eq!(routes.id_field(), "ticketId");
        assert!(routes
            .create_route()
            .is_some_and(|route| route.takes_body()));
        assert_eq!(
            routes.action_names().collect::<Vec<_>>(),
            ["assign", "resolve", "reopen"]
        );
    }
}
