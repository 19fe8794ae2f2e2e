//! The car workshop repair (seed `000`): opened for a vehicle, worked on, billed by
//! line items, and completed (which triggers invoicing and notification) or cancelled.
//!
//! Rules: a repair cannot be completed twice nor before work started; nothing
//! changes a completed or cancelled repair; money never goes negative.

use serde::{Deserialize, Serialize};

use outbox_domain::{Aggregate, DomainEvent};
use outbox_domain::{EmailAddress, Text};
use outbox_domain::{Money, MoneyError};
use outbox_domain::{Rejection, RejectionKind};

/// The repair aggregate.
#[derive(Debug, Clone, Copy)]
pub struct Repair;

/// Where a repair stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RepairStatus {
    /// Opened, work not started.
    Open,
    /// Work has started.
    InProgress,
    /// Finished and billed; final.
    Completed,
    /// Abandoned; final.
    Cancelled,
}

impl std::fmt::Display for RepairStatus {
    /// The name on the wire, e.g. `IN_PROGRESS`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RepairStatus::Open => "OPEN",
            RepairStatus::InProgress => "IN_PROGRESS",
            RepairStatus::Completed => "COMPLETED",
            RepairStatus::Cancelled => "CANCELLED",
        })
    }
}

/// One billed item of a repair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LineItem {
    /// What was done or fitted.
    pub description: Text,
    /// Its price.
    pub price_cents: Money,
}

/// The repair sheet of an existing repair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RepairSheet {
    /// The vehicle, e.g. its plate.
    pub vehicle: Text,
    /// The customer to bill and notify.
    pub customer: Text,
    /// Where the customer is notified.
    pub customer_email: EmailAddress,
    /// What the customer asked for.
    pub description: Text,
    /// Where the repair stands.
    pub status: RepairStatus,
    /// The billed items, in the order they were added.
    pub line_items: Vec<LineItem>,
    /// The total billed on completion.
    pub total_cents: Option<Money>,
    /// Why the repair was cancelled.
    pub cancellation_reason: Option<Text>,
}

/// The state of a repair: `None` until it is opened.
pub type RepairState = Option<RepairSheet>;

/// What a caller can ask of a repair.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum RepairCommand {
    /// Open a new repair.
    OpenRepair {
        /// The vehicle.
        vehicle: Text,
        /// The customer.
        customer: Text,
        /// Where the customer is notified.
        customer_email: EmailAddress,
        /// What the customer asked for.
        description: Text,
    },
    /// Start working on the vehicle.
    StartWork,
    /// Bill an item.
    AddLineItem {
        /// What was done or fitted.
        description: Text,
        /// Its price.
        price_cents: Money,
    },
    /// Finish the repair and bill the total of its line items.
    CompleteRepair,
    /// Abandon the repair.
    CancelRepair {
        /// Why.
        reason: Text,
    },
}

/// What a repair records. The variant names are the persisted event types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "eventType", content = "data")]
pub enum RepairEvent {
    /// A repair was opened.
    #[serde(rename_all = "camelCase")]
    RepairOpened {
        /// The vehicle.
        vehicle: Text,
        /// The customer.
        customer: Text,
        /// Where the customer is notified.
        customer_email: EmailAddress,
        /// What the customer asked for.
        description: Text,
    },
    /// Work on the vehicle started.
    WorkStarted {},
    /// An item was billed.
    #[serde(rename_all = "camelCase")]
    LineItemAdded {
        /// What was done or fitted.
        description: Text,
        /// Its price.
        price_cents: Money,
    },
    /// The repair was finished; invoicing and notification act on this.
    #[serde(rename_all = "camelCase")]
    RepairCompleted {
        /// The vehicle, so consumers need not look it up.
        vehicle: Text,
        /// The customer to bill and notify.
        customer: Text,
        /// Where the customer is notified, so the notification needs nothing but this event.
        customer_email: EmailAddress,
        /// The sum of the line items.
        total_cents: Money,
    },
    /// The repair was abandoned.
    #[serde(rename_all = "camelCase")]
    RepairCancelled {
        /// Why.
        reason: Text,
    },
}

/// Why a repair refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepairError {
    /// The repair has not been opened.
    #[error("the repair does not exist")]
    NotOpened,
    /// The repair was opened already.
    #[error("the repair exists already")]
    AlreadyOpened,
    /// Work has started already.
    #[error("work on the repair has started already")]
    AlreadyStarted,
    /// Completion needs work to have started.
    #[error("the repair cannot be completed before work started")]
    NotStarted,
    /// The repair is completed already.
    #[error("the repair is completed already")]
    AlreadyCompleted,
    /// Completed and cancelled repairs are final.
    #[error("the repair is {0} and cannot change")]
    Closed(RepairStatus),
    /// The total does not fit.
    #[error("the repair total is out of range: {0}")]
    Money(#[from] MoneyError),
}

impl Rejection for RepairError {
    fn kind(&self) -> RejectionKind {
        match self {
            RepairError::NotOpened => RejectionKind::NotFound,
            RepairError::AlreadyOpened => RejectionKind::AlreadyExists,
            RepairError::Money(_) => RejectionKind::InvalidInput,
            RepairError::AlreadyStarted
            | RepairError::NotStarted
            | RepairError::AlreadyCompleted
            | RepairError::Closed(_) => RejectionKind::InvalidTransition,
        }
    }
}

impl RepairEvent {
    /// The persisted type name of [`RepairEvent::RepairOpened`]. Never rename one.
    pub const REPAIR_OPENED: &'static str = "RepairOpened";
    /// The persisted type name of [`RepairEvent::WorkStarted`].
    pub const WORK_STARTED: &'static str = "WorkStarted";
    /// The persisted type name of [`RepairEvent::LineItemAdded`].
    pub const LINE_ITEM_ADDED: &'static str = "LineItemAdded";
    /// The persisted type name of [`RepairEvent::RepairCompleted`].
    pub const REPAIR_COMPLETED: &'static str = "RepairCompleted";
    /// The persisted type name of [`RepairEvent::RepairCancelled`].
    pub const REPAIR_CANCELLED: &'static str = "RepairCancelled";
    /// Every persisted type name of a repair event.
    pub const TYPES: [&'static str; 5] = [
        Self::REPAIR_OPENED,
        Self::WORK_STARTED,
        Self::LINE_ITEM_ADDED,
        Self::REPAIR_COMPLETED,
        Self::REPAIR_CANCELLED,
    ];
}

impl DomainEvent for RepairEvent {
    const EVENT_TYPES: &'static [&'static str] = &Self::TYPES;

    fn event_type(&self) -> &'static str {
        match self {
            RepairEvent::RepairOpened { .. } => Self::REPAIR_OPENED,
            RepairEvent::WorkStarted {} => Self::WORK_STARTED,
            RepairEvent::LineItemAdded { .. } => Self::LINE_ITEM_ADDED,
            RepairEvent::RepairCompleted { .. } => Self::REPAIR_COMPLETED,
            RepairEvent::RepairCancelled { .. } => Self::REPAIR_CANCELLED,
        }
    }

    /// `RepairOpened` and `RepairCompleted` are at version 2: they gained the
    /// required `customerEmail`, which a version 1 payload lacks. The others are at 1.
    fn schema_version(&self) -> u32 {
        match self {
            RepairEvent::RepairOpened { .. } | RepairEvent::RepairCompleted { .. } => 2,
            RepairEvent::WorkStarted {}
            | RepairEvent::LineItemAdded { .. }
            | RepairEvent::RepairCancelled { .. } => 1,
        }
    }
}

impl Aggregate for Repair {
    const TYPE: &'static str = "Repair";
    type State = RepairState;
    type Command = RepairCommand;
    type Event = RepairEvent;
    type Error = RepairError;

    fn decide(
        state: &RepairState,
        command: &RepairCommand,
    ) -> Result<Vec<RepairEvent>, RepairError> {
        let sheet = match (state, command) {
            (
                None,
                RepairCommand::OpenRepair {
                    vehicle,
                    customer,
                    customer_email,
                    description,
                },
            ) => {
                return Ok(vec![RepairEvent::RepairOpened {
                    vehicle: vehicle.clone(),
                    customer: customer.clone(),
                    customer_email: customer_email.clone(),
                    description: description.clone(),
                }])
            }
            (Some(_), RepairCommand::OpenRepair { .. }) => return Err(RepairError::AlreadyOpened),
            (None, _) => return Err(RepairError::NotOpened),
            (Some(sheet), _) => sheet,
        };
        match (sheet.status, command) {
            (RepairStatus::Completed, RepairCommand::CompleteRepair) => {
                Err(RepairError::AlreadyCompleted)
            }
            (status @ (RepairStatus::Completed | RepairStatus::Cancelled), _) => {
                Err(RepairError::Closed(status))
            }
            (RepairStatus::Open, RepairCommand::StartWork) => Ok(vec![RepairEvent::WorkStarted {}]),
            (_, RepairCommand::StartWork) => Err(RepairError::AlreadyStarted),
            (
                _,
                RepairCommand::AddLineItem {
                    description,
                    price_cents,
                },
            ) => {
                total_of(&sheet.line_items)?.checked_add(*price_cents)?;
                Ok(vec![RepairEvent::LineItemAdded {
                    description: description.clone(),
                    price_cents: *price_cents,
                }])
            }
            (RepairStatus::Open, RepairCommand::CompleteRepair) => Err(RepairError::NotStarted),
            (_, RepairCommand::CompleteRepair) => Ok(vec![RepairEvent::RepairCompleted {
                vehicle: sheet.vehicle.clone(),
                customer: sheet.customer.clone(),
                customer_email: sheet.customer_email.clone(),
                total_cents: total_of(&sheet.line_items)?,
            }]),
            (_, RepairCommand::CancelRepair { reason }) => Ok(vec![RepairEvent::RepairCancelled {
                reason: reason.clone(),
            }]),
            (_, RepairCommand::OpenRepair { .. }) => Err(RepairError::AlreadyOpened),
        }
    }

    fn evolve(state: RepairState, event: &RepairEvent) -> RepairState {
        match (state, event) {
            (
                _,
                RepairEvent::RepairOpened {
                    vehicle,
                    customer,
                    customer_email,
                    description,
                },
            ) => Some(RepairSheet {
                vehicle: vehicle.clone(),
                customer: customer.clone(),
                customer_email: customer_email.clone(),
                description: description.clone(),
                status: RepairStatus::Open,
                line_items: Vec::new(),
                total_cents: None,
                cancellation_reason: None,
            }),
            (None, _) => None,
            (Some(mut sheet), event) => {
                match event {
                    RepairEvent::RepairOpened { .. } => {}
                    RepairEvent::WorkStarted {} => sheet.status = RepairStatus::InProgress,
                    RepairEvent::LineItemAdded {
                        description,
                        price_cents,
                    } => sheet.line_items.push(LineItem {
                        description: description.clone(),
                        price_cents: *price_cents,
                    }),
                    RepairEvent::RepairCompleted { total_cents, .. } => {
                        sheet.status = RepairStatus::Completed;
                        sheet.total_cents = Some(*total_cents);
                    }
                    RepairEvent::RepairCancelled { reason } => {
                        sheet.status = RepairStatus::Cancelled;
                        sheet.cancellation_reason = Some(reason.clone());
                    }
                }
                Some(sheet)
            }
        }
    }
}

/// The sum of the line items' prices.
fn total_of(items: &[LineItem]) -> Result<Money, MoneyError> {
    items
        .iter()
        .try_fold(Money::ZERO, |sum, item| sum.checked_add(item.price_cents))
}

#[cfg(test)]
mod tests {
    use super::*;
    use outbox_domain::scenario::given;

    fn text(raw: &str) -> Text {
        Text::parse("test", raw).unwrap()
    }

    fn cents(amount: i64) -> Money {
        Money::from_cents(amount).unwrap()
    }

    fn email(raw: &str) -> EmailAddress {
        EmailAddress::parse("test", raw).unwrap()
    }

    fn opened() -> RepairEvent {
        RepairEvent::RepairOpened {
            vehicle: text("B-XY 123"),
            customer: text("Ada"),
            customer_email: email("ada@example.com"),
            description: text("brakes squeal"),
        }
    }

    fn item(price: i64) -> RepairEvent {
        RepairEvent::LineItemAdded {
            description: text("brake pads"),
            price_cents: cents(price),
        }
    }

    fn completed(total: i64) -> RepairEvent {
        RepairEvent::RepairCompleted {
            vehicle: text("B-XY 123"),
            customer: text("Ada"),
            customer_email: email("ada@example.com"),
            total_cents: cents(total),
        }
    }

    fn cancelled() -> RepairEvent {
        RepairEvent::RepairCancelled {
            reason: text("customer withdrew"),
        }
    }

    fn add(price: i64) -> RepairCommand {
        RepairCommand::AddLineItem {
            description: text("brake pads"),
            price_cents: cents(price),
        }
    }

    #[test]
    fn opening_records_the_vehicle_customer_and_description() {
        given::<Repair>(&[]).when_then(
            RepairCommand::OpenRepair {
                vehicle: text("B-XY 123"),
                customer: text("Ada"),
                customer_email: email("ada@example.com"),
                description: text("brakes squeal"),
            },
            &[opened()],
        );
    }

    #[test]
    fn opening_records_the_email_and_completing_carries_it() {
        let address = email("Grace.H@Workshop.Example");
        let opened = Repair::decide(
            &None,
            &RepairCommand::OpenRepair {
                vehicle: text("B-GH 1906"),
                customer: text("Grace"),
                customer_email: address.clone(),
                description: text("oil change"),
            },
        )
        .unwrap();
        assert!(
            matches!(&opened[..], [RepairEvent::RepairOpened { customer_email, .. }] if *customer_email == address),
            "{opened:?}"
        );
        let history = [opened, vec![RepairEvent::WorkStarted {}, item(4_999)]].concat();
        let sheet = outbox_domain::fold::<Repair>(None, &history).unwrap();
        assert_eq!(sheet.customer_email, address);
        assert_eq!(sheet.customer_email.as_str(), "Grace.H@workshop.example");
        given::<Repair>(&history).when_then(
            RepairCommand::CompleteRepair,
            &[RepairEvent::RepairCompleted {
                vehicle: text("B-GH 1906"),
                customer: text("Grace"),
                customer_email: address.clone(),
                total_cents: cents(4_999),
            }],
        );
        let wire = serde_json::to_value(&history[0]).unwrap();
        assert_eq!(wire["data"]["customerEmail"], "Grace.H@workshop.example");
        let sheet_wire = serde_json::to_value(&sheet).unwrap();
        assert_eq!(sheet_wire["customerEmail"], "Grace.H@workshop.example");
    }

    #[test]
    fn the_events_that_gained_the_email_are_at_schema_version_2() {
        assert_eq!(opened().schema_version(), 2);
        assert_eq!(completed(1).schema_version(), 2);
        for event in [RepairEvent::WorkStarted {}, item(1), cancelled()] {
            assert_eq!(event.schema_version(), 1, "{event:?}");
        }
    }

    #[test]
    fn an_event_without_a_valid_email_does_not_decode() {
        let mut wire = serde_json::to_value(completed(1)).unwrap();
        wire["data"]["customerEmail"] = serde_json::json!("not an address");
        assert!(serde_json::from_value::<RepairEvent>(wire.clone()).is_err());
        wire["data"]
            .as_object_mut()
            .unwrap()
            .remove("customerEmail");
        assert!(serde_json::from_value::<RepairEvent>(wire).is_err());
    }

    #[test]
    fn a_repair_cannot_be_opened_twice() {
        given::<Repair>(&[opened()]).when_refused(
            RepairCommand::OpenRepair {
                vehicle: text("B-XY 123"),
                customer: text("Ada"),
                customer_email: email("ada@example.com"),
                description: text("again"),
            },
            RepairError::AlreadyOpened,
        );
    }

    #[test]
    fn commands_on_an_unopened_repair_are_refused() {
        given::<Repair>(&[]).when_refused(RepairCommand::StartWork, RepairError::NotOpened);
        given::<Repair>(&[]).when_refused(RepairCommand::CompleteRepair, RepairError::NotOpened);
    }

    #[test]
    fn work_starts_once() {
        given::<Repair>(&[opened()])
            .when_then(RepairCommand::StartWork, &[RepairEvent::WorkStarted {}]);
        given::<Repair>(&[opened(), RepairEvent::WorkStarted {}])
            .when_refused(RepairCommand::StartWork, RepairError::AlreadyStarted);
    }

    #[test]
    fn line_items_can_be_added_before_and_during_work() {
        given::<Repair>(&[opened()]).when_then(add(1_250), &[item(1_250)]);
        given::<Repair>(&[opened(), RepairEvent::WorkStarted {}]).when_then(add(0), &[item(0)]);
    }

    #[test]
    fn completing_bills_the_sum_of_the_line_items() {
        given::<Repair>(&[
            opened(),
            RepairEvent::WorkStarted {},
            item(1_250),
            item(4_999),
        ])
        .when_then(RepairCommand::CompleteRepair, &[completed(6_249)]);
    }

    #[test]
    fn a_repair_cannot_complete_before_work_started() {
        given::<Repair>(&[opened(), item(100)])
            .when_refused(RepairCommand::CompleteRepair, RepairError::NotStarted);
    }

    #[test]
    fn a_repair_cannot_complete_twice() {
        given::<Repair>(&[opened(), RepairEvent::WorkStarted {}, completed(0)])
            .when_refused(RepairCommand::CompleteRepair, RepairError::AlreadyCompleted);
    }

    #[test]
    fn nothing_changes_a_completed_repair() {
        let history = [opened(), RepairEvent::WorkStarted {}, completed(0)];
        given::<Repair>(&history)
            .when_refused(add(1), RepairError::Closed(RepairStatus::Completed));
        given::<Repair>(&history).when_refused(
            RepairCommand::CancelRepair {
                reason: text("too late"),
            },
            RepairError::Closed(RepairStatus::Completed),
        );
        given::<Repair>(&history).when_refused(
            RepairCommand::StartWork,
            RepairError::Closed(RepairStatus::Completed),
        );
    }

    #[test]
    fn nothing_changes_a_cancelled_repair() {
        let history = [opened(), cancelled()];
        for command in [
            RepairCommand::StartWork,
            add(1),
            RepairCommand::CompleteRepair,
            RepairCommand::CancelRepair {
                reason: text("again"),
            },
        ] {
            given::<Repair>(&history)
                .when_refused(command, RepairError::Closed(RepairStatus::Cancelled));
        }
    }

    #[test]
    fn an_open_or_running_repair_can_be_cancelled() {
        let cancel = || RepairCommand::CancelRepair {
            reason: text("customer withdrew"),
        };
        given::<Repair>(&[opened()]).when_then(cancel(), &[cancelled()]);
        given::<Repair>(&[opened(), RepairEvent::WorkStarted {}])
            .when_then(cancel(), &[cancelled()]);
    }

    #[test]
    fn a_total_that_would_overflow_is_refused() {
        let huge = Money::MAX;
        let history = [
            opened(),
            RepairEvent::LineItemAdded {
                description: text("gold"),
                price_cents: huge,
            },
            RepairEvent::LineItemAdded {
                description: text("gold"),
                price_cents: huge,
            },
        ];
        given::<Repair>(&history).when_refused(add(2), RepairError::Money(MoneyError::Overflow));
    }

    #[test]
    fn evolving_builds_the_repair_sheet() {
        let state = outbox_domain::fold::<Repair>(
            None,
            &[
                opened(),
                RepairEvent::WorkStarted {},
                item(300),
                completed(300),
            ],
        )
        .unwrap();
        assert_eq!(state.status, RepairStatus::Completed);
        assert_eq!(state.line_items.len(), 1);
        assert_eq!(state.total_cents, Some(cents(300)));
    }

    #[test]
    fn event_type_names_match_the_wire_format() {
        for event in [
            opened(),
            RepairEvent::WorkStarted {},
            item(1),
            completed(1),
            cancelled(),
        ] {
            let wire = serde_json::to_value(&event).unwrap();
            assert_eq!(wire["eventType"], event.event_type());
            let back: RepairEvent = serde_json::from_value(wire).unwrap();
            assert_eq!(back, event);
        }
    }
}
