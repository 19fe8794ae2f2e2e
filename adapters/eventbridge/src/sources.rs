//! Which `Source` an event is published under.

use std::collections::BTreeMap;

use domain::order::Order;
use domain::repair::Repair;
use domain::Aggregate;

/// The `Source` of each aggregate type's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSources {
    by_aggregate: BTreeMap<String, String>,
    fallback: String,
}

impl EventSources {
    /// The car workshop's source (seed `000`), for repairs.
    pub const REPAIRS: &'static str = "carworkshop.outbox";
    /// The order service's source (seeds `001`, `002`), for orders.
    pub const ORDERS: &'static str = "orders.outbox";
    /// The source of any other aggregate type.
    pub const FALLBACK: &'static str = "outbox";

    /// Every event under `source`, e.g. from the `EVENT_SOURCE` setting.
    pub fn single(source: impl Into<String>) -> Self {
        Self {
            by_aggregate: BTreeMap::new(),
            fallback: source.into(),
        }
    }

    /// The source of events of `aggregate_type`.
    pub fn source_of(&self, aggregate_type: &str) -> &str {
        self.by_aggregate
            .get(aggregate_type)
            .unwrap_or(&self.fallback)
    }
}

impl Default for EventSources {
    /// Repairs under [`EventSources::REPAIRS`], orders under [`EventSources::ORDERS`].
    fn default() -> Self {
        Self {
            by_aggregate: BTreeMap::from([
                (Repair::TYPE.to_owned(), Self::REPAIRS.to_owned()),
                (Order::TYPE.to_owned(), Self::ORDERS.to_owned()),
            ]),
            fallback: Self::FALLBACK.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_seed_system_publishes_under_its_own_source_unless_one_is_configured() {
        let sources = EventSources::default();
        assert_eq!(sources.source_of("Repair"), "carworkshop.outbox");
        assert_eq!(sources.source_of("Order"), "orders.outbox");
        assert_eq!(sources.source_of("Invoice"), "outbox");
        assert_eq!(
            EventSources::single("fleetfix.outbox").source_of("Repair"),
            "fleetfix.outbox"
        );
    }
}
