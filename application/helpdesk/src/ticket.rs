//! The support ticket: opened by a requester about a subject, assigned to an
//! agent, resolved, and reopened when the resolution did not hold.
//!
//! Rules: a ticket is opened once; nothing but opening touches a ticket that
//! does not exist; a resolved ticket is neither assigned nor resolved again
//! until it is reopened; only an assigned ticket is resolved, and only a
//! resolved one reopened. A reopened ticket goes back to its agent.
//!
//! Pure: no I/O, no async, nothing of the toolkit's application layer.

use serde::{Deserialize, Serialize};

use outbox_domain::{Aggregate, DomainEvent, Rejection, RejectionKind, Text};

/// The ticket aggregate.
#[derive(Debug, Clone, Copy)]
pub struct Ticket;

/// Where a ticket stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TicketStatus {
    /// Opened, nobody works on it yet.
    Open,
    /// An agent works on it.
    Assigned,
    /// The agent resolved it; it changes only by being reopened.
    Resolved,
}

impl std::fmt::Display for TicketStatus {
    /// The name on the wire, e.g. `ASSIGNED`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TicketStatus::Open => "OPEN",
            TicketStatus::Assigned => "ASSIGNED",
            TicketStatus::Resolved => "RESOLVED",
        })
    }
}

/// An existing ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketSheet {
    /// What the ticket is about.
    pub subject: Text,
    /// Who asked for help, e.g. an email address.
    pub requester: Text,
    /// Where the ticket stands.
    pub status: TicketStatus,
    /// The agent working on it, once assigned.
    pub agent: Option<Text>,
    /// How it was last resolved.
    pub resolution: Option<Text>,
    /// Why it was last reopened.
    pub reopen_reason: Option<Text>,
}

/// The state of a ticket: `None` until it is opened.
pub type TicketState = Option<TicketSheet>;

/// What a caller can ask of a ticket.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum TicketCommand {
    /// Open a new ticket.
    OpenTicket {
        /// What it is about.
        subject: Text,
        /// Who asks for help.
        requester: Text,
    },
    /// Hand the ticket to an agent (again, or to another one).
    AssignTicket {
        /// The agent.
        agent: Text,
    },
    /// Close the ticket with what was done.
    ResolveTicket {
        /// What was done.
        resolution: Text,
    },
    /// Open a resolved ticket again.
    ReopenTicket {
        /// Why the resolution did not hold.
        reason: Text,
    },
}

/// What a ticket records. The variant names are the persisted event types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "eventType", content = "data")]
pub enum TicketEvent {
    /// A ticket was opened.
    #[serde(rename_all = "camelCase")]
    TicketOpened {
        /// What it is about.
        subject: Text,
        /// Who asks for help.
        requester: Text,
    },
    /// The ticket was handed to an agent.
    #[serde(rename_all = "camelCase")]
    TicketAssigned {
        /// The agent.
        agent: Text,
    },
    /// The ticket was resolved; the satisfaction survey acts on this.
    #[serde(rename_all = "camelCase")]
    TicketResolved {
        /// Who asked for help, so consumers need not look it up.
        requester: Text,
        /// Who resolved it.
        agent: Text,
        /// What was done.
        resolution: Text,
    },
    /// A resolved ticket was opened again.
    #[serde(rename_all = "camelCase")]
    TicketReopened {
        /// Why the resolution did not hold.
        reason: Text,
    },
}

impl TicketEvent {
    /// The persisted type name of [`TicketEvent::TicketOpened`]. Never rename one.
    pub const TICKET_OPENED: &'static str = "TicketOpened";
    /// The persisted type name of [`TicketEvent::TicketAssigned`]. Never rename one.
    pub const TICKET_ASSIGNED: &'static str = "TicketAssigned";
    /// The persisted type name of [`TicketEvent::TicketResolved`]. Never rename one.
    pub const TICKET_RESOLVED: &'static str = "TicketResolved";
    /// The persisted type name of [`TicketEvent::TicketReopened`]. Never rename one.
    pub const TICKET_REOPENED: &'static str = "TicketReopened";
    /// Every persisted type name of a ticket event.
    pub const TYPES: [&'static str; 4] = [
        Self::TICKET_OPENED,
        Self::TICKET_ASSIGNED,
        Self::TICKET_RESOLVED,
        Self::TICKET_REOPENED,
    ];
}

impl DomainEvent for TicketEvent {
    const EVENT_TYPES: &'static [&'static str] = &Self::TYPES;

    fn event_type(&self) -> &'static str {
        match self {
            TicketEvent::TicketOpened { .. } => Self::TICKET_OPENED,
            TicketEvent::TicketAssigned { .. } => Self::TICKET_ASSIGNED,
            TicketEvent::TicketResolved { .. } => Self::TICKET_RESOLVED,
            TicketEvent::TicketReopened { .. } => Self::TICKET_REOPENED,
        }
    }

    fn schema_version(&self) -> u32 {
        1
    }
}

/// Why a ticket refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    /// The ticket has not been opened.
    #[error("the ticket does not exist")]
    NotOpened,
    /// The ticket was opened already.
    #[error("the ticket exists already")]
    AlreadyOpened,
    /// The ticket is assigned to this agent already.
    #[error("the ticket is assigned to {0} already")]
    AlreadyAssigned(Text),
    /// Only an assigned ticket can be resolved.
    #[error("the ticket cannot be resolved before it is assigned")]
    NotAssigned,
    /// A resolved ticket changes only by being reopened.
    #[error("the ticket is resolved; reopen it first")]
    Resolved,
    /// Only a resolved ticket can be reopened.
    #[error("the ticket is {0}, not resolved, so it cannot be reopened")]
    NotResolved(TicketStatus),
}

impl Rejection for TicketError {
    fn kind(&self) -> RejectionKind {
        match self {
            TicketError::NotOpened => RejectionKind::NotFound,
            TicketError::AlreadyOpened => RejectionKind::AlreadyExists,
            TicketError::AlreadyAssigned(_)
            | TicketError::NotAssigned
            | TicketError::Resolved
            | TicketError::NotResolved(_) => RejectionKind::InvalidTransition,
        }
    }
}

impl Aggregate for Ticket {
    const TYPE: &'static str = "Ticket";
    type State = TicketState;
    type Command = TicketCommand;
    type Event = TicketEvent;
    type Error = TicketError;

    fn decide(
        state: &TicketState,
        command: &TicketCommand,
    ) -> Result<Vec<TicketEvent>, TicketError> {
        let sheet = match (state, command) {
            (None, TicketCommand::OpenTicket { subject, requester }) => {
                return Ok(vec![TicketEvent::TicketOpened {
                    subject: subject.clone(),
                    requester: requester.clone(),
                }])
            }
            (None, _) => return Err(TicketError::NotOpened),
            (Some(_), TicketCommand::OpenTicket { .. }) => return Err(TicketError::AlreadyOpened),
            (Some(sheet), _) => sheet,
        };
        match (sheet.status, command) {
            (TicketStatus::Resolved, TicketCommand::ReopenTicket { reason }) => {
                Ok(vec![TicketEvent::TicketReopened {
                    reason: reason.clone(),
                }])
            }
            (status, TicketCommand::ReopenTicket { .. }) => Err(TicketError::NotResolved(status)),
            (TicketStatus::Resolved, _) => Err(TicketError::Resolved),
            (_, TicketCommand::AssignTicket { agent }) if sheet.agent.as_ref() == Some(agent) => {
                Err(TicketError::AlreadyAssigned(agent.clone()))
            }
            (_, TicketCommand::AssignTicket { agent }) => Ok(vec![TicketEvent::TicketAssigned {
                agent: agent.clone(),
            }]),
            (_, TicketCommand::ResolveTicket { resolution }) => match &sheet.agent {
                Some(agent) => Ok(vec![TicketEvent::TicketResolved {
                    requester: sheet.requester.clone(),
                    agent: agent.clone(),
                    resolution: resolution.clone(),
                }]),
                None => Err(TicketError::NotAssigned),
            },
            (_, TicketCommand::OpenTicket { .. }) => Err(TicketError::AlreadyOpened),
        }
    }

    fn evolve(state: TicketState, event: &TicketEvent) -> TicketState {
        match (state, event) {
            (_, TicketEvent::TicketOpened { subject, requester }) => Some(TicketSheet {
                subject: subject.clone(),
                requester: requester.clone(),
                status: TicketStatus::Open,
                agent: None,
                resolution: None,
                reopen_reason: None,
            }),
            (None, _) => None,
            (Some(mut sheet), event) => {
                match event {
                    TicketEvent::TicketOpened { .. } => {}
                    TicketEvent::TicketAssigned { agent } => {
                        sheet.status = TicketStatus::Assigned;
                        sheet.agent = Some(agent.clone());
                    }
                    TicketEvent::TicketResolved { resolution, .. } => {
                        sheet.status = TicketStatus::Resolved;
                        sheet.resolution = Some(resolution.clone());
                    }
                    TicketEvent::TicketReopened { reason } => {
                        sheet.status = if sheet.agent.is_some() {
                            TicketStatus::Assigned
                        } else {
                            TicketStatus::Open
                        };
                        sheet.reopen_reason = Some(reason.clone());
                    }
                }
                Some(sheet)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use outbox_domain::scenario::given;

    fn text(raw: &str) -> Text {
        Text::parse("test", raw).unwrap()
    }

    fn open() -> TicketCommand {
        TicketCommand::OpenTicket {
            subject: text("printer on fire"),
            requester: text("ada@example.com"),
        }
    }

    fn assign(agent: &str) -> TicketCommand {
        TicketCommand::AssignTicket { agent: text(agent) }
    }

    fn resolve() -> TicketCommand {
        TicketCommand::ResolveTicket {
            resolution: text("replaced the toner"),
        }
    }

    fn reopen() -> TicketCommand {
        TicketCommand::ReopenTicket {
            reason: text("still smoking"),
        }
    }

    fn opened() -> TicketEvent {
        TicketEvent::TicketOpened {
            subject: text("printer on fire"),
            requester: text("ada@example.com"),
        }
    }

    fn assigned(agent: &str) -> TicketEvent {
        TicketEvent::TicketAssigned { agent: text(agent) }
    }

    fn resolved(agent: &str) -> TicketEvent {
        TicketEvent::TicketResolved {
            requester: text("ada@example.com"),
            agent: text(agent),
            resolution: text("replaced the toner"),
        }
    }

    fn reopened() -> TicketEvent {
        TicketEvent::TicketReopened {
            reason: text("still smoking"),
        }
    }

    #[test]
    fn opening_records_the_subject_and_requester() {
        given::<Ticket>(&[]).when_then(open(), &[opened()]);
    }

    #[test]
    fn a_ticket_cannot_be_opened_twice() {
        given::<Ticket>(&[opened()]).when_refused(open(), TicketError::AlreadyOpened);
        given::<Ticket>(&[opened(), assigned("grace"), resolved("grace")])
            .when_refused(open(), TicketError::AlreadyOpened);
    }

    #[test]
    fn nothing_but_opening_touches_a_ticket_that_does_not_exist() {
        for command in [assign("grace"), resolve(), reopen()] {
            given::<Ticket>(&[]).when_refused(command, TicketError::NotOpened);
        }
    }

    #[test]
    fn an_open_ticket_is_assigned_and_may_be_handed_to_another_agent() {
        given::<Ticket>(&[opened()]).when_then(assign("grace"), &[assigned("grace")]);
        given::<Ticket>(&[opened(), assigned("grace")])
            .when_then(assign("linus"), &[assigned("linus")]);
    }

    #[test]
    fn assigning_the_same_agent_again_is_refused() {
        given::<Ticket>(&[opened(), assigned("grace")])
            .when_refused(assign("grace"), TicketError::AlreadyAssigned(text("grace")));
    }

    #[test]
    fn a_resolved_ticket_is_neither_assigned_nor_resolved_again() {
        let history = [opened(), assigned("grace"), resolved("grace")];
        given::<Ticket>(&history).when_refused(assign("linus"), TicketError::Resolved);
        given::<Ticket>(&history).when_refused(resolve(), TicketError::Resolved);
    }

    #[test]
    fn resolving_needs_an_agent_and_names_the_requester_and_the_agent() {
        given::<Ticket>(&[opened()]).when_refused(resolve(), TicketError::NotAssigned);
        given::<Ticket>(&[opened(), assigned("grace"), assigned("linus")])
            .when_then(resolve(), &[resolved("linus")]);
    }

    #[test]
    fn only_a_resolved_ticket_is_reopened() {
        given::<Ticket>(&[opened()])
            .when_refused(reopen(), TicketError::NotResolved(TicketStatus::Open));
        given::<Ticket>(&[opened(), assigned("grace")])
            .when_refused(reopen(), TicketError::NotResolved(TicketStatus::Assigned));
        given::<Ticket>(&[opened(), assigned("grace"), resolved("grace")])
            .when_then(reopen(), &[reopened()]);
    }

    #[test]
    fn a_reopened_ticket_goes_back_to_its_agent_and_is_resolved_again() {
        let history = [opened(), assigned("grace"), resolved("grace"), reopened()];
        given::<Ticket>(&history).when_then(resolve(), &[resolved("grace")]);
        given::<Ticket>(&history)
            .when_refused(reopen(), TicketError::NotResolved(TicketStatus::Assigned));
        let sheet = outbox_domain::fold::<Ticket>(None, &history).unwrap();
        assert_eq!(sheet.status, TicketStatus::Assigned);
        assert_eq!(sheet.agent, Some(text("grace")));
        assert_eq!(sheet.reopen_reason, Some(text("still smoking")));
    }

    #[test]
    fn every_refusal_has_the_kind_its_edge_maps() {
        assert_eq!(TicketError::NotOpened.kind(), RejectionKind::NotFound);
        assert_eq!(
            TicketError::AlreadyOpened.kind(),
            RejectionKind::AlreadyExists
        );
        for transition in [
            TicketError::AlreadyAssigned(text("grace")),
            TicketError::NotAssigned,
            TicketError::Resolved,
            TicketError::NotResolved(TicketStatus::Open),
        ] {
            assert_eq!(transition.kind(), RejectionKind::InvalidTransition);
        }
    }

    #[test]
    fn event_type_names_match_the_wire_format() {
        let events = [opened(), assigned("grace"), resolved("grace"), reopened()];
        let names: Vec<_> = events.iter().map(DomainEvent::event_type).collect();
        assert_eq!(names, TicketEvent::EVENT_TYPES);
        for event in events {
            let wire = serde_json::to_value(&event).unwrap();
            assert_eq!(wire["eventType"], event.event_type());
            let back: TicketEvent = serde_json::from_value(wire).unwrap();
            assert_eq!(back, event);
        }
    }

    #[test]
    fn decoded_events_obey_the_text_rules() {
        let blank = serde_json::json!({"eventType": "TicketAssigned", "data": {"agent": "  "}});
        assert!(serde_json::from_value::<TicketEvent>(blank).is_err());
    }
}
