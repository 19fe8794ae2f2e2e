//! The satisfaction survey: asks the requester how it went, once per
//! resolution.
//!
//! It is an *unordered* consumer: it acts on one event type only, and each
//! resolution is a survey of its own, so the order in which resolutions of one
//! ticket arrive does not matter. The inbox makes each one exactly once.

use serde::{Deserialize, Serialize};

use outbox_application::ports::Effect;
use outbox_application::{
    async_trait, AggregateId, EventEnvelope, Reacted, Reaction, ReactionError, Subscription,
};
use outbox_domain::Version;

use crate::ticket::{Ticket, TicketEvent};

/// A survey to send to a requester about one resolution of their ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SurveyRequest {
    /// The ticket.
    pub ticket_id: AggregateId,
    /// The ticket's version at its resolution: a reopened ticket resolved
    /// again is surveyed again.
    pub version: Version,
    /// Who is asked.
    pub requester: String,
    /// The agent the survey is about.
    pub agent: String,
    /// What the agent did.
    pub resolution: String,
}

/// The satisfaction survey consumer.
#[derive(Debug, Clone, Copy, Default)]
pub struct SatisfactionSurvey;

impl SatisfactionSurvey {
    /// The consumer's name. Never rename it: it keys the inbox.
    pub const NAME: &'static str = "satisfaction-survey";
    /// The effect kind it records.
    pub const EFFECT: &'static str = "SurveyRequest";
}

#[async_trait]
impl Reaction for SatisfactionSurvey {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn description(&self) -> &'static str {
        "Asks the requester of each resolved ticket for feedback, once per resolution."
    }

    fn subscription(&self) -> Subscription {
        Subscription::of::<Ticket>(&[TicketEvent::TICKET_RESOLVED])
    }

    async fn react(&self, event: &EventEnvelope) -> Result<Reacted, ReactionError> {
        if !self.subscription().accepts(event) {
            return Ok(Reacted::Ignored);
        }
        let TicketEvent::TicketResolved {
            requester,
            agent,
            resolution,
        } = event.decode::<Ticket>()?
        else {
            return Ok(Reacted::Ignored);
        };
        let request = SurveyRequest {
            ticket_id: event.aggregate_id,
            version: event.aggregate_version,
            requester: requester.into(),
            agent: agent.into(),
            resolution: resolution.into(),
        };
        Ok(Reacted::Record(Effect::of(Self::EFFECT, event, &request)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reactions::tests::{one_of_each, wrap};

    #[tokio::test]
    async fn a_resolution_asks_its_requester_about_its_agent() {
        let envelope = wrap(3, &one_of_each()[2]);
        let effect = SatisfactionSurvey
            .react(&envelope)
            .await
            .unwrap()
            .into_record()
            .unwrap();
        assert_eq!(effect.kind, SatisfactionSurvey::EFFECT);
        assert_eq!(effect.event_id, envelope.event_id);
        let request: SurveyRequest = serde_json::from_value(effect.data).unwrap();
        assert_eq!(
            request,
            SurveyRequest {
                ticket_id: envelope.aggregate_id,
                version: Version::new(3),
                requester: "ada@example.com".into(),
                agent: "grace".into(),
                resolution: "replaced the toner".into(),
            }
        );
    }

    #[tokio::test]
    async fn nothing_but_a_resolution_is_surveyed() {
        let events = one_of_each();
        for (version, event) in [(1, &events[0]), (2, &events[1]), (4, &events[3])] {
            assert!(!SatisfactionSurvey
                .react(&wrap(version, event))
                .await
                .unwrap()
                .acts());
        }
    }

    #[test]
    fn the_survey_is_unordered() {
        assert!(!SatisfactionSurvey.subscription().is_ordered());
    }
}
