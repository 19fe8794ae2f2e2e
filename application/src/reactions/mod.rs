//! The consumers of the seed stories, as pure reactions whose effects are data.
//!
//! - Car workshop (seed `000`): [`Invoicing`] and [`CustomerNotification`] on `RepairCompleted`.
//! - Order service (seed `001`): [`Shipping`] on `OrderPlaced`.
//! - Food ordering (seed `002`): [`RestaurantNotification`] and [`OrderTracking`] on order changes.

mod customer_notification;
mod invoicing;
mod order_tracking;
mod restaurant_notification;
mod shipping;

pub use customer_notification::{CustomerNotification, Notification};
pub use invoicing::{Invoice, Invoicing};
pub use order_tracking::{OrderTracking, TrackingEntry};
pub use restaurant_notification::{RestaurantNotice, RestaurantNotification};
pub use shipping::{Shipment, Shipping};

use serde::Serialize;

use crate::envelope::{EnvelopeError, EventEnvelope};
use crate::ports::Effect;

/// Records `data` as an effect of `kind` caused by `event`.
fn effect_of(
    kind: &'static str,
    event: &EventEnvelope,
    data: &impl Serialize,
) -> Result<Effect, EnvelopeError> {
    let data = serde_json::to_value(data).map_err(|source| EnvelopeError::Encode {
        event_type: kind,
        source,
    })?;
    Ok(Effect {
        kind: kind.to_owned(),
        event_id: event.event_id,
        data,
    })
}
