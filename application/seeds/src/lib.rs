//! The seed stories as one service on the toolkit: the car workshop (seed
//! `000`) and the food ordering service (seeds `001`, `002`), declared in
//! [`service`] exactly as a team declares its own.
//!
//! - [`reactions`]: the consumers; the car workshop's call out (an invoice
//!   document, an email) through the [`OutsidePorts`] the runtime hands over.
//! - [`routes`]: how HTTP requests become repair and order commands.
//! - [`stories`]: the commands `outbox-local demo` sends.

pub mod reactions;
pub mod routes;
pub mod stories;

use std::sync::Arc;

use outbox_application::{AggregateDeclaration, OutsidePorts, Service};
use outbox_seeds_domain::order::Order;
use outbox_seeds_domain::repair::Repair;

/// The car workshop's source (seed `000`), for repairs.
pub const REPAIRS_SOURCE: &str = "carworkshop.outbox";
/// The order service's source (seeds `001`, `002`), for orders.
pub const ORDERS_SOURCE: &str = "orders.outbox";

/// The seed stories' declaration: repairs and orders, and their five
/// consumers, the car workshop's calling out through `ports`.
pub fn service(ports: &OutsidePorts) -> Service {
    Service::new()
        .aggregate(
            AggregateDeclaration::<Repair>::published_as(REPAIRS_SOURCE)
                .routes(routes::repairs())
                .story(stories::repair),
        )
        .aggregate(
            AggregateDeclaration::<Order>::published_as(ORDERS_SOURCE)
                .routes(routes::orders())
                .story(stories::order),
        )
        .consumer(reactions::Invoicing::new(Arc::clone(&ports.documents)))
        .consumer(reactions::CustomerNotification::new(Arc::clone(
            &ports.mailer,
        )))
        .consumer(reactions::Shipping)
        .consumer(reactions::RestaurantNotification)
        .consumer(reactions::OrderTracking)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_seed_declaration_is_valid() {
        assert_eq!(
            super::service(&outbox_memory::MemoryOutside::new().ports()).validate(),
            Ok(())
        );
    }
}
