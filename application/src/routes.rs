//! How requests become an aggregate's commands, transport-neutral: an
//! aggregate's [`Routes`] name its collection (`repairs`), the field its id is
//! answered under (`repairId`), the command that creates one and the named
//! actions on an existing one, each with the JSON body it reads or none.
//!
//! The command API adapter serves them under `POST /{collection}`,
//! `GET /{collection}/{id}` and `POST /{collection}/{id}/{action}`, and every
//! rule of the body is shared here, so each aggregate's routes inherit it: a
//! body is a JSON object (never an array or a scalar), decoded into the
//! route's own shape with messages that name fields, never Rust types; a route
//! that takes no body refuses one.
//!
//! ```
//! use outbox_application::routes::{Json, NoBody, Routes};
//! # use outbox_domain::{Aggregate, DomainEvent, Rejection, RejectionKind, Text};
//! # use serde::{Deserialize, Serialize};
//! # #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
//! # #[serde(tag = "eventType", content = "data")]
//! # enum CounterEvent { Opened { name: Text }, Bumped {} }
//! # impl DomainEvent for CounterEvent {
//! #     const EVENT_TYPES: &'static [&'static str] = &["Opened", "Bumped"];
//! #     fn event_type(&self) -> &'static str { match self { Self::Opened { .. } => "Opened", Self::Bumped {} => "Bumped" } }
//! #     fn schema_version(&self) -> u32 { 1 }
//! # }
//! # #[derive(Debug, PartialEq, thiserror::Error)]
//! # #[error("no")]
//! # struct No;
//! # impl Rejection for No { fn kind(&self) -> RejectionKind { RejectionKind::InvalidTransition } }
//! # #[derive(Debug, Serialize)]
//! # enum CounterCommand { Open { name: Text }, Bump }
//! # struct Counter;
//! # impl Aggregate for Counter {
//! #     const TYPE: &'static str = "Counter";
//! #     type State = u64; type Command = CounterCommand; type Event = CounterEvent; type Error = No;
//! #     fn decide(_: &u64, c: &CounterCommand) -> Result<Vec<CounterEvent>, No> {
//! #         Ok(vec![match c { CounterCommand::Open { name } => CounterEvent::Opened { name: name.clone() }, CounterCommand::Bump => CounterEvent::Bumped {} }])
//! #     }
//! #     fn evolve(state: u64, _: &CounterEvent) -> u64 { state + 1 }
//! # }
//! #[derive(Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct OpenBody {
//!     name: String,
//! }
//!
//! let routes = Routes::<Counter>::new("counters", "counterId")
//!     .create(|Json(body): Json<OpenBody>| {
//!         Ok(CounterCommand::Open { name: Text::parse("name", &body.name)? })
//!     })
//!     .action("bump", |NoBody| Ok(CounterCommand::Bump));
//!
//! assert!(matches!(
//!     routes.parse_create(br#"{"name":"visits"}"#),
//!     Ok(CounterCommand::Open { .. })
//! ));
//! let refused = routes.parse_create(br#"["visits"]"#).unwrap_err();
//! assert_eq!(refused.to_string(), "the body must be a JSON object");
//! assert!(matches!(routes.parse_action("bump", b""), Ok(CounterCommand::Bump)));
//! assert!(routes.parse_action("bump", b"x=1").is_err());
//! ```

use std::fmt;

use serde::de::DeserializeOwned;
use serde_json::Value;

use outbox_domain::{Aggregate, EmailError, MoneyError, TextError};

use crate::any::AnyCommand;

/// What a route reads from the request body.
pub trait RouteBody: Sized {
    /// Whether the route reads a body at all.
    const TAKES_BODY: bool;

    /// Reads the body; an empty slice is no body.
    ///
    /// # Errors
    /// [`InputError`] naming what is wrong with it.
    fn read(body: &[u8]) -> Result<Self, InputError>;
}

/// The body of a route that takes none: an empty request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoBody;

impl RouteBody for NoBody {
    const TAKES_BODY: bool = false;

    fn read(body: &[u8]) -> Result<Self, InputError> {
        if body.is_empty() {
            Ok(NoBody)
        } else {
            Err(InputError::malformed("this route takes no body"))
        }
    }
}

/// The body of a route that reads JSON: one JSON object of shape `T`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned> RouteBody for Json<T> {
    const TAKES_BODY: bool = true;

    fn read(body: &[u8]) -> Result<Self, InputError> {
        if body.is_empty() {
            return Err(InputError::malformed("the request needs a JSON body"));
        }
        let value: Value = serde_json::from_slice(body).map_err(|error| {
            InputError::malformed(format!("the body is not JSON: {}", plain(&error)))
        })?;
        if !value.is_object() {
            return Err(InputError::malformed("the body must be a JSON object"));
        }
        serde_json::from_value(value).map(Json).map_err(|error| {
            InputError::malformed(format!("the body is not valid: {}", plain(&error)))
        })
    }
}

/// A serde message without the Rust names it may carry (`expected struct
/// OpenRepairBody` reads `expected an object`).
fn plain(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let mut out = String::with_capacity(message.len());
    let mut rest = message.as_str();
    while let Some(at) = rest.find("struct ").or_else(|| rest.find("enum ")) {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        let keyword = if after.starts_with("struct ") {
            "struct "
        } else {
            "enum "
        };
        let name_len = after[keyword.len()..]
            .find(|c: char| !c.is_alphanumeric() && c != '_')
            .unwrap_or(after.len() - keyword.len());
        out.push_str(if keyword == "struct " {
            "an object"
        } else {
            "one of the allowed values"
        });
        rest = &after[keyword.len() + name_len..];
    }
    out.push_str(rest);
    out
}

/// Why a request's input cannot become a command: a 400 to a caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// The body is not JSON, not an object, or not of the route's shape.
    #[error("{0}")]
    Malformed(String),
    /// A value breaks a rule of its field.
    #[error("{0}")]
    Invalid(String),
}

impl InputError {
    /// The body is not of the expected shape.
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::Malformed(message.into())
    }

    /// A value breaks a rule of its field.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }

    /// `field`'s value breaks a rule, told by `error`.
    pub fn field(field: &str, error: impl fmt::Display) -> Self {
        Self::Invalid(format!("{field}: {error}"))
    }

    /// The stable code a caller sees: `MalformedRequest` or `InvalidInput`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "MalformedRequest",
            Self::Invalid(_) => "InvalidInput",
        }
    }
}

impl From<TextError> for InputError {
    fn from(error: TextError) -> Self {
        Self::invalid(error.to_string())
    }
}

impl From<EmailError> for InputError {
    fn from(error: EmailError) -> Self {
        Self::invalid(error.to_string())
    }
}

impl From<MoneyError> for InputError {
    fn from(error: MoneyError) -> Self {
        Self::invalid(error.to_string())
    }
}

/// The result of parsing a request into a command of some aggregate.
pub type Parsed = Result<Box<dyn AnyCommand>, InputError>;

/// How a route's body becomes its command `C`.
type Parser<C> = Box<dyn Fn(&[u8]) -> Result<C, InputError> + Send + Sync>;

/// One route: whether it reads a body, and how the body becomes command `C`.
pub struct Route<C> {
    takes_body: bool,
    parse: Parser<C>,
}

impl<C> Route<C> {
    /// A route whose body is `B` and whose command `to_command` makes of it.
    fn of<B, F>(to_command: F) -> Self
    where
        B: RouteBody,
        F: Fn(B) -> Result<C, InputError> + Send + Sync + 'static,
    {
        Self {
            takes_body: B::TAKES_BODY,
            parse: Box::new(move |raw| to_command(B::read(raw)?)),
        }
    }

    /// Whether the route reads a JSON body (else it refuses one).
    pub fn takes_body(&self) -> bool {
        self.takes_body
    }

    /// The command `body` asks for.
    ///
    /// # Errors
    /// [`InputError`] when the body does not fit the route.
    pub fn parse(&self, body: &[u8]) -> Result<C, InputError> {
        (self.parse)(body)
    }
}

/// The routes of aggregate `A`: its collection, its id field, the command that
/// creates one and the actions on an existing one.
pub struct Routes<A: Aggregate> {
    collection: &'static str,
    id_field: &'static str,
    create: Option<Route<A::Command>>,
    actions: Vec<(&'static str, Route<A::Command>)>,
}

impl<A: Aggregate> Routes<A> {
    /// Routes under `/{collection}`, answering the id as `id_field`.
    pub fn new(collection: &'static str, id_field: &'static str) -> Self {
        Self {
            collection,
            id_field,
            create: None,
            actions: Vec::new(),
        }
    }

    /// `POST /{collection}` with body `B` ([`Json`] of a shape): creates an aggregate.
    #[must_use]
    pub fn create<B, F>(mut self, to_command: F) -> Self
    where
        B: RouteBody,
        F: Fn(B) -> Result<A::Command, InputError> + Send + Sync + 'static,
    {
        self.create = Some(Route::of(to_command));
        self
    }

    /// `POST /{collection}/{id}/{name}` with body `B` ([`Json`] of a shape, or [`NoBody`]).
    #[must_use]
    pub fn action<B, F>(mut self, name: &'static str, to_command: F) -> Self
    where
        B: RouteBody,
        F: Fn(B) -> Result<A::Command, InputError> + Send + Sync + 'static,
    {
        self.actions.push((name, Route::of(to_command)));
        self
    }

    /// The collection, the path's first segment.
    pub fn collection(&self) -> &'static str {
        self.collection
    }

    /// The response field holding the aggregate's id.
    pub fn id_field(&self) -> &'static str {
        self.id_field
    }

    /// The route creating an aggregate, if there is one.
    pub fn create_route(&self) -> Option<&Route<A::Command>> {
        self.create.as_ref()
    }

    /// The action route `name`, if there is one.
    pub fn action_route(&self, name: &str) -> Option<&Route<A::Command>> {
        self.actions
            .iter()
            .find(|(action, _)| *action == name)
            .map(|(_, route)| route)
    }

    /// The names of the actions, in declaration order.
    pub fn action_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.actions.iter().map(|(name, _)| *name)
    }

    /// The command the create route makes of `body`.
    ///
    /// # Errors
    /// [`InputError`] when there is no create route or the body does not fit.
    pub fn parse_create(&self, body: &[u8]) -> Result<A::Command, InputError> {
        self.create
            .as_ref()
            .ok_or_else(|| InputError::malformed("no aggregate is created here"))?
            .parse(body)
    }

    /// The command action `name` makes of `body`.
    ///
    /// # Errors
    /// [`InputError`] when there is no such action or the body does not fit.
    pub fn parse_action(&self, name: &str, body: &[u8]) -> Result<A::Command, InputError> {
        self.action_route(name)
            .ok_or_else(|| InputError::malformed(format!("no action {name}")))?
            .parse(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code, reason = "read by serde only")]
    struct Shape {
        name: String,
        line: Vec<Line>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code, reason = "read by serde only")]
    struct Line {
        sku: String,
    }

    #[test]
    fn a_body_is_one_json_object_of_the_route_s_shape_and_no_message_names_a_rust_type() {
        for (body, expected) in [
            (&b""[..], "the request needs a JSON body"),
            (b"[1]", "the body must be a JSON object"),
            (b"\"x\"", "the body must be a JSON object"),
            (b"{", "the body is not JSON"),
            (br#"{"name":"a","line":[7]}"#, "expected an object"),
            (br#"{"name":"a"}"#, "missing field `line`"),
            (br#"{"name":"a","line":[],"x":1}"#, "unknown field `x`"),
        ] {
            let error = Json::<Shape>::read(body).unwrap_err();
            assert!(matches!(error, InputError::Malformed(_)));
            let message = error.to_string();
            assert!(message.contains(expected), "{message}");
            assert!(
                !message.contains("Shape") && !message.contains("Line"),
                "{message}"
            );
        }
        assert!(Json::<Shape>::read(br#"{"name":"a","line":[{"sku":"s"}]}"#).is_ok());
    }

    #[test]
    fn a_route_without_a_body_refuses_one() {
        assert_eq!(NoBody::read(b""), Ok(NoBody));
        assert!(matches!(
            NoBody::read(b"x=1"),
            Err(InputError::Malformed(_))
        ));
        assert!(matches!(NoBody::read(b"{}"), Err(InputError::Malformed(_))));
    }
}
