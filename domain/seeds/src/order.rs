//! The food order (seeds `001` and `002`): placed with its items, then moved
//! through its statuses `Accepted → Preparing → ReadyForPickup → PickedUp →
//! Delivered`, or cancelled before pickup. Shipping, restaurant notification and
//! order tracking act on its events.

use serde::{Deserialize, Serialize};

use outbox_domain::Text;
use outbox_domain::{Aggregate, DomainEvent};
use outbox_domain::{Money, MoneyError};
use outbox_domain::{Rejection, RejectionKind};

/// The order aggregate.
#[derive(Debug, Clone, Copy)]
pub struct Order;

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    /// Placed and accepted.
    Accepted,
    /// The restaurant is preparing it.
    Preparing,
    /// Waiting for the courier.
    ReadyForPickup,
    /// On its way.
    PickedUp,
    /// At the customer; final.
    Delivered,
    /// Cancelled before pickup; final.
    Cancelled,
}

impl std::fmt::Display for OrderStatus {
    /// The name on the wire, e.g. `PREPARING`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OrderStatus::Accepted => "ACCEPTED",
            OrderStatus::Preparing => "PREPARING",
            OrderStatus::ReadyForPickup => "READY_FOR_PICKUP",
            OrderStatus::PickedUp => "PICKED_UP",
            OrderStatus::Delivered => "DELIVERED",
            OrderStatus::Cancelled => "CANCELLED",
        })
    }
}

impl OrderStatus {
    /// Every status, in lifecycle order, cancellation last.
    pub const ALL: [OrderStatus; 6] = [
        OrderStatus::Accepted,
        OrderStatus::Preparing,
        OrderStatus::ReadyForPickup,
        OrderStatus::PickedUp,
        OrderStatus::Delivered,
        OrderStatus::Cancelled,
    ];

    /// The only status this one may move on to, if any.
    pub fn next(self) -> Option<OrderStatus> {
        match self {
            OrderStatus::Accepted => Some(OrderStatus::Preparing),
            OrderStatus::Preparing => Some(OrderStatus::ReadyForPickup),
            OrderStatus::ReadyForPickup => Some(OrderStatus::PickedUp),
            OrderStatus::PickedUp => Some(OrderStatus::Delivered),
            OrderStatus::Delivered | OrderStatus::Cancelled => None,
        }
    }

    /// Whether an order in this status may still be cancelled.
    pub fn cancellable(self) -> bool {
        matches!(
            self,
            OrderStatus::Accepted | OrderStatus::Preparing | OrderStatus::ReadyForPickup
        )
    }
}

/// A positive number of units. It deserializes through [`Quantity::new`], so a
/// decoded event can never carry a quantity the domain would refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "u32")]
pub struct Quantity(u32);

/// Why a quantity was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("quantity must be between 1 and {max}, got {got}")]
pub struct QuantityError {
    /// The refused value.
    pub got: i64,
    /// The largest quantity accepted.
    pub max: u32,
}

impl Quantity {
    /// The largest quantity of one line.
    pub const MAX: u32 = 1_000;

    /// Parses a quantity between 1 and [`Quantity::MAX`].
    ///
    /// # Errors
    /// [`QuantityError`] outside that range.
    pub fn new(raw: i64) -> Result<Self, QuantityError> {
        u32::try_from(raw)
            .ok()
            .filter(|q| (1..=Self::MAX).contains(q))
            .map(Self)
            .ok_or(QuantityError {
                got: raw,
                max: Self::MAX,
            })
    }

    /// The number of units.
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<i64> for Quantity {
    type Error = QuantityError;

    fn try_from(raw: i64) -> Result<Self, QuantityError> {
        Self::new(raw)
    }
}

impl From<Quantity> for u32 {
    fn from(quantity: Quantity) -> u32 {
        quantity.0
    }
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderLine {
    /// The stock keeping unit.
    pub sku: Text,
    /// How many.
    pub quantity: Quantity,
    /// The price of one unit.
    pub unit_price_cents: Money,
}

/// An existing order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderSheet {
    /// Who ordered.
    pub customer: Text,
    /// What was ordered.
    pub items: Vec<OrderLine>,
    /// The sum of quantity × unit price over the lines.
    pub total_cents: Money,
    /// Where the order stands.
    pub status: OrderStatus,
}

/// The state of an order: `None` until it is placed.
pub type OrderState = Option<OrderSheet>;

/// What a caller can ask of an order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum OrderCommand {
    /// Place a new order.
    PlaceOrder {
        /// Who orders.
        customer: Text,
        /// What is ordered.
        items: Vec<OrderLine>,
    },
    /// Move the order to its next status.
    ChangeStatus {
        /// The status to move to.
        to: OrderStatus,
    },
    /// Cancel the order before pickup.
    CancelOrder,
}

/// What an order records. The variant names are the persisted event types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "eventType", content = "data")]
pub enum OrderEvent {
    /// An order was placed and accepted.
    #[serde(rename_all = "camelCase")]
    OrderPlaced {
        /// Who ordered.
        customer: Text,
        /// What was ordered.
        items: Vec<OrderLine>,
        /// The order total.
        total_cents: Money,
    },
    /// The order moved on.
    OrderStatusChanged {
        /// The status before.
        from: OrderStatus,
        /// The status after.
        to: OrderStatus,
    },
    /// The order was cancelled.
    OrderCancelled {
        /// The status it was cancelled in.
        from: OrderStatus,
    },
}

/// Why an order refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// The order has not been placed.
    #[error("the order does not exist")]
    NotPlaced,
    /// The order was placed already.
    #[error("the order exists already")]
    AlreadyPlaced,
    /// An order needs at least one line.
    #[error("an order needs at least one item")]
    NoItems,
    /// Too many lines in one order.
    #[error("an order takes at most {max} items, got {got}")]
    TooManyItems {
        /// The number of lines given.
        got: usize,
        /// The limit.
        max: usize,
    },
    /// The status change is not the next step of the lifecycle.
    #[error("an order cannot move from {from} to {to}")]
    InvalidTransition {
        /// The current status.
        from: OrderStatus,
        /// The requested status.
        to: OrderStatus,
    },
    /// Picked-up, delivered and cancelled orders cannot be cancelled.
    #[error("an order that is {0} cannot be cancelled")]
    NotCancellable(OrderStatus),
    /// The total does not fit.
    #[error("the order total is out of range: {0}")]
    Money(#[from] MoneyError),
}

impl Rejection for OrderError {
    fn kind(&self) -> RejectionKind {
        match self {
            OrderError::NotPlaced => RejectionKind::NotFound,
            OrderError::AlreadyPlaced => RejectionKind::AlreadyExists,
            OrderError::NoItems | OrderError::TooManyItems { .. } | OrderError::Money(_) => {
                RejectionKind::InvalidInput
            }
            OrderError::InvalidTransition { .. } | OrderError::NotCancellable(_) => {
                RejectionKind::InvalidTransition
            }
        }
    }
}

impl OrderEvent {
    /// The persisted type name of [`OrderEvent::OrderPlaced`]. Never rename one.
    pub const ORDER_PLACED: &'static str = "OrderPlaced";
    /// The persisted type name of [`OrderEvent::OrderStatusChanged`].
    pub const ORDER_STATUS_CHANGED: &'static str = "OrderStatusChanged";
    /// The persisted type name of [`OrderEvent::OrderCancelled`].
    pub const ORDER_CANCELLED: &'static str = "OrderCancelled";
    /// Every persisted type name of an order event.
    pub const TYPES: [&'static str; 3] = [
        Self::ORDER_PLACED,
        Self::ORDER_STATUS_CHANGED,
        Self::ORDER_CANCELLED,
    ];
}

impl DomainEvent for OrderEvent {
    const EVENT_TYPES: &'static [&'static str] = &Self::TYPES;

    fn event_type(&self) -> &'static str {
        match self {
            OrderEvent::OrderPlaced { .. } => Self::ORDER_PLACED,
            OrderEvent::OrderStatusChanged { .. } => Self::ORDER_STATUS_CHANGED,
            OrderEvent::OrderCancelled { .. } => Self::ORDER_CANCELLED,
        }
    }

    fn schema_version(&self) -> u32 {
        1
    }
}

impl Order {
    /// The most lines one order may have.
    pub const MAX_ITEMS: usize = 50;
}

impl Aggregate for Order {
    const TYPE: &'static str = "Order";
    type State = OrderState;
    type Command = OrderCommand;
    type Event = OrderEvent;
    type Error = OrderError;

    fn decide(state: &OrderState, command: &OrderCommand) -> Result<Vec<OrderEvent>, OrderError> {
        match (state, command) {
            (None, OrderCommand::PlaceOrder { customer, items }) => {
                if items.is_empty() {
                    return Err(OrderError::NoItems);
                }
                if items.len() > Order::MAX_ITEMS {
                    return Err(OrderError::TooManyItems {
                        got: items.len(),
                        max: Order::MAX_ITEMS,
                    });
                }
                let total_cents = items.iter().try_fold(Money::ZERO, |sum, line| {
                    sum.checked_add(line.unit_price_cents.checked_times(line.quantity.get())?)
                })?;
                Ok(vec![OrderEvent::OrderPlaced {
                    customer: customer.clone(),
                    items: items.clone(),
                    total_cents,
                }])
            }
            (Some(_), OrderCommand::PlaceOrder { .. }) => Err(OrderError::AlreadyPlaced),
            (None, _) => Err(OrderError::NotPlaced),
            (Some(order), OrderCommand::ChangeStatus { to }) => {
                if order.status.next() == Some(*to) {
                    Ok(vec![OrderEvent::OrderStatusChanged {
                        from: order.status,
                        to: *to,
                    }])
                } else {
                    Err(OrderError::InvalidTransition {
                        from: order.status,
                        to: *to,
                    })
                }
            }
            (Some(order), OrderCommand::CancelOrder) => {
                if order.status.cancellable() {
                    Ok(vec![OrderEvent::OrderCancelled { from: order.status }])
                } else {
                    Err(OrderError::NotCancellable(order.status))
                }
            }
        }
    }

    fn evolve(state: OrderState, event: &OrderEvent) -> OrderState {
        match (state, event) {
            (
                _,
                OrderEvent::OrderPlaced {
                    customer,
                    items,
                    total_cents,
                },
            ) => Some(OrderSheet {
                customer: customer.clone(),
                items: items.clone(),
                total_cents: *total_cents,
                status: OrderStatus::Accepted,
            }),
            (Some(mut order), OrderEvent::OrderStatusChanged { to, .. }) => {
                order.status = *to;
                Some(order)
            }
            (Some(mut order), OrderEvent::OrderCancelled { .. }) => {
                order.status = OrderStatus::Cancelled;
                Some(order)
            }
            (None, _) => None,
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

    fn line(sku: &str, quantity: i64, price: i64) -> OrderLine {
        OrderLine {
            sku: text(sku),
            quantity: Quantity::new(quantity).unwrap(),
            unit_price_cents: Money::from_cents(price).unwrap(),
        }
    }

    fn placed() -> OrderEvent {
        OrderEvent::OrderPlaced {
            customer: text("Grace"),
            items: vec![line("PIZZA", 2, 900), line("COLA", 1, 250)],
            total_cents: Money::from_cents(2_050).unwrap(),
        }
    }

    fn moved(from: OrderStatus, to: OrderStatus) -> OrderEvent {
        OrderEvent::OrderStatusChanged { from, to }
    }

    fn history_until(status: OrderStatus) -> Vec<OrderEvent> {
        let mut history = vec![placed()];
        let mut current = OrderStatus::Accepted;
        while current != status {
            let next = current.next().unwrap();
            history.push(moved(current, next));
            current = next;
        }
        history
    }

    #[test]
    fn placing_an_order_computes_its_total() {
        given::<Order>(&[]).when_then(
            OrderCommand::PlaceOrder {
                customer: text("Grace"),
                items: vec![line("PIZZA", 2, 900), line("COLA", 1, 250)],
            },
            &[placed()],
        );
    }

    #[test]
    fn an_order_needs_items() {
        given::<Order>(&[]).when_refused(
            OrderCommand::PlaceOrder {
                customer: text("Grace"),
                items: vec![],
            },
            OrderError::NoItems,
        );
    }

    #[test]
    fn an_order_has_an_item_limit() {
        let items = vec![line("X", 1, 1); Order::MAX_ITEMS + 1];
        given::<Order>(&[]).when_refused(
            OrderCommand::PlaceOrder {
                customer: text("Grace"),
                items,
            },
            OrderError::TooManyItems {
                got: Order::MAX_ITEMS + 1,
                max: Order::MAX_ITEMS,
            },
        );
    }

    #[test]
    fn an_order_total_that_overflows_is_refused() {
        let huge = line("GOLD", 1_000, Money::MAX.cents() as i64);
        given::<Order>(&[]).when_refused(
            OrderCommand::PlaceOrder {
                customer: text("Grace"),
                items: vec![huge],
            },
            OrderError::Money(MoneyError::Overflow),
        );
    }

    #[test]
    fn quantities_must_be_positive_and_bounded() {
        assert!(Quantity::new(0).is_err());
        assert!(Quantity::new(-3).is_err());
        assert!(Quantity::new(i64::from(Quantity::MAX) + 1).is_err());
        assert_eq!(Quantity::new(3).map(Quantity::get), Ok(3));
    }

    #[test]
    fn an_order_cannot_be_placed_twice() {
        given::<Order>(&[placed()]).when_refused(
            OrderCommand::PlaceOrder {
                customer: text("Grace"),
                items: vec![line("PIZZA", 1, 900)],
            },
            OrderError::AlreadyPlaced,
        );
    }

    #[test]
    fn commands_on_an_unplaced_order_are_refused() {
        given::<Order>(&[]).when_refused(OrderCommand::CancelOrder, OrderError::NotPlaced);
    }

    #[test]
    fn an_order_moves_through_its_lifecycle_one_step_at_a_time() {
        let mut current = OrderStatus::Accepted;
        while let Some(next) = current.next() {
            given::<Order>(&history_until(current)).when_then(
                OrderCommand::ChangeStatus { to: next },
                &[moved(current, next)],
            );
            current = next;
        }
        assert_eq!(current, OrderStatus::Delivered);
    }

    #[test]
    fn every_other_status_change_is_an_invalid_transition() {
        for from in OrderStatus::ALL
            .into_iter()
            .filter(|s| *s != OrderStatus::Cancelled)
        {
            for to in OrderStatus::ALL {
                if from.next() == Some(to) {
                    continue;
                }
                given::<Order>(&history_until(from)).when_refused(
                    OrderCommand::ChangeStatus { to },
                    OrderError::InvalidTransition { from, to },
                );
            }
        }
    }

    #[test]
    fn an_order_can_be_cancelled_before_pickup_only() {
        for status in [
            OrderStatus::Accepted,
            OrderStatus::Preparing,
            OrderStatus::ReadyForPickup,
        ] {
            given::<Order>(&history_until(status)).when_then(
                OrderCommand::CancelOrder,
                &[OrderEvent::OrderCancelled { from: status }],
            );
        }
        for status in [OrderStatus::PickedUp, OrderStatus::Delivered] {
            given::<Order>(&history_until(status)).when_refused(
                OrderCommand::CancelOrder,
                OrderError::NotCancellable(status),
            );
        }
    }

    #[test]
    fn nothing_moves_a_cancelled_order() {
        let mut history = history_until(OrderStatus::Preparing);
        history.push(OrderEvent::OrderCancelled {
            from: OrderStatus::Preparing,
        });
        given::<Order>(&history).when_refused(
            OrderCommand::ChangeStatus {
                to: OrderStatus::ReadyForPickup,
            },
            OrderError::InvalidTransition {
                from: OrderStatus::Cancelled,
                to: OrderStatus::ReadyForPickup,
            },
        );
        given::<Order>(&history).when_refused(
            OrderCommand::CancelOrder,
            OrderError::NotCancellable(OrderStatus::Cancelled),
        );
    }

    #[test]
    fn a_decoded_event_obeys_the_domain_rules() {
        let placed = |quantity: i64, customer: &str| {
            serde_json::json!({"eventType": OrderEvent::ORDER_PLACED, "data": {
                "customer": customer, "totalCents": 100,
                "items": [{"sku": "A", "quantity": quantity, "unitPriceCents": 100}]}})
        };
        assert!(serde_json::from_value::<OrderEvent>(placed(1, "Ada")).is_ok());
        assert!(serde_json::from_value::<OrderEvent>(placed(0, "Ada")).is_err());
        assert!(serde_json::from_value::<OrderEvent>(placed(1_001, "Ada")).is_err());
        assert!(serde_json::from_value::<OrderEvent>(placed(1, " ")).is_err());
        assert_eq!(serde_json::to_value(Quantity::new(3).unwrap()).unwrap(), 3);
    }

    #[test]
    fn event_type_names_match_the_wire_format() {
        let events =
            history_until(OrderStatus::Delivered)
                .into_iter()
                .chain([OrderEvent::OrderCancelled {
                    from: OrderStatus::Accepted,
                }]);
        for event in events {
            let wire = serde_json::to_value(&event).unwrap();
            assert_eq!(wire["eventType"], event.event_type());
            let back: OrderEvent = serde_json::from_value(wire).unwrap();
            assert_eq!(back, event);
        }
    }
}
