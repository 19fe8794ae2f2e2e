//! A support desk on the outbox toolkit, written as a team writes its own
//! service: it depends on `outbox-domain` and `outbox-application` only.
//!
//! - [`ticket`]: the `Ticket` aggregate, pure: opened, assigned, resolved,
//!   reopened.
//! - [`reactions`]: its consumers, `ticket-timeline` (ordered) and
//!   `satisfaction-survey` (unordered), whose effects are data.
//! - [`routes`]: how HTTP requests become ticket commands.
//! - [`story`]: the commands `outbox-local demo` sends.
//!
//! [`service`] declares all of it in one value; a program serving several
//! services deploys it beside them with [`Service::with`].
//!
//! ```
//! use outbox_application::Service;
//!
//! let service = helpdesk::service();
//! assert_eq!(service.validate(), Ok(()));
//! assert_eq!(service.sources().source_of("Ticket"), helpdesk::SOURCE);
//! let names: Vec<_> = service.consumers().iter().map(|c| c.name()).collect();
//! assert_eq!(names, ["ticket-timeline", "satisfaction-survey"]);
//!
//! // Deployed beside another service, it is still one valid declaration.
//! let deployed = Service::new().with(helpdesk::service());
//! assert_eq!(deployed.validate(), Ok(()));
//! ```

pub mod reactions;
pub mod routes;
pub mod story;
pub mod ticket;

use outbox_application::{AggregateDeclaration, Service};

use crate::ticket::Ticket;

/// The EventBridge `source` ticket events are published under. Never change
/// it: every consumer's rule matches on it.
pub const SOURCE: &str = "helpdesk.outbox";

/// The helpdesk's declaration: tickets (source, routes, story) and their two
/// consumers.
pub fn service() -> Service {
    Service::new()
        .aggregate(
            AggregateDeclaration::<Ticket>::published_as(SOURCE)
                .routes(routes::tickets())
                .story(story::ticket),
        )
        .consumer(reactions::TicketTimeline)
        .consumer(reactions::SatisfactionSurvey)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_declaration_is_valid() {
        assert_eq!(super::service().validate(), Ok(()));
    }
}
