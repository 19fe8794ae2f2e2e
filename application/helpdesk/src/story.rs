//! The helpdesk's demo story for `outbox-local demo`, as the commands a
//! client sends: each ticket is opened, assigned and resolved (the timeline
//! and the survey act); every third one is reopened and resolved again, so it
//! is surveyed twice. Each step carries its idempotency key,
//! `ticket-{n}-{step}`.

use outbox_domain::Text;

use crate::ticket::TicketCommand;

/// The `n`-th ticket (from 0): opened, assigned, resolved; every third one
/// reopened and resolved again.
pub fn ticket(n: usize) -> Vec<(String, TicketCommand)> {
    let text = |field: &'static str, raw: String| Text::parse(field, &raw).ok();
    let (Some(subject), Some(requester), Some(agent), Some(resolution)) = (
        text("subject", format!("printer {n} is on fire")),
        text("requester", format!("user-{n}@example.com")),
        text("agent", format!("agent-{}", n % 4)),
        text("resolution", "replaced the toner".into()),
    ) else {
        return Vec::new();
    };
    let mut steps = vec![
        (
            format!("ticket-{n}-open"),
            TicketCommand::OpenTicket { subject, requester },
        ),
        (
            format!("ticket-{n}-assign"),
            TicketCommand::AssignTicket { agent },
        ),
        (
            format!("ticket-{n}-resolve"),
            TicketCommand::ResolveTicket {
                resolution: resolution.clone(),
            },
        ),
    ];
    if (n + 1).is_multiple_of(3) {
        if let (Some(reason), Some(again)) = (
            text("reason", "it is smoking again".into()),
            text("resolution", "replaced the fuser as well".into()),
        ) {
            steps.push((
                format!("ticket-{n}-reopen"),
                TicketCommand::ReopenTicket { reason },
            ));
            steps.push((
                format!("ticket-{n}-resolve-again"),
                TicketCommand::ResolveTicket { resolution: again },
            ));
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ticket::{Ticket, TicketStatus};
    use outbox_domain::{decide, Aggregate, Version};
    use std::collections::BTreeSet;

    /// Tells a story against the pure domain: every step must be accepted.
    fn told(n: usize) -> <Ticket as Aggregate>::State {
        let mut state = None;
        let mut version = Version::INITIAL;
        for (key, command) in ticket(n) {
            let decision = decide::<Ticket>(&state, version, &command)
                .unwrap_or_else(|error| panic!("{key} was refused: {error}"));
            state = decision.state;
            version = decision.version;
        }
        state
    }

    #[test]
    fn every_ticket_ends_resolved_and_every_third_was_reopened() {
        for n in 0..9 {
            let sheet = told(n).unwrap();
            assert_eq!(sheet.status, TicketStatus::Resolved, "ticket {n}");
            assert_eq!(sheet.reopen_reason.is_some(), n % 3 == 2, "ticket {n}");
        }
    }

    #[test]
    fn the_first_step_creates_and_keys_are_unique() {
        let mut keys = BTreeSet::new();
        for n in 0..30 {
            let steps = ticket(n);
            assert!(matches!(steps[0].1, TicketCommand::OpenTicket { .. }));
            assert_eq!(steps[0].0, format!("ticket-{n}-open"));
            for (key, _) in steps {
                assert!(keys.insert(key.clone()), "{key} twice");
            }
        }
    }
}
