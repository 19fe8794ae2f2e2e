//! The pure domain of the transactional outbox toolkit.
//!
//! Everything here is synchronous and free of I/O: an aggregate *decides* on a
//! command given its current state and returns the domain events that record the
//! decision; its state changes only by *evolving* through those events.
//! Nothing in this crate knows about DynamoDB, EventBridge or Lambda.

pub mod aggregate;
pub mod email;
pub mod money;
pub mod rejection;
pub mod scenario;
pub mod text;

pub use aggregate::{decide, fold, Aggregate, Decision, DomainEvent, Version};
pub use email::{EmailAddress, EmailError};
pub use money::{Money, MoneyError};
pub use rejection::{Rejection, RejectionKind};
pub use text::{Text, TextError};
